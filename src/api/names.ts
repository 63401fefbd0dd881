/**
 * Names shared with Velero: the finalizer, labels and API coordinates that make this operator a drop-in
 * replacement for the node-agent's DataUpload controller. Changing any of these breaks compatibility.
 */

/** API group of DataUpload. */
export const VELERO_GROUP = 'velero.io';
/** API version of DataUpload. */
export const DATAUPLOAD_VERSION = 'v2alpha1';
/** `apiVersion` written on DataUploads and in owner references. */
export const DATAUPLOAD_API_VERSION = `${VELERO_GROUP}/${DATAUPLOAD_VERSION}`;
/** Kind of the custom resource. */
export const DATAUPLOAD_KIND = 'DataUpload';
/** Plural resource name, as used in URLs and RBAC. */
export const DATAUPLOAD_PLURAL = 'datauploads';

/** Finalizer Velero puts on DataUploads and DataDownloads while they are not terminal. */
export const DATAUPLOAD_FINALIZER = 'velero.io/data-upload-download-finalizer';

/** Label on the backupPod that names its DataUpload. */
export const LABEL_DATA_UPLOAD = 'velero.io/data-upload';
/** Label on every exposer pod, used by the topology spread constraint. */
export const LABEL_EXPOSER_POD_GROUP = 'velero.io/exposer-pod-group';
/** Value of {@link LABEL_EXPOSER_POD_GROUP} for snapshot exposers. */
export const EXPOSER_POD_GROUP_SNAPSHOT = 'snapshot-exposer';
/** Label set to "true" while a DataUpload is Accepted or Prepared (Velero 1.17+ prepare-queue counting). */
export const LABEL_EXPOSE_ON_GOING = 'velero.io/expose-on-going';
/**
 * Annotation this operator adds in its acceptance write. `status.acceptedByNode` names a node, which changes when
 * the operator's pod moves, so it cannot tell "accepted by this operator" from "accepted by a Velero node-agent
 * on that node"; this annotation can. DataUploads accepted by anyone else are left to their acceptor.
 */
export const ANNOTATION_ACCEPTED_BY = 'dataupload-operator.velero.io/accepted-by';
/** Value of {@link ANNOTATION_ACCEPTED_BY}. */
export const ACCEPTOR_NAME = 'dataupload-operator';

/**
 * Label Velero (1.18.3+) puts on the Secrets and ConfigMaps it copies into its namespace for a backupPVC
 * (`backupPVC.<class>.secretNames` / `configMapNames`), with the UID of the DataUpload that copied it.
 */
export const LABEL_BACKUP_PVC_SECRET = 'velero.io/backup-pvc-secret';
/**
 * Prefix of the label `<prefix><DataUpload UID>: "true"` that this operator puts on such a copy for every
 * DataUpload using it. Concurrent DataUploads that need the same Secret share one copy (Velero fails the second
 * with a collision); the copy is deleted when its last user ends.
 */
export const COPY_USER_LABEL_PREFIX = 'used-by.dataupload-operator.velero.io/';

/** Labels written by the Velero server on the DataUploads it creates. */
export const LABEL_BACKUP_NAME = 'velero.io/backup-name';
export const LABEL_BACKUP_UID = 'velero.io/backup-uid';
export const LABEL_PVC_UID = 'velero.io/pvc-uid';
export const LABEL_ASYNC_OPERATION_ID = 'velero.io/async-operation-id';

/** Label that VolumeSnapshotContents carry for distributed snapshotting; the only source label copied. */
export const LABEL_SNAPSHOT_MANAGED_BY = 'snapshot.storage.kubernetes.io/managed-by';

/** The data mover names that mean "Velero's built-in mover"; any other value is someone else's DataUpload. */
export const BUILT_IN_DATA_MOVERS: readonly string[] = Object.freeze(['', 'velero']);

/** `spec.snapshotType` for CSI snapshots, the only exposer type Velero defines. */
export const SNAPSHOT_TYPE_CSI = 'CSI';

/** Node label holding the operating system. */
export const LABEL_NODE_OS = 'kubernetes.io/os';
/** Node label holding the host name, the topology key of the backupPod's spread constraint. */
export const LABEL_HOSTNAME = 'kubernetes.io/hostname';

/** API group of VolumeSnapshot and VolumeSnapshotContent. */
export const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io';
export const SNAPSHOT_VERSION = 'v1';
export const SNAPSHOT_API_VERSION = `${SNAPSHOT_GROUP}/${SNAPSHOT_VERSION}`;
