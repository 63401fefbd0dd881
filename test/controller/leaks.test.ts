/**
 * No leak on any path: a DataUpload canceled, deleted, failed or refused at every step of exposing leaves nothing
 * behind, and its storage snapshot is released exactly once. Driven through the real Observer and plan() against
 * a simulated cluster (cluster-sim.ts) that deletes, binds and collects like the real controllers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataUpload } from '../../src/api/dataupload.js';
import type { KubeObject, Pod, VolumeSnapshotContent } from '../../src/api/kube.js';
import { DATAUPLOAD_FINALIZER } from '../../src/api/names.js';
import { plan, tombstoneOf } from '../../src/controller/plan.js';
import { isRefusedAction } from '../../src/controller/errors.js';
import type { Action, Decision, Refusal } from '../../src/controller/types.js';
import { Observer } from '../../src/controller/observe.js';
import { WriteOverlay } from '../../src/controller/overlay.js';
import { Resources } from '../../src/runtime/kube-api.js';
import { SimCluster } from './cluster-sim.js';
import { context, describe as label, freshWorld, NAME, NS, T0 } from './world.js';

const HANDLE = 'snap-handle-1';
const SOURCE_PVC = { namespace: 'app', name: 'data' };

interface Scenario {
  /** Settle the cluster after every action (deletions finish at once), or only when the plan waits. */
  eagerSettle: boolean;
  /** Make the backup pod Running when the cluster settles. */
  podsRun?: boolean;
  /** The source content's own deletion policy. */
  sourcePolicy?: 'Delete' | 'Retain';
  /** Writes the API server refuses for good. */
  refuse?: (action: Action) => Refusal | undefined;
  /** Stop when the plan waits for this reason (instead of letting the clock run to the requeue time). */
  stopAt?: string;
}

function newSim(s: Scenario): SimCluster {
  const sim = new SimCluster(T0);
  const world = freshWorld();
  sim.put('DataUpload', world.du);
  // Already bound: its volume is the workload's, not part of what exposing makes.
  sim.put('PersistentVolumeClaim', { ...world.sourcePvc!, spec: { ...world.sourcePvc!.spec, volumeName: 'pv-src' } });
  sim.put('VolumeSnapshot', world.sourceVs!);
  const vsc = structuredClone<VolumeSnapshotContent>(world.sourceVsc!);
  vsc.spec.deletionPolicy = s.sourcePolicy ?? 'Delete';
  sim.put('VolumeSnapshotContent', vsc);
  for (const n of ['kwok-node-0', 'kwok-node-1']) {
    sim.put('Node', { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'kubernetes.io/os': 'linux' } } });
  }
  return sim;
}

function runPods(sim: SimCluster): void {
  for (const pod of sim.all('Pod')) {
    if (pod.metadata.deletionTimestamp) continue;
    const running: Pod = { ...(pod as Pod), status: { phase: 'Running' } };
    running.spec = { ...running.spec!, nodeName: 'kwok-node-1' };
    sim.put('Pod', running);
  }
}

interface Outcome {
  steps: string[];
  last?: Decision;
  gone: boolean;
}

/**
 * Runs reconcile passes (observe → plan → apply) like the reconciler, until the DataUpload is done or gone.
 * `inject(actionsSoFar)` may change the world between actions (a cancel, a delete).
 */
function run(sim: SimCluster, s: Scenario, inject?: (actions: number) => void): Outcome {
  const steps: string[] = [];
  const refused: Refusal[] = [];
  let actions = 0;
  let idle = 0;
  for (let i = 0; i < 300; i++) {
    inject?.(actions);
    const observer = new Observer(
      sim.stores(),
      new WriteOverlay({ now: () => sim.now, cachedVersion: () => undefined }),
    );
    const du = observer.dataUpload(NS, NAME);
    if (!du) return { steps, gone: true };
    const decision = plan(observer.observe(structuredClone(du), new Set(), refused), context({}, sim.now));
    if (decision.kind === 'act') {
      const refusal = s.refuse?.(decision.action);
      if (refusal && !refused.some((r) => isRefusedAction(r, decision.action))) {
        refused.push(refusal);
        steps.push(`refused ${label(decision.action)}`);
        continue;
      }
      sim.apply(du, decision.action);
      steps.push(label(decision.action));
      actions++;
      idle = 0;
      if (s.eagerSettle) settle(sim, s);
      continue;
    }
    if (decision.kind === 'done') {
      // The API server removes a deleted object once its last finalizer goes.
      if (++idle > 1) return { steps, last: decision, gone: false };
      settle(sim, s);
      continue;
    }
    if (decision.reason === s.stopAt) return { steps, last: decision, gone: false };
    // A wait: let the cluster move; if nothing moves, let the clock run to the requeue time.
    refused.length = 0;
    settle(sim, s);
    if (++idle > 3) sim.now += decision.requeueAfterMs ?? 1000;
    if (idle > 10) return { steps, last: decision, gone: false };
  }
  throw new Error(`no rest: ${steps.join(' ')}`);
}

function settle(sim: SimCluster, s: Scenario): void {
  sim.settle();
  if (s.podsRun) {
    runPods(sim);
    sim.settle();
  }
}

function assertClean(sim: SimCluster, o: Outcome, why: string): void {
  assert.deepEqual(sim.leftovers(SOURCE_PVC), [], `${why}: nothing left behind (steps: ${o.steps.join(', ')})`);
  assert.equal(
    sim.released.get(HANDLE),
    1,
    `${why}: the storage snapshot is released exactly once (steps: ${o.steps.join(', ')})`,
  );
  const du = sim.get<DataUpload>('DataUpload', NAME, NS);
  if (du) {
    assert.ok(!du.metadata.finalizers?.includes(DATAUPLOAD_FINALIZER), `${why}: the finalizer is gone`);
    assert.match(du.status?.phase ?? '', /^(Canceled|Failed)$/, `${why}: terminal`);
  }
}

/** How many actions the whole expose takes in this scenario, up to Prepared. */
function exposeLength(s: Scenario): number {
  const sim = newSim(s);
  return run(sim, { ...s, podsRun: true }).steps.length;
}

for (const eagerSettle of [true, false]) {
  const mode = eagerSettle ? 'deletions finish at once' : 'deletions still running';
  describe(`a cancel or delete at any step of exposing leaves nothing behind (${mode})`, () => {
    const scenario: Scenario = { eagerSettle, podsRun: true };
    const total = exposeLength(scenario);

    test('the expose itself takes the whole path and reaches Prepared', () => {
      const sim = newSim(scenario);
      const o = run(sim, scenario);
      assert.equal(sim.get<DataUpload>('DataUpload', NAME, NS)?.status?.phase, 'Prepared', o.steps.join(', '));
      assert.ok(total >= 10, `the path has every step (${total})`);
    });

    for (let k = 0; k <= total; k++) {
      for (const how of ['cancel', 'delete'] as const) {
        test(`${how} after ${k} of ${total} actions`, () => {
          const sim = newSim(scenario);
          const o = run(sim, scenario, (actions) => {
            if (actions !== k) return;
            const du = sim.get<DataUpload>('DataUpload', NAME, NS);
            if (!du || du.spec.cancel || du.metadata.deletionTimestamp) return;
            if (how === 'cancel') sim.put('DataUpload', { ...du, spec: { ...du.spec, cancel: true } });
            else sim.markDeleted('DataUpload', NAME, NS);
          });
          assertClean(sim, o, `${how} after ${k}`);
          if (how === 'delete') assert.equal(o.gone, true, 'a deleted DataUpload goes once cleaned up');
        });
      }
    }
  });
}

describe('a write the API server refuses for good', () => {
  const refusePod = (action: Action): Refusal | undefined =>
    action.type === 'create' && action.resource === Resources.pods
      ? {
          verb: 'create',
          resource: Resources.pods,
          name: action.object.metadata.name!,
          namespace: action.object.metadata.namespace,
          code: 403,
          reason: 'Forbidden',
          message: `pods "${NAME}" is forbidden: violates PodSecurity "baseline:latest": seLinuxOptions`,
        }
      : undefined;

  test('fails the DataUpload in the same pass, quoting the API server and naming the object, then cleans up', () => {
    const scenario: Scenario = { eagerSettle: false, refuse: refusePod };
    const sim = newSim(scenario);
    const o = run(sim, scenario);
    const du = sim.get<DataUpload>('DataUpload', NAME, NS)!;
    assert.equal(du.status?.phase, 'Failed');
    assert.equal(
      du.status?.message,
      `create Pod velero/${NAME} rejected by the API server (403 Forbidden): pods "${NAME}" is forbidden: ` +
        'violates PodSecurity "baseline:latest": seLinuxOptions',
    );
    const refusedAt = o.steps.indexOf('refused create:Pod');
    assert.equal(o.steps[refusedAt + 1], 'finish:Failed', 'no retry: the very next write fails it');
    assertClean(sim, o, 'refused pod');
  });

  test('a refused cleanup write is skipped, the rest is cleaned up, and the finalizer still goes', () => {
    const refuseDeletePvc = (action: Action): Refusal | undefined =>
      action.type === 'delete' && action.resource === Resources.persistentVolumeClaims
        ? {
            verb: 'delete',
            resource: action.resource,
            name: action.name,
            namespace: action.namespace,
            code: 403,
            reason: 'Forbidden',
            message: 'admission webhook "guard.example.com" denied the request: protected',
          }
        : undefined;
    const scenario: Scenario = { eagerSettle: true, podsRun: true, refuse: refuseDeletePvc };
    const sim = newSim(scenario);
    run(sim, scenario);
    const o = run(sim, scenario, () => {
      const du = sim.get<DataUpload>('DataUpload', NAME, NS)!;
      if (!du.spec.cancel) sim.put('DataUpload', { ...du, spec: { ...du.spec, cancel: true } });
    });
    const du = sim.get<DataUpload>('DataUpload', NAME, NS)!;
    assert.equal(du.status?.phase, 'Canceled');
    assert.ok(!du.metadata.finalizers?.includes(DATAUPLOAD_FINALIZER), o.steps.join(', '));
    assert.deepEqual(
      sim.leftovers(SOURCE_PVC).filter((l) => !l.startsWith('PersistentVolume ')),
      [`PersistentVolumeClaim velero/${NAME}`],
      'only the refused PVC (and its volume) stays',
    );
    assert.equal(sim.released.get(HANDLE), 1);
  });
});

describe('other terminal paths clean up the same way', () => {
  test('a prepare timeout while the source snapshot is still being deleted', () => {
    const scenario: Scenario = { eagerSettle: false };
    const sim = newSim(scenario);
    // Expose until the source snapshot deletion is asked for, then time out before it finishes.
    const o1 = run(sim, scenario, () => undefined);
    assert.ok(o1.steps.includes('create:Pod'));
    sim.now += 31 * 60_000;
    const o2 = run(sim, scenario);
    assert.equal(sim.get<DataUpload>('DataUpload', NAME, NS)?.status?.phase, 'Failed');
    assertClean(sim, o2, 'timeout');
  });

  test('an unrecoverable backup pod', () => {
    const scenario: Scenario = { eagerSettle: true, stopAt: 'WaitingForBackupPod' };
    const sim = newSim(scenario);
    run(sim, scenario);
    const pod = sim.get('Pod', NAME, NS)!;
    sim.put('Pod', { ...pod, status: { phase: 'Failed' } } as KubeObject);
    const o = run(sim, scenario);
    assert.equal(sim.get<DataUpload>('DataUpload', NAME, NS)?.status?.phase, 'Canceled');
    assertClean(sim, o, 'failed pod');
  });

  test('a source content whose own policy is Retain is left to that policy when exposing had not re-homed it', () => {
    const scenario: Scenario = { eagerSettle: true, sourcePolicy: 'Retain' };
    const sim = newSim(scenario);
    const o = run(sim, scenario, (actions) => {
      const du = sim.get<DataUpload>('DataUpload', NAME, NS)!;
      if (actions === 2 && !du.spec.cancel) sim.put('DataUpload', { ...du, spec: { ...du.spec, cancel: true } });
    });
    assert.deepEqual(sim.leftovers(SOURCE_PVC), ['VolumeSnapshotContent snapcontent-src'], o.steps.join(', '));
    assert.equal(sim.released.get(HANDLE) ?? 0, 0, 'the user asked to retain that storage snapshot');
  });

  test('with a source policy of Retain, once re-homing began the backup content releases the snapshot and both go', () => {
    const scenario: Scenario = { eagerSettle: true, sourcePolicy: 'Retain' };
    const sim = newSim(scenario);
    const o = run(sim, scenario, (actions) => {
      const du = sim.get<DataUpload>('DataUpload', NAME, NS)!;
      if (actions === 4 && !du.spec.cancel) sim.put('DataUpload', { ...du, spec: { ...du.spec, cancel: true } });
    });
    assertClean(sim, o, 'retain source after backup content');
  });
});

describe('a DataUpload deleted before any controller held it with a finalizer', () => {
  test('is cleaned up from its tombstone: the source snapshot Velero made for it goes, released once', () => {
    const scenario: Scenario = { eagerSettle: true };
    const sim = newSim(scenario);
    const du = structuredClone(sim.get<DataUpload>('DataUpload', NAME, NS)!);
    sim.markDeleted('DataUpload', NAME, NS);
    sim.settle();
    assert.equal(sim.get('DataUpload', NAME, NS), undefined, 'no finalizer held it');
    const tombstone = tombstoneOf(du, sim.now);
    assert.ok(tombstone);
    const steps: string[] = [];
    for (let i = 0; i < 10; i++) {
      const observer = new Observer(
        sim.stores(),
        new WriteOverlay({ now: () => sim.now, cachedVersion: () => undefined }),
      );
      const decision = plan(observer.observe(tombstone), context({}, sim.now));
      if (decision.kind !== 'act') break;
      assert.notEqual(decision.action.type, 'patchDataUpload', 'nothing is written to a DataUpload that is gone');
      sim.apply(tombstone, decision.action);
      steps.push(label(decision.action));
      sim.settle();
    }
    assert.deepEqual(steps, ['delete:VolumeSnapshot:app/velero-data-abcde']);
    assert.deepEqual(sim.leftovers(SOURCE_PVC), []);
    assert.equal(sim.released.get(HANDLE), 1);
  });

  test('only a New one of ours: an accepted, finished or foreign DataUpload leaves no tombstone', () => {
    const du = freshWorld().du;
    assert.ok(tombstoneOf(du, T0));
    const finalized = { ...du, metadata: { ...du.metadata, finalizers: [DATAUPLOAD_FINALIZER] } };
    assert.ok(tombstoneOf(finalized, T0), 'deleted anyway, with a finalizer patched in during the delete');
    assert.equal(tombstoneOf({ ...du, status: { phase: 'Accepted', acceptedByNode: 'node-a' } }, T0), undefined);
    assert.equal(tombstoneOf({ ...du, status: { phase: 'Canceled' } }, T0), undefined);
    assert.equal(tombstoneOf({ ...du, spec: { ...du.spec, datamover: 'other' } }, T0), undefined);
  });
});
