/**
 * The reasons of expose findings. They become Kubernetes Event reasons on the DataUpload, so they are UpperCamelCase
 * and stable: tools may match on them. Add new ones; never rename.
 */
export const ExposeFindingReason = Object.freeze({
  /** Healthy: the backup pod runs. */
  BackupPodRunning: 'BackupPodRunning',
  /** Healthy: the backup pod ran to completion. */
  BackupPodSucceeded: 'BackupPodSucceeded',
  /** The scheduler cannot place the backup pod (`PodScheduled=False`). */
  BackupPodUnschedulable: 'BackupPodUnschedulable',
  /** A container waits on its image (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, ...). */
  BackupPodImagePullFailed: 'BackupPodImagePullFailed',
  /** A container waits for another reason than starting or its image, e.g. `CreateContainerConfigError`. */
  BackupPodContainerWaiting: 'BackupPodContainerWaiting',
  /** The backup pod is Failed or Unknown; it will not recover. */
  BackupPodFailed: 'BackupPodFailed',
  /** The backup pod is scheduled but not running yet, e.g. its volume is not mounted. */
  BackupPodNotReady: 'BackupPodNotReady',
  BackupPodMissing: 'BackupPodMissing',
  BackupPodUnreadable: 'BackupPodUnreadable',

  /** Healthy: the backup PVC is bound to a volume. */
  BackupPVCBound: 'BackupPVCBound',
  /** The backup PVC is Pending: no volume was provisioned or bound. */
  BackupPVCNotBound: 'BackupPVCNotBound',
  /** The backup PVC lost its volume. */
  BackupPVCLost: 'BackupPVCLost',
  BackupPVCMissing: 'BackupPVCMissing',
  BackupPVCUnreadable: 'BackupPVCUnreadable',

  /** Healthy: the PV of the backup PVC is Bound. */
  BackupPVBound: 'BackupPVBound',
  /** The PV of the backup PVC is Available, Released, Failed or Pending. */
  BackupPVNotBound: 'BackupPVNotBound',
  BackupPVMissing: 'BackupPVMissing',
  BackupPVUnreadable: 'BackupPVUnreadable',

  /** Healthy: the VolumeSnapshot (backup or source, see the finding's subject) is ready to use. */
  VolumeSnapshotReady: 'VolumeSnapshotReady',
  VolumeSnapshotNotReady: 'VolumeSnapshotNotReady',
  /** The VolumeSnapshot is not ready and reports an error. */
  VolumeSnapshotError: 'VolumeSnapshotError',
  VolumeSnapshotMissing: 'VolumeSnapshotMissing',
  VolumeSnapshotUnreadable: 'VolumeSnapshotUnreadable',

  /** Healthy: the VolumeSnapshotContent is ready to use. */
  VolumeSnapshotContentReady: 'VolumeSnapshotContentReady',
  VolumeSnapshotContentNotReady: 'VolumeSnapshotContentNotReady',
  /** The VolumeSnapshotContent is not ready and reports an error. */
  VolumeSnapshotContentError: 'VolumeSnapshotContentError',
  VolumeSnapshotContentMissing: 'VolumeSnapshotContentMissing',
  VolumeSnapshotContentUnreadable: 'VolumeSnapshotContentUnreadable',
} as const);
/** One of {@link ExposeFindingReason}. */
export type ExposeFindingReason = (typeof ExposeFindingReason)[keyof typeof ExposeFindingReason];
