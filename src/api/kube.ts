/**
 * Kubernetes objects as plain JSON, the way the API server sends them.
 *
 * Specs reuse `@kubernetes/client-node`'s model types (type-only imports: no runtime cost), because they hold no
 * timestamps. Metadata and statuses are declared here, because client-node's models type timestamps as `Date`
 * while raw JSON carries RFC 3339 strings; mixing the two shapes in one cache is a classic source of bugs.
 */
import type {
  V1PersistentVolumeClaimSpec,
  V1PersistentVolumeSpec,
  V1PodSpec,
  V1PodTemplateSpec,
  V1ObjectReference,
} from '@kubernetes/client-node';

/** `metadata.ownerReferences[]`. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** `metadata` with RFC 3339 string timestamps. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** Any object with metadata; what caches and queues handle. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/** A list as returned by a collection GET. */
export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/** A condition as it appears in pod and PVC statuses. */
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
}

/** `status.containerStatuses[]` of a pod, as far as diagnostics read it. */
export interface ContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  image?: string;
  state?: {
    waiting?: { reason?: string; message?: string };
    running?: { startedAt?: string };
    terminated?: { exitCode?: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string };
  };
}

/** A Pod. */
export interface Pod extends KubeObject {
  spec?: V1PodSpec;
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    message?: string;
    reason?: string;
    nodeName?: string;
    podIP?: string;
    startTime?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** A PersistentVolumeClaim. */
export interface PersistentVolumeClaim extends KubeObject {
  spec?: V1PersistentVolumeClaimSpec;
  status?: {
    phase?: 'Pending' | 'Bound' | 'Lost';
    accessModes?: string[];
    capacity?: Record<string, string>;
    conditions?: Condition[];
  };
}

/** A PersistentVolume. */
export interface PersistentVolume extends KubeObject {
  spec?: V1PersistentVolumeSpec;
  status?: { phase?: 'Pending' | 'Available' | 'Bound' | 'Released' | 'Failed'; reason?: string; message?: string };
}

/** `status.error` of VolumeSnapshots and VolumeSnapshotContents. */
export interface VolumeSnapshotError {
  message?: string;
  time?: string;
}

/** A `snapshot.storage.k8s.io/v1` VolumeSnapshot. */
export interface VolumeSnapshot extends KubeObject {
  spec: {
    source: { persistentVolumeClaimName?: string; volumeSnapshotContentName?: string };
    volumeSnapshotClassName?: string;
  };
  status?: {
    boundVolumeSnapshotContentName?: string;
    creationTime?: string;
    readyToUse?: boolean;
    /** A Kubernetes quantity such as `1Gi`, or bytes. */
    restoreSize?: string | number;
    error?: VolumeSnapshotError;
    volumeGroupSnapshotName?: string;
  };
}

/** A `snapshot.storage.k8s.io/v1` VolumeSnapshotContent (cluster-scoped). */
export interface VolumeSnapshotContent extends KubeObject {
  spec: {
    deletionPolicy: 'Delete' | 'Retain';
    driver: string;
    source: { snapshotHandle?: string; volumeHandle?: string };
    volumeSnapshotRef: {
      name?: string;
      namespace?: string;
      uid?: string;
      resourceVersion?: string;
      kind?: string;
      apiVersion?: string;
    };
    volumeSnapshotClassName?: string;
    sourceVolumeMode?: string;
  };
  status?: {
    creationTime?: number;
    readyToUse?: boolean;
    /** Bytes. */
    restoreSize?: number;
    snapshotHandle?: string;
    error?: VolumeSnapshotError;
  };
}

/** A DaemonSet, as far as the backupPod inherits from the node-agent's. */
export interface DaemonSet extends KubeObject {
  spec?: { template: V1PodTemplateSpec };
}

/** A Node. */
export interface Node extends KubeObject {
  spec?: { taints?: { key: string; value?: string; effect: string }[]; unschedulable?: boolean };
  status?: { conditions?: Condition[] };
}

/** A ConfigMap. */
export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** A Secret. */
export interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  immutable?: boolean;
}

/** A StorageClass. */
export interface StorageClass extends KubeObject {
  provisioner: string;
  parameters?: Record<string, string>;
  reclaimPolicy?: string;
  volumeBindingMode?: string;
}

/** A core/v1 Event as read back (kubectl and diagnostics read these). */
export interface CoreEvent extends KubeObject {
  involvedObject: V1ObjectReference;
  reason?: string;
  message?: string;
  type?: 'Normal' | 'Warning';
  count?: number;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  series?: { count?: number; lastObservedTime?: string };
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
}
