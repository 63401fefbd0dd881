/**
 * plan() for the Secret and ConfigMap copies a backupPVC's driver needs (`backupPVC.<class>.secretNames` /
 * `configMapNames`, Velero 1.18.3): made before anything else, shared between DataUploads, released when the
 * backup volume is gone, and a clear failure when the opt-in permission is missing or a copy is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/controller/plan.js';
import { COPY_PERMISSION_HINT } from '../../src/controller/errors.js';
import type { Action, Observed } from '../../src/controller/types.js';
import { Resources } from '../../src/runtime/kube-api.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import { apply, context, describe, drive, freshWorld, podRunning, UID } from './world.js';

const CONFIG: NodeAgentConfig = {
  backupPVC: { fast: { storageClass: 'fast-enc', secretNames: ['kms-token'], configMapNames: ['vault-config'] } },
};

test('copies are made first, before any backup object, one write each', () => {
  const { actions } = drive(freshWorld(), context(CONFIG));
  assert.deepEqual(actions.map(describe).slice(0, 5), [
    'finalizer:add',
    'status:Accepted',
    'copy:Secret:app/kms-token',
    'copy:ConfigMap:app/vault-config',
    'create:VolumeSnapshot',
  ]);
  assert.ok(actions.map(describe).includes('create:Pod'));
});

test('a copy another DataUpload already made is joined, not made again', () => {
  const world = freshWorld();
  world.copies = [
    {
      kind: 'Secret',
      name: 'kms-token',
      namespace: 'velero',
      uid: 'copy-uid',
      resourceVersion: '7',
      users: ['other-du'],
      isCopy: true,
      deleting: false,
    },
  ];
  const { actions, world: after } = drive(world, context(CONFIG));
  assert.equal(actions.filter((a) => a.type === 'copy' && a.kind === 'Secret').length, 1, 'one join');
  assert.deepEqual(after.copies?.find((c) => c.kind === 'Secret')?.users, ['other-du', UID]);
});

test('cleanup releases copies only once the backup PVC and PV are gone, and deletes them only as last user', () => {
  const ctx = context(CONFIG);
  let world: Observed = drive(podRunning(drive(freshWorld(), ctx).world), ctx).world;
  world.copies = world.copies!.map((c) => (c.kind === 'ConfigMap' ? { ...c, users: ['other-du', ...c.users] } : c));
  world.backupPv = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'pv-1', uid: 'pv-uid' },
    spec: { persistentVolumeReclaimPolicy: 'Delete', claimRef: { namespace: 'velero', name: world.du.metadata.name } },
  };
  world.du.spec.cancel = true;
  const steps: string[] = [];
  for (let i = 0; i < 20; i++) {
    const d = plan(world, ctx);
    if (d.kind !== 'act') {
      if (world.backupPv) {
        // The provisioner deletes the released volume; only then may the copies go.
        assert.ok(!steps.some((s) => s.includes('Copy')), 'no copy released while the volume exists');
        delete world.backupPv;
        continue;
      }
      break;
    }
    steps.push(describe(d.action));
    world = apply(world, d.action);
  }
  assert.ok(steps.includes('delete:SecretCopy:velero/kms-token'), steps.join(', '));
  assert.ok(steps.includes('release:ConfigMapCopy:velero/vault-config'), 'shared: only our user label goes');
  assert.ok(
    steps.indexOf('delete:SecretCopy:velero/kms-token') >
      steps.indexOf('delete:PersistentVolumeClaim:velero/backup1-x7k2p'),
  );
  assert.equal(steps.at(-1), 'finalizer:remove');
});

test('without the opt-in permission a DataUpload that needs copies fails at once, naming it and the overlay', () => {
  const problem = `the operator may not list secrets in namespace "velero"; ${COPY_PERMISSION_HINT}`;
  const ctx = { ...context(CONFIG), copyProblems: { Secret: problem } };
  const { actions } = drive(freshWorld(), ctx);
  const finish = actions.find((a): a is Extract<Action, { type: 'finish' }> => a.type === 'finish');
  assert.ok(finish);
  assert.equal(finish.phase, 'Failed');
  assert.equal(finish.event.reason, 'MissingPermission');
  assert.match(
    finish.message,
    /^backupPVC\["fast"\]\.secretNames needs copies of Secrets, but the operator may not list secrets/,
  );
  assert.match(finish.message, /kubectl apply -k config\/secret-copies/);
  assert.ok(!actions.some((a) => a.type === 'create'), 'nothing was made');
});

test('a copy refused for good (its source does not exist) fails the DataUpload with the API server words', () => {
  const ctx = context(CONFIG);
  let world = freshWorld();
  for (;;) {
    const d = plan(world, ctx);
    assert.equal(d.kind, 'act');
    const action = (d as { action: Action }).action;
    if (action.type === 'copy') break;
    world = apply(world, action);
  }
  world.refused = [
    {
      verb: 'copy',
      resource: Resources.secrets,
      name: 'kms-token',
      namespace: 'velero',
      code: 404,
      reason: 'NotFound',
      message: 'secrets "kms-token" not found',
    },
  ];
  const d = plan(world, ctx);
  assert.equal(d.kind, 'act');
  const action = (d as { action: Action }).action;
  assert.equal(action.type, 'finish');
  assert.equal(
    action.message,
    'copy Secret into velero/kms-token failed (404 NotFound): secrets "kms-token" not found',
  );
});
