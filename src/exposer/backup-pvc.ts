/**
 * The backupPVC (spec section 4.1, step 10): a claim provisioned from the backup VolumeSnapshot, owned by the
 * DataUpload, with the access mode, class and annotations of the resolved `backupPVC` entry.
 */
import type { V1PersistentVolumeClaimSpec } from '@kubernetes/client-node';
import { SNAPSHOT_GROUP, type DataUpload, type PersistentVolumeClaim } from '../api/index.js';
import type { ResolvedBackupPvc, VolumeMode } from './backup-pvc-config.js';
import { copyNonEmpty, ownerReferenceTo } from './objects.js';

/**
 * The backupPVC `<du>` in the DataUpload namespace (checklist items 17–19, 21 and 22): `dataSource` is the backup
 * VolumeSnapshot `<du>`, the single access mode and class come from `resolved`, the volume mode from the source
 * PVC, the request is `size` (see `backupPvcSize`). It has no labels, and annotations only when the entry has some.
 *
 * Unlike Velero, an empty resolved storage class leaves `storageClassName` unset, so the cluster's default class
 * provisions the claim; `""` would ask for no class at all and the claim would never bind.
 */
export function buildBackupPvc(input: {
  du: DataUpload;
  resolved: ResolvedBackupPvc;
  volumeMode: VolumeMode;
  size: string;
}): PersistentVolumeClaim {
  const { du, resolved, volumeMode, size } = input;
  const name = du.metadata.name ?? '';
  const spec: V1PersistentVolumeClaimSpec = {
    accessModes: [...resolved.accessModes],
    volumeMode,
    dataSource: { apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name },
    resources: { requests: { storage: size } },
  };
  if (resolved.storageClass !== '') spec.storageClassName = resolved.storageClass;
  const pvc: PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: du.metadata.namespace ?? '', ownerReferences: [ownerReferenceTo(du)] },
    spec,
  };
  const annotations = copyNonEmpty(resolved.annotations);
  if (annotations !== undefined) pvc.metadata.annotations = annotations;
  return pvc;
}
