import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupPvcSize, bytesAsQuantity, resolveBackupPvcConfig, volumeModeOf } from '../../src/exposer/index.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import { SOURCE_SC, makeSourcePvc, makeSourceVs } from './fixtures.js';

test('no backupPVC entry resolves to the source class, ReadWriteOnce, no relabeling opt-out, no annotations', () => {
  assert.deepEqual(resolveBackupPvcConfig(SOURCE_SC, undefined), {
    storageClass: SOURCE_SC,
    readOnly: false,
    spcNoRelabeling: false,
    annotations: {},
    secretNames: [],
    configMapNames: [],
    accessModes: ['ReadWriteOnce'],
    warnings: [],
  });
});

test('a full backupPVC entry resolves to its class, ReadOnlyMany, spc_t and a copy of its annotations', () => {
  const backupPVC: NodeAgentConfig['backupPVC'] = {
    [SOURCE_SC]: {
      storageClass: 'ro',
      readOnly: true,
      spcNoRelabeling: true,
      annotations: { x: 'y' },
      secretNames: ['kms-token'],
      configMapNames: ['vault-config'],
    },
  };
  const resolved = resolveBackupPvcConfig(SOURCE_SC, backupPVC);
  assert.deepEqual(resolved, {
    storageClass: 'ro',
    readOnly: true,
    spcNoRelabeling: true,
    annotations: { x: 'y' },
    secretNames: ['kms-token'],
    configMapNames: ['vault-config'],
    accessModes: ['ReadOnlyMany'],
    warnings: [],
  });
  assert.notEqual(resolved.annotations, backupPVC[SOURCE_SC]!.annotations);
});

test('spcNoRelabeling without readOnly is dropped with a warning that names the storage class', () => {
  const resolved = resolveBackupPvcConfig(SOURCE_SC, { [SOURCE_SC]: { spcNoRelabeling: true } });
  assert.equal(resolved.spcNoRelabeling, false);
  assert.deepEqual(resolved.accessModes, ['ReadWriteOnce']);
  assert.equal(resolved.warnings.length, 1);
  assert.ok(resolved.warnings[0]!.includes(`backupPVC["${SOURCE_SC}"].spcNoRelabeling`));
});

test('a source class named like an Object.prototype member finds no entry', () => {
  for (const sc of ['constructor', 'toString', '__proto__']) {
    assert.equal(resolveBackupPvcConfig(sc, {}).storageClass, sc);
    assert.equal(resolveBackupPvcConfig(sc, {}).readOnly, false);
  }
});

test('a restoreSize that is not a quantity falls back to the PVC request with a warning that shows it', () => {
  const result = backupPvcSize(makeSourceVs({ restoreSize: 'lots' }), makeSourcePvc());
  assert.equal(result.size, '8Gi');
  assert.match(result.warning ?? '', /"lots".*8Gi/);
});

test('a byte count becomes the canonical binary-SI quantity Kubernetes prints (resource.NewQuantity(n, BinarySI))', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [1000, '1000'],
    [1024, '1Ki'],
    [1536, '1536'],
    [1073741824, '1Gi'],
    [1610612736, '1536Mi'],
    [5 * 2 ** 40, '5Ti'],
    [2 ** 52, '4Pi'],
    [1073741825, '1073741825'],
  ];
  for (const [bytes, text] of cases) assert.equal(bytesAsQuantity(bytes), text, String(bytes));
  assert.equal(backupPvcSize(makeSourceVs({ restoreSize: 1610612736 }), makeSourcePvc()).size, '1536Mi');
});

test('no restoreSize and no PVC request give an empty size and a warning', () => {
  const result = backupPvcSize(makeSourceVs({ restoreSize: null }), makeSourcePvc({ storage: null }));
  assert.equal(result.size, '');
  assert.match(result.warning ?? '', /requests no storage/);
});

test('the volume mode is Block only for a Block source PVC', () => {
  const cases: [string | undefined, string][] = [
    ['Block', 'Block'],
    ['Filesystem', 'Filesystem'],
    [undefined, 'Filesystem'],
  ];
  for (const [mode, expected] of cases) {
    assert.equal(volumeModeOf(makeSourcePvc(mode === undefined ? {} : { volumeMode: mode })), expected, String(mode));
  }
  assert.equal(volumeModeOf({ metadata: {} }), 'Filesystem');
});
