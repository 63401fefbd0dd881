import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBackupPvc, resolveBackupPvcConfig } from '../../src/exposer/index.js';
import { DU_NAME, DU_NAMESPACE, DU_UID, SOURCE_SC, makeDataUpload, makeResolved } from './fixtures.js';

test('the backupPVC matches Velero derived shape for a read-only entry with annotations', () => {
  const resolved = makeResolved({ [SOURCE_SC]: { readOnly: true, storageClass: 'ro', annotations: { k: 'v' } } });
  assert.deepEqual(buildBackupPvc({ du: makeDataUpload(), resolved, volumeMode: 'Filesystem', size: '10Gi' }), {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: DU_NAME,
      namespace: DU_NAMESPACE,
      annotations: { k: 'v' },
      ownerReferences: [
        { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: DU_NAME, uid: DU_UID, controller: true },
      ],
    },
    spec: {
      accessModes: ['ReadOnlyMany'],
      storageClassName: 'ro',
      volumeMode: 'Filesystem',
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: DU_NAME },
      resources: { requests: { storage: '10Gi' } },
    },
  });
});

test('an entry without annotations gives a backupPVC without annotations', () => {
  const pvc = buildBackupPvc({ du: makeDataUpload(), resolved: makeResolved(), volumeMode: 'Block', size: '1Gi' });
  assert.equal('annotations' in pvc.metadata, false);
});

test('an empty storage class leaves storageClassName unset so the default class provisions the claim', () => {
  const pvc = buildBackupPvc({
    du: makeDataUpload({ storageClass: '' }),
    resolved: resolveBackupPvcConfig('', undefined),
    volumeMode: 'Filesystem',
    size: '1Gi',
  });
  assert.equal(pvc.spec && 'storageClassName' in pvc.spec, false);
});

test('the owner reference does not block owner deletion, which would need extra RBAC', () => {
  const pvc = buildBackupPvc({ du: makeDataUpload(), resolved: makeResolved(), volumeMode: 'Filesystem', size: '1Gi' });
  assert.equal(pvc.metadata.ownerReferences?.[0]?.blockOwnerDeletion, undefined);
});
