/**
 * The backupPod (spec section 4.1, step 12): the data mover pod that mounts the backupPVC, shaped as Velero builds
 * it, with the security context, pull policy and hostPath choices described on {@link buildBackupPod}.
 */
import type {
  V1Container,
  V1NodeSelector,
  V1PodSecurityContext,
  V1PodSpec,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Toleration,
  V1Volume,
  V1VolumeDevice,
  V1VolumeMount,
} from '@kubernetes/client-node';
import {
  EXPOSER_POD_GROUP_SNAPSHOT,
  LABEL_DATA_UPLOAD,
  LABEL_EXPOSER_POD_GROUP,
  LABEL_HOSTNAME,
  formatGoDuration,
  parseGoDuration,
  parseQuantity,
  type DataUpload,
  type Pod,
} from '../api/index.js';
import type { NodeAgentConfig, PodResources } from '../config/types.js';
import { backupPodAffinity, selectLoadAffinity } from './affinity.js';
import type { ResolvedBackupPvc, VolumeMode } from './backup-pvc-config.js';
import { DEFAULT_IMAGE_PULL_POLICY, type BackupPodTemplate } from './pod-template.js';
import { copyNonEmpty, copyOf, ownerReferenceTo } from './objects.js';

/**
 * How privileged the backupPod is. `root` is Velero's (runs as user 0 so it can read every file of the volume);
 * `restricted` passes PodSecurity `restricted`, at the price of reading only what its non-root user may read.
 */
export type BackupPodSecurity = 'root' | 'restricted';

/** Everything the backupPod is built from. */
export interface BackupPodInput {
  du: DataUpload;
  template: BackupPodTemplate;
  resolved: ResolvedBackupPvc;
  volumeMode: VolumeMode;
  nodeOS: 'linux' | 'windows';
  config: NodeAgentConfig;
  /** Defaults to `root`, Velero's behaviour. */
  securityContext?: BackupPodSecurity;
  /**
   * The source volume's topology (its PV's required node affinity) when the source class binds
   * WaitForFirstConsumer, as Velero 1.18.3 reads it: the backupPod must run where that volume can attach.
   */
  volumeTopology?: V1NodeSelector;
}

/** The data mover command, unless the template names another. */
export const BACKUP_POD_COMMAND: readonly string[] = Object.freeze(['/velero', 'data-mover', 'backup']);
/** User and group of a `restricted` backupPod on Linux: the conventional "nonroot" id of distroless images. */
export const RESTRICTED_RUN_AS_ID = 65532;

const WINDOWS_TOLERATIONS: readonly V1Toleration[] = Object.freeze([
  Object.freeze({ key: 'os', operator: 'Equal', value: 'windows', effect: 'NoSchedule' }),
  Object.freeze({ key: 'os', operator: 'Equal', value: 'windows', effect: 'NoExecute' }),
]);

/**
 * The backupPod `<du>` in the DataUpload namespace (checklist items 17, 20, 23–31 and 51), Velero's shape:
 * labels `velero.io/data-upload=<du>` and `velero.io/exposer-pod-group=snapshot-exposer` over the inherited
 * (or, when non-empty, `config.podLabels`) labels, controller-owned by the DataUpload, one container named
 * `<du uid>` running `/velero data-mover backup` on the volume `<du uid>` at `/<du uid>`, spread across hosts,
 * pinned to `nodeOS`, with the `loadAffinity` entry of the final storage class, `config.podResources` and
 * `config.priorityClassName`, never restarted and killed without grace.
 *
 * Where it differs from Velero:
 * - the pull policy is the template's, default `IfNotPresent` (Velero: `Never`);
 * - our two labels always win over `podLabels` (the controller finds its pods by them);
 * - each `podResources` value stands on its own; `"0"` and unparsable values are left out (the config loader
 *   has already warned about the latter);
 * - an unparsable `spec.operationTimeout` is passed through verbatim: the controller validates it before
 *   exposing, and a builder that cannot throw keeps rollback paths simple.
 */
export function buildBackupPod(input: BackupPodInput): Pod {
  const { du, template, config, nodeOS } = input;
  const affinity = backupPodAffinity({
    loadAffinity: selectLoadAffinity(config.loadAffinity, input.resolved.storageClass),
    nodeOS,
    volumeTopology: input.volumeTopology,
  });
  const tolerations = [...(template.tolerations ?? []), ...(nodeOS === 'windows' ? WINDOWS_TOLERATIONS : [])];
  const spec: V1PodSpec = {
    topologySpreadConstraints: [
      {
        maxSkew: 1,
        topologyKey: LABEL_HOSTNAME,
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { [LABEL_EXPOSER_POD_GROUP]: EXPOSER_POD_GROUP_SNAPSHOT } },
      },
    ],
    os: { name: nodeOS },
    affinity,
    containers: [backupContainer(input)],
    ...(config.priorityClassName && { priorityClassName: config.priorityClassName }),
    ...(template.serviceAccountName && { serviceAccountName: template.serviceAccountName }),
    terminationGracePeriodSeconds: 0,
    restartPolicy: 'Never',
    securityContext: podSecurityContext(input),
    ...(tolerations.length > 0 && { tolerations }),
    ...(template.dnsPolicy && { dnsPolicy: template.dnsPolicy }),
    ...(template.dnsConfig && { dnsConfig: template.dnsConfig }),
    ...(template.imagePullSecrets && { imagePullSecrets: template.imagePullSecrets }),
    volumes: backupVolumes(input),
  };
  const annotations = copyNonEmpty(copyNonEmpty(config.podAnnotations) ?? template.annotations);
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: du.metadata.name ?? '',
      namespace: du.metadata.namespace ?? '',
      labels: podLabels(input),
      ...(annotations && { annotations }),
      ownerReferences: [ownerReferenceTo(du)],
    },
    spec,
  };
  // One deep copy at the end: the pod shares nothing with the template, the config or the DataUpload.
  return copyOf(pod);
}

/**
 * The data mover args in Velero's order: volume path, volume mode, DataUpload name, resource timeout (normalized
 * to Go's `Duration.String()` form), then the node-agent's log args.
 */
export function backupPodArgs(input: Pick<BackupPodInput, 'du' | 'template' | 'volumeMode'>): string[] {
  const { du, template, volumeMode } = input;
  const timeout = du.spec.operationTimeout;
  const ms = parseGoDuration(timeout);
  return [
    `--volume-path=/${du.metadata.uid ?? ''}`,
    `--volume-mode=${volumeMode}`,
    `--data-upload=${du.metadata.name ?? ''}`,
    `--resource-timeout=${ms === undefined ? timeout : formatGoDuration(ms)}`,
    ...(template.logArgs ?? []),
  ];
}

/**
 * Requests and limits from `podResources`, each value on its own. `"0"` means "unbounded" in Velero and is left
 * out, as are values that do not parse. Returns `undefined` when nothing is left (a BestEffort pod).
 */
export function podResourcesToRequirements(resources: PodResources | undefined): V1ResourceRequirements | undefined {
  if (resources === undefined) return undefined;
  const requests = quantities({
    cpu: resources.cpuRequest,
    memory: resources.memoryRequest,
    'ephemeral-storage': resources.ephemeralStorageRequest,
  });
  const limits = quantities({
    cpu: resources.cpuLimit,
    memory: resources.memoryLimit,
    'ephemeral-storage': resources.ephemeralStorageLimit,
  });
  if (requests === undefined && limits === undefined) return undefined;
  return { ...(requests && { requests }), ...(limits && { limits }) };
}

function quantities(values: Record<string, string | undefined>): Record<string, string> | undefined {
  const kept = Object.entries(values).filter(
    (entry): entry is [string, string] => entry[1] !== undefined && (parseQuantity(entry[1]) ?? 0) > 0,
  );
  return kept.length === 0 ? undefined : Object.fromEntries(kept);
}

function podLabels(input: BackupPodInput): Record<string, string> {
  const extra = copyNonEmpty(input.config.podLabels) ?? input.template.labels ?? {};
  return {
    ...extra,
    [LABEL_DATA_UPLOAD]: input.du.metadata.name ?? '',
    [LABEL_EXPOSER_POD_GROUP]: EXPOSER_POD_GROUP_SNAPSHOT,
  };
}

function backupContainer(input: BackupPodInput): V1Container {
  const { du, template } = input;
  const resources = podResourcesToRequirements(input.config.podResources);
  const securityContext = containerSecurityContext(input);
  return {
    name: du.metadata.uid ?? '',
    image: template.image,
    imagePullPolicy: template.imagePullPolicy || DEFAULT_IMAGE_PULL_POLICY,
    command: [...(template.command ?? BACKUP_POD_COMMAND)],
    args: backupPodArgs(input),
    ...dataAttachment(input),
    ...(template.env && { env: template.env }),
    ...(template.envFrom && { envFrom: template.envFrom }),
    ...(resources && { resources }),
    ...(securityContext && { securityContext }),
  };
}

/** Filesystem: a mount of the backup volume first; Block: a device instead. Template mounts follow in both. */
function dataAttachment(input: BackupPodInput): { volumeMounts?: V1VolumeMount[]; volumeDevices?: V1VolumeDevice[] } {
  const uid = input.du.metadata.uid ?? '';
  const inherited = input.template.volumeMounts ?? [];
  if (input.volumeMode === 'Block') {
    return {
      volumeDevices: [{ name: uid, devicePath: `/${uid}` }],
      ...(inherited.length > 0 && { volumeMounts: inherited }),
    };
  }
  return { volumeMounts: [{ name: uid, mountPath: `/${uid}`, readOnly: input.resolved.readOnly }, ...inherited] };
}

function backupVolumes(input: BackupPodInput): V1Volume[] {
  const backupVolume: V1Volume = {
    name: input.du.metadata.uid ?? '',
    persistentVolumeClaim: { claimName: input.du.metadata.name ?? '', readOnly: input.resolved.readOnly },
  };
  return [backupVolume, ...(input.template.volumes ?? [])];
}

function podSecurityContext(input: BackupPodInput): V1PodSecurityContext {
  const restricted = input.securityContext === 'restricted';
  if (input.nodeOS === 'windows') {
    // Linux-only fields (runAsUser, seLinuxOptions, seccompProfile) are forbidden on Windows pods.
    return restricted
      ? { runAsNonRoot: true, windowsOptions: { runAsUserName: 'ContainerUser' } }
      : { windowsOptions: { runAsUserName: 'ContainerAdministrator' } };
  }
  // spc_t is kept in restricted mode too: the user asked for it, and PodSecurity admission names the field if it
  // rejects the pod, which beats a silent drop.
  const seLinux = input.resolved.spcNoRelabeling ? { seLinuxOptions: { type: 'spc_t' } } : {};
  if (!restricted) return { runAsUser: 0, ...seLinux };
  return {
    runAsNonRoot: true,
    runAsUser: RESTRICTED_RUN_AS_ID,
    runAsGroup: RESTRICTED_RUN_AS_ID,
    seccompProfile: { type: 'RuntimeDefault' },
    ...seLinux,
  };
}

function containerSecurityContext(input: BackupPodInput): V1SecurityContext | undefined {
  // On Windows these fields are forbidden and PodSecurity does not ask for them.
  if (input.securityContext !== 'restricted' || input.nodeOS === 'windows') return undefined;
  return { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
}
