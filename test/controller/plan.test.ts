import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACCEPTOR_NAME,
  ANNOTATION_ACCEPTED_BY,
  DATAUPLOAD_FINALIZER,
  LABEL_EXPOSE_ON_GOING,
} from '../../src/api/index.js';
import type { Pod } from '../../src/api/index.js';
import {
  BIND_HEAD_START_MS,
  CLEANUP_GRACE_MS,
  DELETED_MESSAGE,
  plan,
  podUnrecoverableReason,
} from '../../src/controller/plan.js';
import type { Action, Observed } from '../../src/controller/types.js';
import { deepFreeze } from '../../src/config/deep-freeze.js';
import { apply, context, describe, drive, freshWorld, NAME, newDataUpload, NS, podRunning, T0, UID } from './world.js';

const HAPPY_PATH = [
  'finalizer:add',
  'status:Accepted',
  'create:VolumeSnapshot',
  'create:VolumeSnapshotContent',
  'patch:VolumeSnapshotContent',
  'delete:VolumeSnapshot:app/velero-data-abcde',
  'delete:VolumeSnapshotContent:snapcontent-src',
  'create:PersistentVolumeClaim',
  'create:Pod',
];

test('a new DataUpload is exposed in Velero order, one write per step, then waits for its pod', () => {
  const { actions, last } = drive(freshWorld(), context());
  assert.deepEqual(actions.map(describe), HAPPY_PATH);
  assert.equal(last.kind, 'wait');
  assert.equal(last.reason, 'WaitingForBackupPod');
});

test('a restart at any step resumes from the objects that exist, without repeating a write', () => {
  let world = freshWorld();
  const ctx = context();
  for (let step = 0; step < HAPPY_PATH.length; step++) {
    const resumed = drive(world, ctx);
    assert.deepEqual(resumed.actions.map(describe), HAPPY_PATH.slice(step), `resumed after ${step} steps`);
    const decision = plan(world, ctx);
    assert.equal(decision.kind, 'act');
    world = apply(world, (decision as { action: Action }).action);
  }
});

test('the first reconcile only adds the finalizer, like Velero (checklist 5)', () => {
  const decision = plan(freshWorld(), context());
  assert.equal(decision.kind, 'act');
  const action = (decision as { action: Action }).action;
  assert.deepEqual(action, {
    type: 'patchDataUpload',
    patch: { metadata: { finalizers: [DATAUPLOAD_FINALIZER] } },
  });
});

test('acceptance sets phase, acceptedByNode, acceptedTimestamp and the expose label in one write (checklist 9)', () => {
  const world = apply(freshWorld(), plan(freshWorld(), context()).kind === 'act' ? firstAction(freshWorld()) : fail());
  const decision = plan(world, context());
  const action = (decision as { action: Action }).action;
  assert.equal(action.type, 'patchDataUpload');
  assert.deepEqual(action.patch, {
    metadata: {
      labels: { [LABEL_EXPOSE_ON_GOING]: 'true' },
      annotations: { [ANNOTATION_ACCEPTED_BY]: ACCEPTOR_NAME },
    },
    status: { phase: 'Accepted', acceptedByNode: 'node-a', acceptedTimestamp: '2026-11-23T10:00:00Z' },
  });
});

test('a running backup pod makes the DataUpload Prepared on the pod node', () => {
  const { world } = drive(freshWorld(), context());
  const decision = plan(podRunning(world, 'kwok-node-2'), context());
  const action = (decision as { action: Action }).action as Extract<Action, { type: 'patchDataUpload' }>;
  assert.equal(action.phase, 'Prepared');
  assert.deepEqual(action.patch.status, { phase: 'Prepared', node: 'kwok-node-2' });
  assert.equal(action.event?.reason, 'Prepared');
});

test('a pod that is already Running when the operator starts still moves the DataUpload to Prepared', () => {
  const { world } = drive(freshWorld(), context());
  // No pod event is needed: the plan reads the pod's state, whatever event brought the key here.
  const restarted = podRunning(world);
  assert.equal(drive(restarted, context()).actions.map(describe).join(), 'status:Prepared');
});

test('a Prepared DataUpload is handed over to the data mover and left alone', () => {
  const { world } = drive(podRunning(drive(freshWorld(), context()).world), context());
  assert.equal(world.du.status?.phase, 'Prepared');
  const decision = plan(world, context());
  assert.equal(decision.kind, 'done');
  assert.equal(decision.reason, 'HandedOver');
});

test('the prepare timeout fails an Accepted DataUpload with diagnostics, then cleans up and drops the finalizer', () => {
  const { world } = drive(freshWorld(), context());
  const late = context({}, T0 + 30 * 60_000);
  const decision = plan(world, late);
  const action = (decision as { action: Action }).action as Extract<Action, { type: 'finish' }>;
  assert.equal(action.type, 'finish');
  assert.equal(action.phase, 'Failed');
  assert.equal(action.message, 'timeout on preparing data upload');
  assert.deepEqual(action.diagnose, { appendCause: true });
  const after = drive(apply(world, action, late.now), late);
  assert.deepEqual(after.actions.map(describe), [
    'delete:Pod:velero/backup1-x7k2p',
    'delete:PersistentVolumeClaim:velero/backup1-x7k2p',
    'delete:VolumeSnapshot:velero/backup1-x7k2p',
    'delete:VolumeSnapshotContent:backup1-x7k2p',
    'finalizer:remove',
  ]);
  assert.equal(after.last.kind, 'done');
});

test('waiting for the pod is a requeue at the timeout deadline, not a blocking wait', () => {
  const { last } = drive(freshWorld(), context({}, T0));
  const later = drive(drive(freshWorld(), context()).world, context({}, T0 + 10 * 60_000)).last;
  assert.equal(last.kind === 'wait' && last.requeueAfterMs, 30 * 60_000);
  assert.equal(later.kind === 'wait' && later.requeueAfterMs, 20 * 60_000);
});

test('a snapshot that is not ready yet is waited for until the deadline', () => {
  const world = freshWorld();
  world.sourceVs!.status = { readyToUse: false, error: { message: 'driver busy' } };
  const { actions, last } = drive(world, context());
  assert.deepEqual(actions.map(describe), ['finalizer:add', 'status:Accepted']);
  assert.equal(last.reason, 'WaitingForSnapshot');
  assert.match(last.message, /driver busy/);
});

for (const [phase, expected] of [
  ['New', ['finish:Canceled', 'finalizer:remove']],
  ['Accepted', ['finish:Canceled', 'finalizer:remove']],
] as const) {
  test(`spec.cancel in ${phase} ends Canceled with nothing created`, () => {
    const world = freshWorld(newDataUpload({ cancel: true }));
    world.du.metadata.finalizers = [DATAUPLOAD_FINALIZER];
    if (phase === 'Accepted') {
      world.du.status = { phase: 'Accepted', acceptedTimestamp: '2026-11-23T10:00:00Z' };
      world.du.metadata.annotations = { [ANNOTATION_ACCEPTED_BY]: ACCEPTOR_NAME };
    }
    const { actions } = drive(world, context());
    // The source snapshot is Velero's, made for this backup: cleanup deletes it like Velero's CleanUp does.
    assert.deepEqual(actions.map(describe), [expected[0], 'delete:VolumeSnapshot:app/velero-data-abcde', expected[1]]);
  });
}

test('spec.cancel in Prepared cancels and deletes every backup object', () => {
  const prepared = drive(podRunning(drive(freshWorld(), context()).world), context()).world;
  prepared.du.spec.cancel = true;
  const { actions, world } = drive(prepared, context());
  assert.deepEqual(actions.map(describe), [
    'finish:Canceled',
    'delete:Pod:velero/backup1-x7k2p',
    'delete:PersistentVolumeClaim:velero/backup1-x7k2p',
    'delete:VolumeSnapshot:velero/backup1-x7k2p',
    'delete:VolumeSnapshotContent:backup1-x7k2p',
    'finalizer:remove',
  ]);
  assert.equal(world.du.status?.phase, 'Canceled');
  assert.ok(world.du.status?.completionTimestamp);
});

test('deleting a live DataUpload sets spec.cancel with Velero message (checklist 7)', () => {
  const world = freshWorld();
  world.du.metadata.finalizers = [DATAUPLOAD_FINALIZER];
  world.du.metadata.deletionTimestamp = '2026-11-23T10:00:00Z';
  const action = firstAction(world) as Extract<Action, { type: 'patchDataUpload' }>;
  assert.deepEqual(action.patch, { spec: { cancel: true }, status: { message: DELETED_MESSAGE } });
});

test('an unrecoverable backup pod cancels at once with Velero message and diagnostics', () => {
  const { world } = drive(freshWorld(), context());
  (world.backupPod as Pod).status = {
    phase: 'Pending',
    containerStatuses: [{ name: UID, state: { waiting: { reason: 'ImagePullBackOff' } } }],
  };
  const action = firstAction(world) as Extract<Action, { type: 'finish' }>;
  assert.equal(action.phase, 'Canceled');
  assert.equal(
    action.message,
    `found a du ${NS}/${NAME} with expose error: Container ${UID} in Pod ${NS}/${NAME} is in pull image failed with reason ImagePullBackOff. mark it as cancel`,
  );
  assert.deepEqual(action.diagnose, { appendCause: false });
});

test('an unschedulable backup pod is not fatal; only the timeout ends it (checklist 34)', () => {
  const { world } = drive(freshWorld(), context());
  (world.backupPod as Pod).status = {
    phase: 'Pending',
    conditions: [
      { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' },
    ],
  };
  const decision = plan(world, context());
  assert.equal(decision.kind, 'wait');
  assert.match(decision.message, /0\/3 nodes are available/);
});

test('pods that are Failed, Unknown or cannot pull their image are unrecoverable', () => {
  const pod = (status: Pod['status']): Pod => ({ metadata: { name: 'p', namespace: 'n' }, status });
  assert.match(podUnrecoverableReason(pod({ phase: 'Failed' }))!, /abnormal state \[Failed\]/);
  assert.match(podUnrecoverableReason(pod({ phase: 'Unknown' }))!, /abnormal state \[Unknown\]/);
  assert.match(
    podUnrecoverableReason(
      pod({ containerStatuses: [{ name: 'c', state: { waiting: { reason: 'ErrImageNeverPull' } } }] }),
    )!,
    /ErrImageNeverPull/,
  );
  assert.equal(podUnrecoverableReason(pod({ phase: 'Pending' })), undefined);
  assert.equal(podUnrecoverableReason(pod({ phase: 'Running' })), undefined);
});

for (const [why, over, message] of [
  ['no csiSnapshot', { csiSnapshot: null }, 'spec.csiSnapshot: required when spec.snapshotType is "CSI"'],
  ['an unknown snapshotType', { snapshotType: 'Restic' }, 'spec.snapshotType: unsupported snapshot type "Restic"'],
  [
    'a bad operationTimeout',
    { operationTimeout: 'ten minutes' },
    'spec.operationTimeout: "ten minutes" is not a Go duration',
  ],
] as const) {
  test(`a DataUpload with ${why} fails at once with a message naming the field`, () => {
    const world = freshWorld(newDataUpload(over));
    const { actions } = drive(world, context());
    const finish = actions.find((a) => a.type === 'finish') as Extract<Action, { type: 'finish' }>;
    assert.equal(finish.phase, 'Failed');
    assert.ok(finish.message.startsWith(message), finish.message);
    assert.ok(!actions.some((a) => a.type === 'create'), 'nothing is created');
  });
}

test('a missing source PVC fails after acceptance with a message naming it', () => {
  const world = freshWorld();
  delete world.sourcePvc;
  const { actions, world: end } = drive(world, context());
  assert.equal(end.du.status?.phase, 'Failed');
  assert.equal(end.du.status?.message, 'source PVC app/data (spec.sourcePVC) not found');
  assert.ok(!actions.some((a) => a.type === 'create'));
});

test('a missing source snapshot fails with a message naming it', () => {
  const world = freshWorld();
  delete world.sourceVs;
  delete world.sourceVsc;
  const { world: end } = drive(world, context());
  assert.equal(
    end.du.status?.message,
    'source VolumeSnapshot app/velero-data-abcde (spec.csiSnapshot.volumeSnapshot) not found',
  );
});

test('no node with the needed OS fails with Velero message (checklist 52)', () => {
  const world = freshWorld();
  world.nodesByOs = { windows: 2 };
  const { world: end } = drive(world, context());
  assert.equal(
    end.du.status?.message,
    "failed to set exposer parameters: no appropriate node to run data upload for PVC app/data: node with OS linux doesn't exist",
  );
});

test('DataUploads of another data mover are never touched (checklist 4)', () => {
  const decision = plan(freshWorld(newDataUpload({ datamover: 'acme' })), context());
  assert.equal(decision.kind, 'done');
  assert.equal(decision.reason, 'NotBuiltInDataMover');
});

test('a full prepare queue keeps a New DataUpload New and retries after 5s (checklist 10)', () => {
  const world = freshWorld();
  world.du.metadata.finalizers = [DATAUPLOAD_FINALIZER];
  world.exposeOnGoing = 2;
  const decision = plan(world, context({ loadConcurrency: { prepareQueueLength: 2 } }));
  assert.equal(decision.kind, 'wait');
  assert.equal(decision.kind === 'wait' && decision.requeueAfterMs, 5000);
  assert.equal(
    plan({ ...world, exposeOnGoing: 1 }, context({ loadConcurrency: { prepareQueueLength: 2 } })).kind,
    'act',
  );
});

test('the backup PVC follows the backupPVC config of the source storage class', () => {
  const { world } = drive(freshWorld(), context({ backupPVC: { fast: { storageClass: 'fast-ro', readOnly: true } } }));
  assert.equal(world.backupPvc?.spec?.storageClassName, 'fast-ro');
  assert.deepEqual(world.backupPvc?.spec?.accessModes, ['ReadOnlyMany']);
  assert.equal(world.backupPvc?.spec?.resources?.requests?.storage, '2Gi');
});

test('after the source snapshot is gone the PVC is sized from the re-homed snapshot', () => {
  const ctx = context();
  let world = freshWorld();
  for (let i = 0; i < 7; i++) world = apply(world, firstAction(world), ctx.now);
  assert.equal(world.sourceVs, undefined);
  world.backupVs!.status = { readyToUse: true, restoreSize: '3Gi' };
  assert.equal(firstAction(world).type, 'create');
  const action = firstAction(world) as Extract<Action, { type: 'create' }>;
  assert.equal((action.object as Observed['backupPvc'])!.spec?.resources?.requests?.storage, '3Gi');
});

test('without any restore size yet, the backup PVC waits for the re-homed snapshot instead of guessing', () => {
  const ctx = context();
  let world = freshWorld();
  for (let i = 0; i < 7; i++) world = apply(world, firstAction(world), ctx.now);
  world.backupVs!.status = {};
  delete world.backupVsc!.status;
  assert.equal(plan(world, ctx).reason, 'WaitingForBackupSnapshot');
  world.backupVs!.status = { readyToUse: true };
  const action = firstAction(world) as Extract<Action, { type: 'create' }>;
  assert.equal((action.object as Observed['backupPvc'])!.spec?.resources?.requests?.storage, '1Gi');
});

test('a source snapshot that is still being deleted is waited for before its content is deleted', () => {
  const ctx = context();
  let world = freshWorld();
  for (let i = 0; i < 5; i++) world = apply(world, firstAction(world), ctx.now);
  world.sourceVs!.metadata.deletionTimestamp = '2026-11-23T10:00:00Z';
  const decision = plan(world, ctx);
  assert.equal(decision.kind, 'wait');
  assert.equal(decision.reason, 'WaitingForSourceSnapshotDeletion');
});

test('a terminal DataUpload keeps its finalizer while children are deleting, at most the cleanup grace', () => {
  const world = freshWorld();
  world.du.metadata.finalizers = [DATAUPLOAD_FINALIZER];
  world.du.status = { phase: 'Failed', completionTimestamp: '2026-11-23T10:00:00Z' };
  delete world.sourceVs;
  world.backupPod = {
    metadata: {
      name: NAME,
      namespace: NS,
      deletionTimestamp: '2026-11-23T10:00:00Z',
      ownerReferences: [{ apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: NAME, uid: UID }],
    },
  };
  assert.equal(plan(world, context({}, T0 + 1000)).kind, 'wait');
  const late = plan(world, context({}, T0 + CLEANUP_GRACE_MS));
  assert.equal(late.kind === 'act' && describe(late.action), 'finalizer:remove');
});

test('a terminal DataUpload never deletes a pod or PVC it does not own', () => {
  const world = freshWorld();
  world.du.status = { phase: 'Completed', completionTimestamp: '2026-11-23T10:00:00Z' };
  delete world.sourceVs;
  world.backupPod = { metadata: { name: NAME, namespace: NS, ownerReferences: [] } };
  world.backupPvc = { metadata: { name: NAME, namespace: NS } };
  const decision = plan(world, context());
  assert.equal(decision.kind, 'done');
});

test('a source snapshot created after the DataUpload ended is not deleted by its cleanup', () => {
  const world = freshWorld();
  world.du.status = { phase: 'Completed', completionTimestamp: '2026-11-23T09:00:00Z' };
  assert.equal(plan(world, context()).kind, 'done');
});

test('plan never mutates what it observed', () => {
  const world = freshWorld();
  const frozen = structuredClone(world);
  deepFreeze(world);
  drive(world, context());
  assert.deepEqual(world, frozen);
});

function firstAction(world: Observed): Action {
  const decision = plan(world, context());
  if (decision.kind !== 'act') throw new Error(`expected an action, got ${decision.kind}: ${decision.message}`);
  return decision.action;
}

function fail(): never {
  throw new Error('unreachable');
}

test('a DataUpload another controller accepted is left to it: no object is created (checklist 8)', () => {
  const world = freshWorld();
  world.du.metadata.finalizers = [DATAUPLOAD_FINALIZER];
  world.du.status = { phase: 'Accepted', acceptedByNode: 'node-b', acceptedTimestamp: '2026-11-23T10:00:00Z' };
  const decision = plan(world, context());
  assert.equal(decision.kind, 'done');
  assert.equal(decision.reason, 'AcceptedByOther');
  assert.equal(
    plan({ ...world, du: { ...world.du, status: { ...world.du.status, phase: 'Prepared' } } }, context()).reason,
    'AcceptedByOther',
  );
});

test('a finished DataUpload another controller exposed only loses the finalizer; its acceptor cleans up', () => {
  const { world } = drive(freshWorld(), context());
  delete world.du.metadata.annotations;
  world.du.status = { ...world.du.status, phase: 'Completed', completionTimestamp: '2026-11-23T10:05:00Z' };
  assert.deepEqual(drive(world, context()).actions.map(describe), ['finalizer:remove']);
});

/** The world up to the backup PVC, whose class (known to the cache) binds `mode`. */
function upToBackupPvc(mode: string | undefined): Observed {
  let world = freshWorld();
  const ctx = context();
  for (;;) {
    const decision = plan(world, ctx);
    assert.equal(decision.kind, 'act');
    const action = (decision as { action: Action }).action;
    world = apply(world, action);
    if (action.type === 'create' && action.resource.kind === 'PersistentVolumeClaim') break;
  }
  world.backupStorageClass = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: world.backupPvc!.spec!.storageClassName! },
    provisioner: 'csi.example.com',
    ...(mode ? { volumeBindingMode: mode } : {}),
  };
  return world;
}

test('the backup pod waits for its PVC of an Immediate class to bind, for at most 5 s, then is created anyway', () => {
  for (const mode of ['Immediate', undefined]) {
    const world = upToBackupPvc(mode);
    const waiting = plan(world, context({}, T0 + 1_000));
    assert.equal(waiting.kind, 'wait', `class binding ${mode ?? '(default)'}`);
    assert.equal(waiting.reason, 'WaitingForBackupPVCBinding');
    assert.equal((waiting as { requeueAfterMs?: number }).requeueAfterMs, BIND_HEAD_START_MS - 1_000);

    const bound = structuredClone(world);
    bound.backupPvc!.status = { phase: 'Bound' };
    assert.equal(describe(firstAction(bound)), 'create:Pod', 'a bound PVC gets its pod at once');

    const late = plan(world, context({}, T0 + BIND_HEAD_START_MS));
    assert.equal(late.kind, 'act', 'an unbound PVC gets its pod once the head start is over');
    assert.equal(describe((late as { action: Action }).action), 'create:Pod');
  }
});

test('the backup pod does not wait for a WaitForFirstConsumer class, nor for a class the operator does not know', () => {
  assert.equal(describe(firstAction(upToBackupPvc('WaitForFirstConsumer'))), 'create:Pod');
  const unknown = upToBackupPvc('Immediate');
  delete unknown.backupStorageClass;
  assert.equal(describe(firstAction(unknown)), 'create:Pod');
});

test('a short prepare timeout shortens the binding head start to a quarter of it', () => {
  const world = upToBackupPvc('Immediate');
  const ctx = { ...context({}, T0), prepareTimeoutMs: 8_000 };
  const waiting = plan(world, ctx);
  assert.equal((waiting as { requeueAfterMs?: number }).requeueAfterMs, 2_000);
  assert.equal(plan(world, { ...ctx, now: T0 + 2_000 }).kind, 'act');
});
