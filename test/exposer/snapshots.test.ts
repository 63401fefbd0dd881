import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBackupVolumeSnapshot, buildBackupVolumeSnapshotContent } from '../../src/exposer/index.js';
import { DU_NAME, makeCreatedBackupVs, makeDataUpload, makeSourceVs, makeSourceVsc } from './fixtures.js';

test('a source VolumeSnapshot without annotations or class gives a backup VolumeSnapshot without them', () => {
  const sourceVs = makeSourceVs();
  delete sourceVs.metadata.annotations;
  delete sourceVs.spec.volumeSnapshotClassName;
  const vs = buildBackupVolumeSnapshot({ du: makeDataUpload(), sourceVs });
  assert.equal('annotations' in vs.metadata, false);
  assert.deepEqual(vs.spec, { source: { volumeSnapshotContentName: DU_NAME } });
});

test('the backup VolumeSnapshot copies no labels, finalizers or status of the source', () => {
  const vs = buildBackupVolumeSnapshot({ du: makeDataUpload(), sourceVs: makeSourceVs() });
  assert.equal(vs.metadata.labels, undefined);
  assert.equal(vs.metadata.finalizers, undefined);
  assert.equal(vs.status, undefined);
  assert.equal(vs.spec.source.persistentVolumeClaimName, undefined);
});

test('a source content without a snapshot handle gives a content without one, for the API server to reject', () => {
  const vsc = buildBackupVolumeSnapshotContent({
    du: makeDataUpload(),
    backupVs: makeCreatedBackupVs(),
    sourceVsc: makeSourceVsc({ snapshotHandle: null }),
  });
  assert.deepEqual(vsc.spec.source, {});
});

test('the backup content never takes the source volume handle, finalizers or status', () => {
  const vsc = buildBackupVolumeSnapshotContent({
    du: makeDataUpload(),
    backupVs: makeCreatedBackupVs(),
    sourceVsc: makeSourceVsc(),
  });
  assert.equal(vsc.spec.source.volumeHandle, undefined);
  assert.equal(vsc.metadata.finalizers, undefined);
  assert.equal(vsc.status, undefined);
});
