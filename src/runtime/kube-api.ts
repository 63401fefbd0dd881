/**
 * The contract between the operator and the Kubernetes API: plain JSON in and out, typed errors, and resource
 * coordinates instead of generated per-kind clients. `HttpKubeClient` (./kube-client.ts) implements it over one
 * keep-alive HTTPS agent; tests may wrap it (for example to count writes).
 */
import type { KubeList, KubeObject } from '../api/kube.js';

/** Coordinates of a resource type: enough to build every URL. */
export interface ResourceRef {
  /** API group; `''` for the core group. */
  readonly group: string;
  readonly version: string;
  /** Plural resource name as used in URLs and RBAC. */
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

function ref(group: string, version: string, resource: string, kind: string, namespaced: boolean): ResourceRef {
  return Object.freeze({ group, version, resource, kind, namespaced });
}

/** The resource types this operator reads or writes. */
export const Resources = Object.freeze({
  dataUploads: ref('velero.io', 'v2alpha1', 'datauploads', 'DataUpload', true),
  pods: ref('', 'v1', 'pods', 'Pod', true),
  persistentVolumeClaims: ref('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', true),
  persistentVolumes: ref('', 'v1', 'persistentvolumes', 'PersistentVolume', false),
  configMaps: ref('', 'v1', 'configmaps', 'ConfigMap', true),
  secrets: ref('', 'v1', 'secrets', 'Secret', true),
  nodes: ref('', 'v1', 'nodes', 'Node', false),
  coreEvents: ref('', 'v1', 'events', 'Event', true),
  events: ref('events.k8s.io', 'v1', 'events', 'Event', true),
  volumeSnapshots: ref('snapshot.storage.k8s.io', 'v1', 'volumesnapshots', 'VolumeSnapshot', true),
  volumeSnapshotContents: ref(
    'snapshot.storage.k8s.io',
    'v1',
    'volumesnapshotcontents',
    'VolumeSnapshotContent',
    false,
  ),
  storageClasses: ref('storage.k8s.io', 'v1', 'storageclasses', 'StorageClass', false),
  daemonSets: ref('apps', 'v1', 'daemonsets', 'DaemonSet', true),
  leases: ref('coordination.k8s.io', 'v1', 'leases', 'Lease', true),
  priorityClasses: ref('scheduling.k8s.io', 'v1', 'priorityclasses', 'PriorityClass', false),
});

/**
 * The URL path of a collection, an object or a subresource.
 * `namespace` is ignored for cluster-scoped resources; omit it on a namespaced one to address all namespaces.
 */
export function resourcePath(r: ResourceRef, namespace?: string, name?: string, subresource?: string): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  const sub = subresource && name !== undefined ? `/${subresource}` : '';
  return `${base}${ns}/${r.resource}${obj}${sub}`;
}

/** An error answered by the API server (or a transport failure, with `code` 0). */
export class KubeApiError extends Error {
  /** HTTP status; 0 when the request never got an answer. */
  readonly code: number;
  /** The Status `reason`, e.g. `NotFound`, `Conflict`, `AlreadyExists`, `Gone`, `Invalid`, `Forbidden`. */
  readonly reason: string;
  /** `Retry-After` seconds, when the server sent one (429, some 5xx). */
  readonly retryAfterSeconds: number | undefined;

  constructor(init: { code: number; reason: string; message: string; retryAfterSeconds?: number; cause?: unknown }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'KubeApiError';
    this.code = init.code;
    this.reason = init.reason;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

/** 404: the object does not exist (for a delete: it is already gone). */
export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 404;
}
/** 409 with reason Conflict: a resourceVersion precondition failed; someone else wrote first. */
export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 409 && err.reason !== 'AlreadyExists';
}
/** 409 with reason AlreadyExists: a create found the name taken. */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 409 && err.reason === 'AlreadyExists';
}
/** 410: the resourceVersion is too old; relist. */
export function isGone(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 410;
}
/** Worth retrying with backoff: no answer, throttling, timeouts and server errors. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof KubeApiError)) return true;
  return err.code === 0 || err.code === 429 || err.code === 408 || err.code >= 500;
}
/** 400, 422 and similar: the request itself is wrong and will stay wrong. */
export function isInvalid(err: unknown): boolean {
  return err instanceof KubeApiError && (err.code === 400 || err.code === 422);
}

/** Options of a collection read. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
}

/** Options of a watch. */
export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Server-side timeout; the server ends the stream cleanly after it. */
  timeoutSeconds?: number;
}

/** One event of a watch stream. `ERROR` carries a Status object (e.g. code 410). */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Patch flavours; each sets its own Content-Type. */
export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

/** Options of a write. */
export interface WriteOptions {
  namespace?: string;
  fieldManager?: string;
  dryRun?: boolean;
  /** Server-side apply only: take ownership of conflicting fields. */
  force?: boolean;
}

/** Options of a delete. */
export interface DeleteOptions {
  namespace?: string;
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** Options of a GET. */
export interface GetOptions {
  /**
   * Any version not older than this one will do: the API server answers from its watch cache (once that has caught
   * up) instead of a quorum read of etcd. Unset: the latest, read from etcd.
   */
  resourceVersion?: string;
}

/** Plain-JSON access to the Kubernetes API. Every method rejects with {@link KubeApiError}. */
export interface KubeApi {
  get<T extends KubeObject>(r: ResourceRef, name: string, namespace?: string, options?: GetOptions): Promise<T>;
  list<T extends KubeObject>(r: ResourceRef, options?: ListOptions): Promise<KubeList<T>>;
  create<T extends KubeObject>(r: ResourceRef, body: T, options?: WriteOptions): Promise<T>;
  /** PUT of the whole object; guarded by `body.metadata.resourceVersion` when it is set (409 on conflict). */
  replace<T extends KubeObject>(r: ResourceRef, body: T, options?: WriteOptions): Promise<T>;
  patch<T extends KubeObject>(
    r: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options?: WriteOptions,
  ): Promise<T>;
  delete(r: ResourceRef, name: string, options?: DeleteOptions): Promise<void>;
  /**
   * Streams watch events to `onEvent` until the server ends the stream (resolves), the signal aborts (resolves),
   * or the connection fails (rejects). An HTTP 410 at connect rejects with a `Gone` error.
   */
  watch<T extends KubeObject>(
    r: ResourceRef,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void>;
}
