import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBuiltInDataMover, isTerminal, phaseOf, Phase, PHASES } from '../../src/api/index.js';
import type { DataUpload } from '../../src/api/index.js';

function du(status: DataUpload['status'], datamover?: string): Pick<DataUpload, 'spec' | 'status'> {
  return {
    spec: {
      snapshotType: 'CSI',
      sourcePVC: 'p',
      sourceNamespace: 'ns',
      backupStorageLocation: 'default',
      operationTimeout: '10m0s',
      datamover,
    },
    status,
  };
}

test('an empty or missing phase is read as New, like Velero does', () => {
  assert.equal(phaseOf(du(undefined)), Phase.New);
  assert.equal(phaseOf(du({})), Phase.New);
  assert.equal(phaseOf(du({ phase: '' })), Phase.New);
  assert.equal(phaseOf(du({ phase: 'Prepared' })), Phase.Prepared);
});

test('only Completed, Failed and Canceled are terminal', () => {
  const terminal = PHASES.filter((phase) => isTerminal(du({ phase })));
  assert.deepEqual(terminal, ['Canceled', 'Completed', 'Failed']);
});

test('the phase enum has Velero v1.18 order and values', () => {
  assert.deepEqual(PHASES, [
    'New',
    'Accepted',
    'Prepared',
    'InProgress',
    'Canceling',
    'Canceled',
    'Completed',
    'Failed',
  ]);
});

test('an empty data mover or "velero" is the built-in mover, anything else is not ours', () => {
  assert.equal(isBuiltInDataMover(du(undefined)), true);
  assert.equal(isBuiltInDataMover(du(undefined, '')), true);
  assert.equal(isBuiltInDataMover(du(undefined, 'velero')), true);
  assert.equal(isBuiltInDataMover(du(undefined, 'Velero')), false);
  assert.equal(isBuiltInDataMover(du(undefined, 'acme-mover')), false);
});
