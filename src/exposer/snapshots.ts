/**
 * The backup VolumeSnapshot and its statically bound VolumeSnapshotContent (spec section 4.1, steps 3 and 4):
 * together they re-home the source snapshot's handle in the DataUpload namespace, so the backupPVC can be
 * provisioned from it after the source VolumeSnapshot is gone.
 */
import {
  LABEL_SNAPSHOT_MANAGED_BY,
  SNAPSHOT_API_VERSION,
  type DataUpload,
  type VolumeSnapshot,
  type VolumeSnapshotContent,
} from '../api/index.js';

/**
 * The backup VolumeSnapshot `<du>` in the DataUpload namespace, pre-bound to the content `<du>`. It copies the
 * source VolumeSnapshot's annotations and class and has **no** owner reference: the backupPVC's `dataSource` refers
 * to it, so it must outlive the PVC and is deleted explicitly at cleanup (checklist item 13).
 */
export function buildBackupVolumeSnapshot(input: { du: DataUpload; sourceVs: VolumeSnapshot }): VolumeSnapshot {
  const { du, sourceVs } = input;
  const name = du.metadata.name ?? '';
  const vs: VolumeSnapshot = {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: 'VolumeSnapshot',
    metadata: { name, namespace: du.metadata.namespace ?? '' },
    spec: { source: { volumeSnapshotContentName: name } },
  };
  if (sourceVs.metadata.annotations !== undefined) vs.metadata.annotations = { ...sourceVs.metadata.annotations };
  if (sourceVs.spec.volumeSnapshotClassName !== undefined) {
    vs.spec.volumeSnapshotClassName = sourceVs.spec.volumeSnapshotClassName;
  }
  return vs;
}

/**
 * The cluster-scoped backup VolumeSnapshotContent `<du>`: a pre-provisioned content on the source content's
 * `status.snapshotHandle`, bound to the backup VolumeSnapshot **as created** (its uid and resourceVersion are part
 * of the reference), with `deletionPolicy: Delete` so deleting the backup VolumeSnapshot removes the storage
 * snapshot too (checklist items 14 and 15).
 *
 * Annotations are copied from the source content; of its labels only `snapshot.storage.kubernetes.io/managed-by`
 * is (distributed snapshotting needs it). The caller checks that the source content has a snapshot handle first.
 */
export function buildBackupVolumeSnapshotContent(input: {
  du: DataUpload;
  backupVs: VolumeSnapshot;
  sourceVsc: VolumeSnapshotContent;
}): VolumeSnapshotContent {
  const { du, backupVs, sourceVsc } = input;
  const vsc: VolumeSnapshotContent = {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: 'VolumeSnapshotContent',
    metadata: { name: du.metadata.name ?? '' },
    spec: {
      volumeSnapshotRef: {
        apiVersion: SNAPSHOT_API_VERSION,
        kind: 'VolumeSnapshot',
        name: backupVs.metadata.name ?? '',
        namespace: backupVs.metadata.namespace ?? '',
        uid: backupVs.metadata.uid ?? '',
        resourceVersion: backupVs.metadata.resourceVersion ?? '',
      },
      source: {},
      deletionPolicy: 'Delete',
      driver: sourceVsc.spec.driver,
    },
  };
  // Left out when missing, so the API server rejects the content instead of binding an empty handle.
  const handle = sourceVsc.status?.snapshotHandle;
  if (handle !== undefined) vsc.spec.source.snapshotHandle = handle;
  if (sourceVsc.metadata.annotations !== undefined) vsc.metadata.annotations = { ...sourceVsc.metadata.annotations };
  const managedBy = sourceVsc.metadata.labels?.[LABEL_SNAPSHOT_MANAGED_BY];
  if (managedBy !== undefined) vsc.metadata.labels = { [LABEL_SNAPSHOT_MANAGED_BY]: managedBy };
  if (sourceVsc.spec.volumeSnapshotClassName !== undefined) {
    vsc.spec.volumeSnapshotClassName = sourceVsc.spec.volumeSnapshotClassName;
  }
  return vsc;
}
