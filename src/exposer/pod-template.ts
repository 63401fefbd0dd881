/**
 * What the backupPod inherits from the node-agent DaemonSet, or from operator options when there is no DaemonSet
 * (spec section 4.0 step 5 and section 4.1 step 12, `getInheritedPodInfo`).
 */
import type {
  V1Container,
  V1EnvFromSource,
  V1EnvVar,
  V1LocalObjectReference,
  V1PodDNSConfig,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { DaemonSet } from '../api/index.js';
import { copyNonEmpty, copyOf } from './objects.js';

/** The parts of the backupPod that come from the node-agent (or from options), not from the DataUpload. */
export interface BackupPodTemplate {
  image: string;
  imagePullPolicy?: string;
  serviceAccountName?: string;
  /** Replaces the data mover command `/velero data-mover backup` when set. */
  command?: string[];
  env?: V1EnvVar[];
  envFrom?: V1EnvFromSource[];
  /** Volumes added after the backup volume. */
  volumes?: V1Volume[];
  /** Mounts added after the backup volume's mount. */
  volumeMounts?: V1VolumeMount[];
  dnsPolicy?: string;
  dnsConfig?: V1PodDNSConfig;
  imagePullSecrets?: V1LocalObjectReference[];
  /** The node-agent's `--log-format` args, then its `--log-level` args, appended to the data mover args. */
  logArgs?: string[];
  tolerations?: V1Toleration[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The outcome of reading the node-agent DaemonSet: a template with what was left out, or why there is none. */
export type TemplateFromDaemonSet =
  { ok: true; template: BackupPodTemplate; warnings: string[] } | { ok: false; message: string };

/** Pull policy when neither the DaemonSet nor the options name one. Velero forces `Never`. */
export const DEFAULT_IMAGE_PULL_POLICY = 'IfNotPresent';

/** DaemonSet pod-template labels the backupPod inherits (Velero's third-party allow-list). */
export const INHERITED_LABELS: readonly string[] = Object.freeze(['azure.workload.identity/use']);
/** DaemonSet pod-template annotations the backupPod inherits. */
export const INHERITED_ANNOTATIONS: readonly string[] = Object.freeze(['iam.amazonaws.com/role']);
/** Toleration keys the backupPod inherits: the first DaemonSet toleration with each key, in this order. */
export const INHERITED_TOLERATION_KEYS: readonly string[] = Object.freeze([
  'kubernetes.azure.com/scalesetpriority',
  'CriticalAddonsOnly',
]);

const LOG_FLAGS = Object.freeze(['--log-format', '--log-level']);
const UNEXPECTED_TEMPLATE = 'unexpected pod template from node-agent';

/**
 * Reads the node-agent DaemonSet (`node-agent`, or `node-agent-windows` for Windows nodes) into a template, as
 * Velero does, with one difference: hostPath volumes and their mounts are **not** inherited (the backupPod reads
 * only its backupPVC, and hostPath volumes break PodSecurity baseline/restricted), and each omission is a warning.
 * The pull policy is the DaemonSet container's, or `IfNotPresent`; Velero's `Never` fails on nodes that lack the
 * image.
 *
 * Fails with Velero's message, plus the detail, when the pod template does not have exactly one container or that
 * container has no image.
 */
export function backupPodTemplateFromDaemonSet(ds: DaemonSet): TemplateFromDaemonSet {
  const podTemplate = ds.spec?.template;
  const spec = podTemplate?.spec;
  const containers = spec?.containers ?? [];
  const [container] = containers;
  if (spec === undefined || containers.length !== 1 || container === undefined) {
    const names = containers.map((c) => c.name).join(', ');
    return {
      ok: false,
      message: `${UNEXPECTED_TEMPLATE}: DaemonSet ${dsName(ds)} must have exactly 1 container, found ${containers.length}${names ? ` (${names})` : ''}`,
    };
  }
  if (!container.image) {
    return {
      ok: false,
      message: `${UNEXPECTED_TEMPLATE}: container "${container.name}" of DaemonSet ${dsName(ds)} has no image`,
    };
  }
  const { volumes, volumeMounts, dropped } = withoutHostPaths(spec.volumes ?? [], container.volumeMounts ?? []);
  const warnings = dropped.length === 0 ? [] : [hostPathWarning(ds, dropped)];
  const template: BackupPodTemplate = {
    image: container.image,
    imagePullPolicy: container.imagePullPolicy || DEFAULT_IMAGE_PULL_POLICY,
    serviceAccountName: spec.serviceAccountName,
    env: container.env,
    envFrom: container.envFrom,
    volumes: nonEmpty(volumes),
    volumeMounts: nonEmpty(volumeMounts),
    dnsPolicy: spec.dnsPolicy,
    dnsConfig: spec.dnsConfig,
    imagePullSecrets: spec.imagePullSecrets,
    logArgs: nonEmpty(logArgsOf(container)),
    tolerations: nonEmpty(allowListedTolerations(spec.tolerations ?? [])),
    labels: copyNonEmpty(pick(podTemplate?.metadata?.labels, INHERITED_LABELS)),
    annotations: copyNonEmpty(pick(podTemplate?.metadata?.annotations, INHERITED_ANNOTATIONS)),
  };
  return { ok: true, template: copyOf(withoutUnset(template)), warnings };
}

/**
 * A template from operator options alone, for clusters without a node-agent DaemonSet, or as the overrides of
 * {@link mergeBackupPodTemplate}. Options left empty are left out, so they override nothing.
 */
export function backupPodTemplateFromOptions(o: {
  image: string;
  serviceAccountName?: string;
  imagePullPolicy?: string;
}): BackupPodTemplate {
  return {
    image: o.image,
    ...withoutUnset({ serviceAccountName: o.serviceAccountName, imagePullPolicy: o.imagePullPolicy }),
  };
}

/**
 * `base` with every field that `overrides` sets replaced (a field is set unless it is `undefined` or `""`).
 * Arrays and maps are replaced whole, never concatenated, so an override means exactly what it says.
 */
export function mergeBackupPodTemplate(
  base: BackupPodTemplate,
  overrides: Partial<BackupPodTemplate>,
): BackupPodTemplate {
  return copyOf({ ...base, ...withoutUnset(overrides) });
}

function dsName(ds: DaemonSet): string {
  return `${ds.metadata.namespace ?? ''}/${ds.metadata.name ?? ''}`;
}

function withoutHostPaths(
  volumes: readonly V1Volume[],
  mounts: readonly V1VolumeMount[],
): { volumes: V1Volume[]; volumeMounts: V1VolumeMount[]; dropped: string[] } {
  const dropped = volumes.filter((v) => v.hostPath !== undefined).map((v) => v.name);
  return {
    volumes: volumes.filter((v) => !dropped.includes(v.name)),
    volumeMounts: mounts.filter((m) => !dropped.includes(m.name)),
    dropped,
  };
}

function hostPathWarning(ds: DaemonSet, dropped: readonly string[]): string {
  return (
    `not inheriting hostPath volumes ${dropped.map((n) => `"${n}"`).join(', ')} (and their mounts) from DaemonSet ` +
    `${dsName(ds)}: the backup pod reads only its backupPVC`
  );
}

/** The `--log-format` args, then the `--log-level` args, in either `--flag=value` or `--flag value` form. */
function logArgsOf(container: V1Container): string[] {
  const args = container.args ?? [];
  return LOG_FLAGS.flatMap((flag) =>
    args.flatMap((arg, i) => {
      if (arg.startsWith(`${flag}=`)) return [arg];
      if (arg !== flag) return [];
      // pflag also reads the next word as the value; keep the two together or the data mover misparses.
      const value = args[i + 1];
      return value !== undefined && !value.startsWith('-') ? [arg, value] : [arg];
    }),
  );
}

function allowListedTolerations(tolerations: readonly V1Toleration[]): V1Toleration[] {
  return INHERITED_TOLERATION_KEYS.flatMap((key) => {
    const first = tolerations.find((t) => t.key === key);
    return first === undefined ? [] : [first];
  });
}

function pick(
  map: Readonly<Record<string, string>> | undefined,
  keys: readonly string[],
): Record<string, string> | undefined {
  if (map === undefined) return undefined;
  return Object.fromEntries(keys.filter((k) => Object.hasOwn(map, k)).map((k) => [k, map[k]!]));
}

function nonEmpty<T>(items: T[]): T[] | undefined {
  return items.length === 0 ? undefined : items;
}

/** Drops fields that are `undefined` or `""`, so templates compare and merge by what they actually set. */
function withoutUnset<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== '')) as T;
}
