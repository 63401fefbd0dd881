/**
 * The decisions of the fake CSI layer, as pure functions of what the caches hold: which VolumeSnapshotContents and
 * PVs to create, which statuses to write, what to delete, which provisioning failures to report. The executor
 * (fake-csi.ts) performs them.
 */
import { parseQuantity } from '../../src/api/quantity.js';

/** Driver and provisioner name of the fake CSI layer. */
export const FAKE_CSI_DRIVER = 'fake.csi.local';
/** The `source.component` of its Events, in the external-provisioner's `<driver>_<instance>` shape. */
export const FAKE_CSI_COMPONENT = `${FAKE_CSI_DRIVER}_fake-csi`;

/** Failure switches, set as class parameters so tests only need to create classes. */
export const Switches = Object.freeze({
  neverProvision: `${FAKE_CSI_DRIVER}/never-provision`,
  refuseAccessModes: `${FAKE_CSI_DRIVER}/refuse-access-modes`,
  snapshotNeverReady: `${FAKE_CSI_DRIVER}/snapshot-never-ready`,
  snapshotError: `${FAKE_CSI_DRIVER}/snapshot-error`,
  /** A ConfigMap of this name must exist in the claim's namespace (like a driver's per-namespace KMS config). */
  requiresConfigMap: `${FAKE_CSI_DRIVER}/requires-configmap`,
});

/** The external-provisioner's class parameters naming the Secret it provisions with (templates allowed). */
const PROVISIONER_SECRET_NAME = 'csi.storage.k8s.io/provisioner-secret-name';
const PROVISIONER_SECRET_NAMESPACE = 'csi.storage.k8s.io/provisioner-secret-namespace';

const SNAPSHOT_API = 'snapshot.storage.k8s.io/v1';
const SNAPSHOT_PATH = '/apis/snapshot.storage.k8s.io/v1';
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const DEFAULT_SNAPSHOT_CLASS = 'snapshot.storage.kubernetes.io/is-default-class';

interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  annotations?: Record<string, string>;
}

/** storage.k8s.io/v1 StorageClass (the fields used here). */
export interface StorageClass {
  metadata: Meta;
  provisioner: string;
  parameters?: Record<string, string>;
  reclaimPolicy?: string;
  volumeBindingMode?: string;
  mountOptions?: string[];
}

/** VolumeSnapshotClass (the fields used here). */
export interface SnapshotClass {
  metadata: Meta;
  driver: string;
  deletionPolicy: string;
  parameters?: Record<string, string>;
}

/** PersistentVolumeClaim (the fields used here). */
export interface Pvc {
  metadata: Meta;
  spec: {
    storageClassName?: string;
    accessModes?: string[];
    volumeMode?: string;
    volumeName?: string;
    resources?: { requests?: Record<string, string> };
    dataSource?: { apiGroup?: string; kind: string; name: string };
    dataSourceRef?: { apiGroup?: string; kind: string; name: string; namespace?: string };
  };
  status?: { phase?: string };
}

/** PersistentVolume (the fields used here). */
export interface Pv {
  metadata: Meta;
  spec: { persistentVolumeReclaimPolicy?: string; csi?: { driver: string; volumeHandle: string } };
  status?: { phase?: string };
}

interface SnapshotError {
  message?: string;
  time?: string;
}

/** VolumeSnapshot (the fields used here). */
export interface VolumeSnapshot {
  metadata: Meta;
  spec: {
    volumeSnapshotClassName?: string;
    source: { persistentVolumeClaimName?: string; volumeSnapshotContentName?: string };
  };
  status?: {
    boundVolumeSnapshotContentName?: string;
    readyToUse?: boolean;
    restoreSize?: string;
    creationTime?: string;
    error?: SnapshotError | null;
  };
}

/** VolumeSnapshotContent (the fields used here). */
export interface SnapshotContent {
  metadata: Meta;
  spec: {
    driver: string;
    deletionPolicy: string;
    volumeSnapshotClassName?: string;
    volumeSnapshotRef: { name?: string; namespace?: string; uid?: string };
    source: { volumeHandle?: string; snapshotHandle?: string };
  };
  status?: {
    snapshotHandle?: string;
    readyToUse?: boolean;
    restoreSize?: number;
    creationTime?: number;
    error?: SnapshotError | null;
  };
}

/** Read access to the caches. */
export interface View {
  storageClass(name: string): StorageClass | undefined;
  snapshotClass(name: string): SnapshotClass | undefined;
  snapshotClasses(): SnapshotClass[];
  pvc(namespace: string, name: string): Pvc | undefined;
  pvcs(): Pvc[];
  pv(name: string): Pv | undefined;
  pvs(): Pv[];
  snapshot(namespace: string, name: string): VolumeSnapshot | undefined;
  snapshots(): VolumeSnapshot[];
  content(name: string): SnapshotContent | undefined;
  contents(): SnapshotContent[];
  /** The size of a snapshot handle this layer created earlier, if known. */
  sizeOfHandle(handle: string): number | undefined;
  hasSecret(namespace: string, name: string): boolean;
  hasConfigMap(namespace: string, name: string): boolean;
}

/** When the next ProvisioningFailed report for a claim is due. */
export interface FailureBackoff {
  readonly nextAt: number;
}

/** One write to perform. `key` identifies it, so the executor can avoid repeating it before the cache catches up. */
export type Action =
  | { type: 'create'; key: string; path: string; body: object; why: string }
  | { type: 'patch'; key: string; path: string; body: object; why: string }
  | { type: 'delete'; key: string; path: string; why: string }
  | { type: 'deleteOrphanContent'; key: string; content: SnapshotContent; why: string }
  | { type: 'provisioningFailed'; key: string; pvc: Pvc; message: string };

/** Everything a planning pass needs. */
export interface PlanInput {
  readonly view: View;
  readonly failures: ReadonlyMap<string, FailureBackoff>;
  readonly now: Date;
}

/**
 * All actions of one pass over everything. Each object's actions depend only on that object and the few it refers
 * to, so the executor may also plan a subset with the per-object planners below (see fake-csi.ts); the union over
 * every object is this.
 */
export function plan(input: PlanInput): Action[] {
  const { view } = input;
  return [
    ...view.snapshots().flatMap((vs) => planSnapshot(vs, input)),
    ...view.contents().flatMap((vsc) => planOrphanContent(vsc, view)),
    ...view.pvcs().flatMap((pvc) => planClaim(pvc, input)),
    ...view.pvs().flatMap((pv) => planReleasedVolume(pv)),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Snapshots

/** How the snapshot class says snapshots should behave. */
type SnapshotBehaviour = { kind: 'ready' } | { kind: 'never-ready' } | { kind: 'error'; message: string };

function snapshotBehaviour(cls: SnapshotClass | undefined): SnapshotBehaviour {
  const params = cls?.parameters ?? {};
  const error = params[Switches.snapshotError];
  if (error) return { kind: 'error', message: error };
  if (params[Switches.snapshotNeverReady] === 'true') return { kind: 'never-ready' };
  return { kind: 'ready' };
}

/**
 * The actions for one VolumeSnapshot. Reads: its class (and, for a dynamic one, the storage class of its claim and
 * the default snapshot class), its claim and the claim's PV, its content (`snapcontent-<uid>`, or the
 * pre-provisioned one it names), and the remembered size of that content's handle.
 */
export function planSnapshot(vs: VolumeSnapshot, input: PlanInput): Action[] {
  if (vs.metadata.deletionTimestamp) return [];
  if (vs.spec.source.persistentVolumeClaimName) return planDynamicSnapshot(vs, input);
  if (vs.spec.source.volumeSnapshotContentName) return planStaticSnapshot(vs, input);
  return [];
}

/** The class of a dynamic snapshot, if the snapshot is ours; `null` when it belongs to another driver. */
function dynamicSnapshotClass(vs: VolumeSnapshot, pvc: Pvc, view: View): SnapshotClass | undefined | null {
  const name = vs.spec.volumeSnapshotClassName;
  if (name) {
    const cls = view.snapshotClass(name);
    return cls?.driver === FAKE_CSI_DRIVER ? cls : null;
  }
  const sc = pvc.spec.storageClassName ? view.storageClass(pvc.spec.storageClassName) : undefined;
  if (sc?.provisioner !== FAKE_CSI_DRIVER) return null;
  return view
    .snapshotClasses()
    .find((c) => c.driver === FAKE_CSI_DRIVER && c.metadata.annotations?.[DEFAULT_SNAPSHOT_CLASS] === 'true');
}

function planDynamicSnapshot(vs: VolumeSnapshot, { view, now }: PlanInput): Action[] {
  const ns = vs.metadata.namespace ?? '';
  const pvc = view.pvc(ns, vs.spec.source.persistentVolumeClaimName ?? '');
  // Like the real sidecar: a snapshot of an unbound claim waits until the claim is bound.
  if (!pvc || pvc.status?.phase !== 'Bound' || !pvc.spec.volumeName) return [];
  const cls = dynamicSnapshotClass(vs, pvc, view);
  if (cls === null) return [];
  const volumeHandle = view.pv(pvc.spec.volumeName)?.spec.csi?.volumeHandle ?? pvc.spec.volumeName;
  const contentName = `snapcontent-${vs.metadata.uid}`;
  const content = view.content(contentName);
  if (!content) return [createDynamicContent({ vs, contentName, cls, volumeHandle })];
  if (content.spec.volumeSnapshotRef.uid !== vs.metadata.uid) return [];
  const result: SnapshotResult = {
    behaviour: snapshotBehaviour(cls),
    handle: `snap-${vs.metadata.uid}`,
    sizeBytes: requestBytes(pvc),
    now,
  };
  return [...contentStatusActions(content, result), ...snapshotStatusActions(vs, contentName, result)];
}

function createDynamicContent(o: {
  vs: VolumeSnapshot;
  contentName: string;
  cls: SnapshotClass | undefined;
  volumeHandle: string;
}): Action {
  const { vs, contentName, cls } = o;
  return {
    type: 'create',
    key: `create vsc ${contentName}`,
    path: `${SNAPSHOT_PATH}/volumesnapshotcontents`,
    why: `snapshot ${vs.metadata.namespace}/${vs.metadata.name} needs its content`,
    body: {
      apiVersion: SNAPSHOT_API,
      kind: 'VolumeSnapshotContent',
      metadata: { name: contentName },
      spec: {
        driver: FAKE_CSI_DRIVER,
        deletionPolicy: cls?.deletionPolicy ?? 'Delete',
        ...(cls ? { volumeSnapshotClassName: cls.metadata.name } : {}),
        source: { volumeHandle: o.volumeHandle },
        volumeSnapshotRef: {
          apiVersion: SNAPSHOT_API,
          kind: 'VolumeSnapshot',
          name: vs.metadata.name,
          namespace: vs.metadata.namespace,
          uid: vs.metadata.uid,
        },
      },
    },
  };
}

function planStaticSnapshot(vs: VolumeSnapshot, { view, now }: PlanInput): Action[] {
  const contentName = vs.spec.source.volumeSnapshotContentName ?? '';
  const content = view.content(contentName);
  if (!content || content.metadata.deletionTimestamp || content.spec.driver !== FAKE_CSI_DRIVER) return [];
  const ref = content.spec.volumeSnapshotRef;
  if (ref.name !== vs.metadata.name || ref.namespace !== vs.metadata.namespace) return [];
  if (ref.uid && ref.uid !== vs.metadata.uid) return [];
  const actions: Action[] = ref.uid ? [] : [bindContentToSnapshot(content, vs)];
  const handle = content.spec.source.snapshotHandle ?? `snap-${content.metadata.uid}`;
  const className = content.spec.volumeSnapshotClassName ?? vs.spec.volumeSnapshotClassName;
  const result: SnapshotResult = {
    behaviour: snapshotBehaviour(className ? view.snapshotClass(className) : undefined),
    handle,
    sizeBytes: content.status?.restoreSize ?? view.sizeOfHandle(handle),
    now,
  };
  return [...actions, ...contentStatusActions(content, result), ...snapshotStatusActions(vs, contentName, result)];
}

/** The snapshot controller records the snapshot's UID in a pre-provisioned content when it binds the two. */
function bindContentToSnapshot(content: SnapshotContent, vs: VolumeSnapshot): Action {
  return {
    type: 'patch',
    key: `bind vsc ${content.metadata.name} ${vs.metadata.uid}`,
    path: `${SNAPSHOT_PATH}/volumesnapshotcontents/${content.metadata.name}`,
    why: `pre-provisioned content is claimed by ${vs.metadata.namespace}/${vs.metadata.name}`,
    body: { spec: { volumeSnapshotRef: { uid: vs.metadata.uid } } },
  };
}

interface SnapshotResult {
  readonly behaviour: SnapshotBehaviour;
  readonly handle: string;
  readonly sizeBytes: number | undefined;
  readonly now: Date;
}

function contentStatusActions(content: SnapshotContent, r: SnapshotResult): Action[] {
  const current = content.status ?? {};
  const desired = desiredContentStatus(current, r);
  const same =
    current.snapshotHandle === desired.snapshotHandle &&
    current.readyToUse === desired.readyToUse &&
    current.restoreSize === desired.restoreSize &&
    (current.error?.message ?? undefined) === (desired.error?.message ?? undefined);
  if (same) return [];
  return [
    {
      type: 'patch',
      key: `status vsc ${content.metadata.name} ${JSON.stringify({ ...desired, creationTime: 0, error: desired.error?.message })}`,
      path: `${SNAPSHOT_PATH}/volumesnapshotcontents/${content.metadata.name}/status`,
      why: `content ${content.metadata.name} is ${r.behaviour.kind}`,
      body: { status: desired },
    },
  ];
}

interface DesiredContentStatus {
  snapshotHandle?: string;
  readyToUse: boolean;
  restoreSize?: number;
  creationTime?: number;
  error: SnapshotError | null;
}

function desiredContentStatus(
  current: NonNullable<SnapshotContent['status']>,
  r: SnapshotResult,
): DesiredContentStatus {
  // int64 nanoseconds; a double loses the last digits, which nobody reads.
  const creationTime = current.creationTime ?? r.now.getTime() * 1_000_000;
  if (r.behaviour.kind === 'error') {
    const time = current.error?.time ?? r.now.toISOString();
    return { readyToUse: false, error: { message: r.behaviour.message, time } };
  }
  return {
    snapshotHandle: r.handle,
    readyToUse: r.behaviour.kind === 'ready',
    creationTime,
    ...(r.sizeBytes === undefined ? {} : { restoreSize: r.sizeBytes }),
    error: null,
  };
}

function snapshotStatusActions(vs: VolumeSnapshot, contentName: string, r: SnapshotResult): Action[] {
  const current = vs.status ?? {};
  const error =
    r.behaviour.kind === 'error'
      ? { message: r.behaviour.message, time: current.error?.time ?? r.now.toISOString() }
      : null;
  const restoreSize = r.behaviour.kind !== 'error' && r.sizeBytes !== undefined ? formatBytes(r.sizeBytes) : undefined;
  const desired = {
    boundVolumeSnapshotContentName: contentName,
    readyToUse: r.behaviour.kind === 'ready',
    ...(restoreSize === undefined ? {} : { restoreSize }),
    ...(r.behaviour.kind === 'error' ? {} : { creationTime: current.creationTime ?? r.now.toISOString() }),
    error,
  };
  const same =
    current.boundVolumeSnapshotContentName === contentName &&
    current.readyToUse === desired.readyToUse &&
    current.restoreSize === restoreSize &&
    (current.error?.message ?? undefined) === (error?.message ?? undefined);
  if (same) return [];
  return [
    {
      type: 'patch',
      key: `status vs ${vs.metadata.uid} ${desired.readyToUse} ${restoreSize} ${error?.message}`,
      path: `${SNAPSHOT_PATH}/namespaces/${vs.metadata.namespace}/volumesnapshots/${vs.metadata.name}/status`,
      why: `snapshot ${vs.metadata.namespace}/${vs.metadata.name} is ${r.behaviour.kind}`,
      body: { status: desired },
    },
  ];
}

/**
 * A content with `deletionPolicy: Delete` whose snapshot is gone goes too. Only contents that recorded their
 * snapshot's UID qualify: a pre-provisioned content waiting for its snapshot to be created must stay.
 */
export function planOrphanContent(content: SnapshotContent, view: View): Action[] {
  const ref = content.spec.volumeSnapshotRef;
  if (content.spec.driver !== FAKE_CSI_DRIVER || content.spec.deletionPolicy !== 'Delete') return [];
  if (content.metadata.deletionTimestamp || !ref.uid || !ref.name || !ref.namespace) return [];
  if (view.snapshot(ref.namespace, ref.name)?.metadata.uid === ref.uid) return [];
  return [
    {
      type: 'deleteOrphanContent',
      key: `delete vsc ${content.metadata.name}`,
      content,
      why: `snapshot ${ref.namespace}/${ref.name} is gone and the policy is Delete`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Volumes

/**
 * The actions for one claim. Reads: its storage class, the Secret or ConfigMap the class needs, the snapshot it is
 * restored from, its PV (`pvc-<uid>`), and its failure backoff (which makes it time-dependent).
 */
export function planClaim(pvc: Pvc, input: PlanInput): Action[] {
  const { view } = input;
  if (pvc.metadata.deletionTimestamp || pvc.spec.volumeName) return [];
  if (pvc.status?.phase !== undefined && pvc.status.phase !== 'Pending') return [];
  const sc = pvc.spec.storageClassName ? view.storageClass(pvc.spec.storageClassName) : undefined;
  if (sc?.provisioner !== FAKE_CSI_DRIVER) return [];
  if (sc.parameters?.[Switches.neverProvision] === 'true') return [];
  if (sc.volumeBindingMode === 'WaitForFirstConsumer' && !pvc.metadata.annotations?.[SELECTED_NODE]) return [];
  const refused = refusedAccessMode(pvc, sc);
  if (refused) return reportProvisioningFailure(pvc, input, refusedMessage(sc, refused));
  const missing = missingProvisioningObject(pvc, sc, view);
  if (missing) return reportProvisioningFailure(pvc, input, missing);
  if (!snapshotSourceIsReady(pvc, view)) return [];
  const pvName = `pvc-${pvc.metadata.uid}`;
  if (view.pv(pvName)) return [];
  return [
    {
      type: 'create',
      key: `create pv ${pvName}`,
      path: '/api/v1/persistentvolumes',
      why: `claim ${pvc.metadata.namespace}/${pvc.metadata.name} needs a volume`,
      body: buildVolume(pvc, sc, pvName),
    },
  ];
}

function refusedAccessMode(pvc: Pvc, sc: StorageClass): string | undefined {
  const refused = (sc.parameters?.[Switches.refuseAccessModes] ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
  return pvc.spec.accessModes?.find((m) => refused.includes(m));
}

/**
 * The Secret (external-provisioner parameters, `${pvc.namespace}` / `${pvc.name}` templates resolved) or ConfigMap
 * (fake switch) a class needs in order to provision, when it does not exist; worded like the external-provisioner.
 */
function missingProvisioningObject(pvc: Pvc, sc: StorageClass, view: View): string | undefined {
  const params = sc.parameters ?? {};
  const resolve = (template: string) =>
    template.replaceAll('${pvc.namespace}', pvc.metadata.namespace ?? '').replaceAll('${pvc.name}', pvc.metadata.name);
  const secretName = params[PROVISIONER_SECRET_NAME];
  if (secretName) {
    const name = resolve(secretName);
    const namespace = resolve(params[PROVISIONER_SECRET_NAMESPACE] ?? '${pvc.namespace}');
    if (!view.hasSecret(namespace, name)) {
      return `failed to provision volume with StorageClass "${sc.metadata.name}": error getting secret ${name} in namespace ${namespace}: secrets "${name}" not found`;
    }
  }
  const configMap = params[Switches.requiresConfigMap];
  const namespace = pvc.metadata.namespace ?? '';
  if (configMap && !view.hasConfigMap(namespace, configMap)) {
    return `failed to provision volume with StorageClass "${sc.metadata.name}": rpc error: code = FailedPrecondition desc = configmap ${namespace}/${configMap} not found`;
  }
  return undefined;
}

/** Worded like the external-provisioner's event for a driver that rejects CreateVolume. */
function refusedMessage(sc: StorageClass, mode: string): string {
  return (
    `failed to provision volume with StorageClass "${sc.metadata.name}": ` +
    `rpc error: code = InvalidArgument desc = access mode ${mode} is not supported`
  );
}

function reportProvisioningFailure(pvc: Pvc, { failures, now }: PlanInput, message: string): Action[] {
  const backoff = failures.get(pvc.metadata.uid);
  if (backoff && backoff.nextAt > now.getTime()) return [];
  return [{ type: 'provisioningFailed', key: `failed ${pvc.metadata.uid} ${now.getTime()}`, pvc, message }];
}

/** A claim restored from a VolumeSnapshot waits until that snapshot is ready, as the external-provisioner does. */
function snapshotSourceIsReady(pvc: Pvc, view: View): boolean {
  const source = pvc.spec.dataSourceRef ?? pvc.spec.dataSource;
  if (!source || source.kind !== 'VolumeSnapshot') return true;
  const namespace = pvc.spec.dataSourceRef?.namespace ?? pvc.metadata.namespace ?? '';
  return view.snapshot(namespace, source.name)?.status?.readyToUse === true;
}

/** The PV a CSI provisioner creates for a claim; KCM's binder then binds the two. */
export function buildVolume(pvc: Pvc, sc: StorageClass, pvName: string): object {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': FAKE_CSI_DRIVER } },
    spec: {
      capacity: { storage: pvc.spec.resources?.requests?.storage ?? '1Gi' },
      accessModes: pvc.spec.accessModes ?? ['ReadWriteOnce'],
      volumeMode: pvc.spec.volumeMode ?? 'Filesystem',
      persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
      storageClassName: sc.metadata.name,
      ...(sc.mountOptions ? { mountOptions: sc.mountOptions } : {}),
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: pvc.metadata.namespace,
        name: pvc.metadata.name,
        uid: pvc.metadata.uid,
      },
      csi: { driver: FAKE_CSI_DRIVER, volumeHandle: pvName },
    },
  };
}

/** The external-provisioner deletes a Released volume whose reclaim policy is Delete. Reads only the PV. */
export function planReleasedVolume(pv: Pv): Action[] {
  if (pv.metadata.deletionTimestamp || pv.spec.csi?.driver !== FAKE_CSI_DRIVER) return [];
  if (pv.status?.phase !== 'Released' || pv.spec.persistentVolumeReclaimPolicy !== 'Delete') return [];
  return [
    {
      type: 'delete',
      key: `delete pv ${pv.metadata.name}`,
      path: `/api/v1/persistentvolumes/${pv.metadata.name}`,
      why: `volume ${pv.metadata.name} was released`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Quantities

/** The storage request of a claim in bytes (0 when absent or unparsable). */
export function requestBytes(pvc: Pvc): number {
  const request = pvc.spec.resources?.requests?.storage;
  return Math.ceil((request === undefined ? undefined : parseQuantity(request)) ?? 0);
}

const BINARY_SUFFIXES: readonly [string, number][] = [
  ['Ei', 2 ** 60],
  ['Pi', 2 ** 50],
  ['Ti', 2 ** 40],
  ['Gi', 2 ** 30],
  ['Mi', 2 ** 20],
  ['Ki', 2 ** 10],
];
const DECIMAL_SUFFIXES: readonly [string, number][] = [
  ['E', 1e18],
  ['P', 1e15],
  ['T', 1e12],
  ['G', 1e9],
  ['M', 1e6],
  ['k', 1e3],
];

/** Formats bytes the way a BinarySI `resource.Quantity` serialises: `1Gi`, `1536Mi`, else decimal, else plain. */
export function formatBytes(bytes: number): string {
  for (const [suffix, factor] of BINARY_SUFFIXES) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${suffix}`;
  }
  for (const [suffix, factor] of DECIMAL_SUFFIXES) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${suffix}`;
  }
  return String(bytes);
}
