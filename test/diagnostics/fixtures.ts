/**
 * Objects of one expose as the API server returns them: DataUpload `velero/du-abc12` backing up
 * `app/data` through the VolumeSnapshot `app/velero-data-x7k2`.
 */
import type {
  CoreEvent,
  DataUpload,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../src/api/index.js';
import type { ExposeObservation } from '../../src/diagnostics/index.js';

export const DU_NAME = 'du-abc12';
export const DU_NAMESPACE = 'velero';
export const DU_UID = '6f1d2c3b-0a9e-4e57-9d1c-2b7e8f6a5c41';
export const SOURCE_VS = 'velero-data-x7k2';
export const SOURCE_NAMESPACE = 'app';
export const PV_NAME = 'pvc-9b2e4c71-5d3a-4f0e-8c6b-1a2d3e4f5a6b';
export const IMAGE = 'velero/velero:v1.18.0';
export const SCHEDULER_MESSAGE =
  "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: " +
  '3 Preemption is not helpful for scheduling.';

export const POD_UID = 'a1a1a1a1-0000-4000-8000-000000000001';
export const PVC_UID = 'b2b2b2b2-0000-4000-8000-000000000002';
export const BACKUP_VS_UID = 'c3c3c3c3-0000-4000-8000-000000000003';
export const SOURCE_VS_UID = 'd4d4d4d4-0000-4000-8000-000000000004';

export function dataUpload(): DataUpload {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: DU_UID },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: { volumeSnapshot: SOURCE_VS, storageClass: 'csi-standard', snapshotClass: 'csi-snapclass' },
      sourcePVC: 'data',
      sourceNamespace: SOURCE_NAMESPACE,
      backupStorageLocation: 'default',
      operationTimeout: '10m0s',
    },
    status: { phase: 'Accepted', acceptedByNode: 'worker-1', acceptedTimestamp: '2026-05-01T10:00:00Z' },
  };
}

export function runningPod(): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: POD_UID },
    spec: { nodeName: 'worker-2', containers: [{ name: DU_UID, image: IMAGE }] },
    status: {
      phase: 'Running',
      conditions: [
        { type: 'PodReadyToStartContainers', status: 'True' },
        { type: 'Initialized', status: 'True' },
        { type: 'Ready', status: 'True' },
        { type: 'ContainersReady', status: 'True' },
        { type: 'PodScheduled', status: 'True' },
      ],
      containerStatuses: [
        { name: DU_UID, ready: true, image: IMAGE, state: { running: { startedAt: '2026-05-01T10:00:20Z' } } },
      ],
    },
  };
}

export function unschedulablePod(message = SCHEDULER_MESSAGE): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: POD_UID },
    spec: { containers: [{ name: DU_UID, image: IMAGE }] },
    status: {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message,
          lastTransitionTime: '2026-05-01T10:00:05Z',
          lastProbeTime: null,
        },
      ],
    },
  };
}

/** Scheduled on worker-2, its only container waiting with `reason` (for example ImagePullBackOff). */
export function waitingPod(reason: string, message: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: POD_UID },
    spec: { nodeName: 'worker-2', containers: [{ name: DU_UID, image: IMAGE }] },
    status: {
      phase: 'Pending',
      conditions: [
        { type: 'PodReadyToStartContainers', status: 'True' },
        { type: 'Initialized', status: 'True' },
        {
          type: 'Ready',
          status: 'False',
          reason: 'ContainersNotReady',
          message: `containers with unready status: [${DU_UID}]`,
        },
        {
          type: 'ContainersReady',
          status: 'False',
          reason: 'ContainersNotReady',
          message: `containers with unready status: [${DU_UID}]`,
        },
        { type: 'PodScheduled', status: 'True' },
      ],
      containerStatuses: [{ name: DU_UID, ready: false, image: IMAGE, state: { waiting: { reason, message } } }],
    },
  };
}

export function boundPvc(): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: PVC_UID },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'csi-standard',
      volumeName: PV_NAME,
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: DU_NAME },
      resources: { requests: { storage: '1Gi' } },
    },
    status: { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '1Gi' } },
  };
}

export function pendingPvc(storageClassName: string, accessModes = ['ReadWriteOnce']): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: PVC_UID },
    spec: {
      accessModes,
      storageClassName,
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: DU_NAME },
      resources: { requests: { storage: '1Gi' } },
    },
    status: { phase: 'Pending' },
  };
}

export function boundPv(): PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: PV_NAME, uid: 'e5e5e5e5-0000-4000-8000-000000000005' },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'csi-standard',
      claimRef: { kind: 'PersistentVolumeClaim', namespace: DU_NAMESPACE, name: DU_NAME, uid: PVC_UID },
      csi: { driver: 'hostpath.csi.k8s.io', volumeHandle: 'vol-77' },
    },
    status: { phase: 'Bound' },
  };
}

export function backupVs(ready = true): VolumeSnapshot {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: BACKUP_VS_UID },
    spec: { source: { volumeSnapshotContentName: DU_NAME }, volumeSnapshotClassName: 'csi-snapclass' },
    status: { boundVolumeSnapshotContentName: DU_NAME, readyToUse: ready, restoreSize: '1Gi' },
  };
}

export function backupVsc(ready = true): VolumeSnapshotContent {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotContent',
    metadata: { name: DU_NAME, uid: 'f6f6f6f6-0000-4000-8000-000000000006' },
    spec: {
      deletionPolicy: 'Delete',
      driver: 'hostpath.csi.k8s.io',
      source: { snapshotHandle: 'snap-2f9a' },
      volumeSnapshotRef: { name: DU_NAME, namespace: DU_NAMESPACE, uid: BACKUP_VS_UID },
      volumeSnapshotClassName: 'csi-snapclass',
    },
    status: { readyToUse: ready, snapshotHandle: 'snap-2f9a', restoreSize: 1073741824 },
  };
}

export function sourceVs(status: VolumeSnapshot['status']): VolumeSnapshot {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name: SOURCE_VS, namespace: SOURCE_NAMESPACE, uid: SOURCE_VS_UID },
    spec: { source: { persistentVolumeClaimName: 'data' }, volumeSnapshotClassName: 'csi-snapclass' },
    status,
  };
}

/** Every object of a finished expose, all healthy; the source snapshot is gone because it was re-homed. */
export function healthyObservation(): ExposeObservation {
  return {
    du: dataUpload(),
    pod: runningPod(),
    pvc: boundPvc(),
    pv: boundPv(),
    backupVs: backupVs(),
    backupVsc: backupVsc(),
    events: [],
  };
}

interface EventInput {
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  reason: string;
  message: string;
  type?: 'Normal' | 'Warning';
  count?: number;
  seriesCount?: number;
  lastTimestamp?: string;
}

/** A core/v1 Event as the kubelet, scheduler or a controller records it. */
export function event(input: EventInput): CoreEvent {
  const lastTimestamp = input.lastTimestamp ?? '2026-05-01T10:05:00Z';
  const involvedObject = {
    kind: input.kind,
    name: input.name,
    ...(input.namespace ? { namespace: input.namespace } : {}),
    ...(input.uid ? { uid: input.uid } : {}),
  };
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: `${input.name}.${input.reason.toLowerCase()}${lastTimestamp.replace(/\D/g, '')}`,
      namespace: input.namespace ?? 'default',
    },
    involvedObject,
    reason: input.reason,
    message: input.message,
    type: input.type ?? 'Warning',
    ...(input.count !== undefined ? { count: input.count } : {}),
    ...(input.seriesCount !== undefined
      ? { series: { count: input.seriesCount, lastObservedTime: lastTimestamp } }
      : { lastTimestamp }),
    firstTimestamp: '2026-05-01T10:00:01Z',
  };
}

/** An Event about the backup pod. */
export function podEvent(reason: string, message: string, extra: Partial<EventInput> = {}): CoreEvent {
  return event({ kind: 'Pod', name: DU_NAME, namespace: DU_NAMESPACE, uid: POD_UID, reason, message, ...extra });
}

/** An Event about the backup PVC. */
export function pvcEvent(reason: string, message: string, extra: Partial<EventInput> = {}): CoreEvent {
  return event({
    kind: 'PersistentVolumeClaim',
    name: DU_NAME,
    namespace: DU_NAMESPACE,
    uid: PVC_UID,
    reason,
    message,
    ...extra,
  });
}
