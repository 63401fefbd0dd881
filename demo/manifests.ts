/**
 * The demo's objects, as pure builders: a workload with two PVCs on two storage classes, a snapshot of each, a
 * node-agent config, and one DataUpload per snapshot. One storage class is configured right (its backupPVC is a
 * read-only volume of the same class) and reaches Prepared; the other maps its backupPVC to a storage class that
 * does not exist, so the backupPVC never binds and the DataUpload fails at the prepare timeout with diagnostics.
 */

/** The fake CSI driver of the bundled control plane. */
export const DEMO_DRIVER = 'fake.csi.local';
/** Velero's namespace, where config/default installs the operator and DataUploads live. */
export const VELERO_NAMESPACE = 'velero';
/** Where the demo's workload (PVCs and their snapshots) lives. */
export const WORKLOAD_NAMESPACE = 'demo-app';
/** The VolumeSnapshotClass of both snapshots. */
export const SNAPSHOT_CLASS = 'demo-snapclass';
/** The node-agent ConfigMap that config/default installs and the operator reads (--node-agent-configmap). */
export const NODE_AGENT_CONFIGMAP = 'node-agent-config';
/** Velero's own ServiceAccount, which the backupPods run as (--backup-pod-service-account). */
export const BACKUP_POD_SERVICE_ACCOUNT = 'velero';

/** One source volume of the demo and the DataUpload of its snapshot. */
export interface DemoVolume {
  /** Storage class of the source PVC (the key of its `backupPVC` entry). */
  readonly storageClass: string;
  readonly pvc: string;
  readonly snapshot: string;
  readonly dataUpload: string;
  /** The phase this DataUpload ends in. */
  readonly expectedPhase: 'Prepared' | 'Failed';
}

/** The volume whose backupPVC config is right: a ReadOnlyMany backupPVC of the same class. */
export const GOOD_VOLUME: DemoVolume = Object.freeze({
  storageClass: 'demo-rwo',
  pvc: 'orders-db',
  snapshot: 'orders-db-snap',
  dataUpload: 'demo-backup-orders-db',
  expectedPhase: 'Prepared',
});

/** The volume whose backupPVC config names a storage class that does not exist. */
export const BROKEN_VOLUME: DemoVolume = Object.freeze({
  storageClass: 'demo-fast',
  pvc: 'search-index',
  snapshot: 'search-index-snap',
  dataUpload: 'demo-backup-search-index',
  expectedPhase: 'Failed',
});

/** The storage class the broken volume's backupPVC entry maps to; it is never created. */
export const MISSING_STORAGE_CLASS = 'fast-ro';

/** Both volumes, in the order the demo creates them. */
export const DEMO_VOLUMES: readonly DemoVolume[] = Object.freeze([GOOD_VOLUME, BROKEN_VOLUME]);

type Manifest = Record<string, unknown>;

/** The demo's node-agent config (Velero's JSON), keyed by the source storage class. */
export function nodeAgentConfig(): object {
  return {
    loadConcurrency: { prepareQueueLength: 4 },
    backupPVC: {
      [GOOD_VOLUME.storageClass]: { readOnly: true },
      [BROKEN_VOLUME.storageClass]: { storageClass: MISSING_STORAGE_CLASS, readOnly: true },
    },
  };
}

/** The node-agent ConfigMap that replaces config/default's sample before the operator starts. */
export function nodeAgentConfigMap(): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NODE_AGENT_CONFIGMAP, namespace: VELERO_NAMESPACE },
    data: { 'node-agent-config.json': `${JSON.stringify(nodeAgentConfig(), null, 2)}\n` },
  };
}

/**
 * What exists before any backup: Velero's ServiceAccount, the workload namespace, both storage classes of the fake
 * driver, the snapshot class and the two source PVCs.
 */
export function workloadManifests(): Manifest[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: BACKUP_POD_SERVICE_ACCOUNT, namespace: VELERO_NAMESPACE },
    },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: WORKLOAD_NAMESPACE } },
    ...DEMO_VOLUMES.map((v) => storageClass(v.storageClass)),
    {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshotClass',
      metadata: { name: SNAPSHOT_CLASS },
      driver: DEMO_DRIVER,
      deletionPolicy: 'Delete',
    },
    ...DEMO_VOLUMES.map(sourcePvc),
  ];
}

function storageClass(name: string): Manifest {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name },
    provisioner: DEMO_DRIVER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
}

function sourcePvc(v: DemoVolume): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: v.pvc, namespace: WORKLOAD_NAMESPACE },
    spec: {
      storageClassName: v.storageClass,
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
    },
  };
}

/** The VolumeSnapshot of a source PVC, as Velero's CSI plugin takes it. */
export function volumeSnapshot(v: DemoVolume): Manifest {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name: v.snapshot, namespace: WORKLOAD_NAMESPACE },
    spec: { volumeSnapshotClassName: SNAPSHOT_CLASS, source: { persistentVolumeClaimName: v.pvc } },
  };
}

/** A DataUpload shaped like the one the Velero server creates for a snapshotted PVC. */
export function dataUpload(v: DemoVolume): Manifest {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: {
      name: v.dataUpload,
      namespace: VELERO_NAMESPACE,
      labels: { 'velero.io/backup-name': 'demo-backup' },
    },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: {
        volumeSnapshot: v.snapshot,
        storageClass: v.storageClass,
        snapshotClass: SNAPSHOT_CLASS,
        driver: DEMO_DRIVER,
      },
      sourcePVC: v.pvc,
      sourceNamespace: WORKLOAD_NAMESPACE,
      datamover: 'velero',
      backupStorageLocation: 'default',
      operationTimeout: '10m0s',
    },
  };
}

/** Wraps objects in a `v1/List`, which `kubectl apply -f -` takes in one call. */
export function list(items: readonly Manifest[]): Manifest {
  return { apiVersion: 'v1', kind: 'List', items };
}
