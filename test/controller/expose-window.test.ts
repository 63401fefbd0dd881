/** `--max-concurrent-exposes`: New DataUploads wait for a slot, and a slow one never holds its slot for long. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataUpload } from '../../src/api/dataupload.js';
import { DATAUPLOAD_FINALIZER } from '../../src/api/names.js';
import { EXPOSE_WINDOW_FULL, plan } from '../../src/controller/plan.js';
import { Observer } from '../../src/controller/observe.js';
import { WriteOverlay } from '../../src/controller/overlay.js';
import { SimCluster } from './cluster-sim.js';
import { context, freshWorld, newDataUpload, NS, T0 } from './world.js';

function withFinalizer() {
  const world = freshWorld();
  world.du.metadata.finalizers = [DATAUPLOAD_FINALIZER];
  return world;
}

test('a New DataUpload waits while the window is full, and is accepted once a slot is free', () => {
  const ctx = { ...context(), maxConcurrentExposes: 32 };
  const full = plan({ ...withFinalizer(), exposing: 32 }, ctx);
  assert.equal(full.kind, 'wait');
  assert.equal(full.reason, EXPOSE_WINDOW_FULL);
  assert.match(full.message, /32 DataUploads are being exposed, --max-concurrent-exposes is 32/);
  const free = plan({ ...withFinalizer(), exposing: 31 }, ctx);
  assert.equal(free.kind === 'act' && free.action.type === 'patchDataUpload' && free.action.phase, 'Accepted');
  const unlimited = plan({ ...withFinalizer(), exposing: 500 }, { ...ctx, maxConcurrentExposes: 0 });
  assert.equal(unlimited.kind, 'act', '0 means no limit');
});

function accepted(name: string, acceptedAgoMs: number): DataUpload {
  const du = newDataUpload();
  du.metadata = { ...du.metadata, name, uid: `uid-${name}` };
  du.status = {
    phase: 'Accepted',
    acceptedTimestamp: new Date(T0 - acceptedAgoMs).toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  return du;
}

test('the count is Accepted DataUploads of the last minute without a backupPod, plus accepts in flight', () => {
  const sim = new SimCluster(T0);
  sim.put('DataUpload', accepted('recent', 5_000));
  sim.put('DataUpload', accepted('slow', 120_000));
  const prepared = accepted('done', 1_000);
  prepared.status = { ...prepared.status, phase: 'Prepared' };
  sim.put('DataUpload', prepared);
  const fresh = newDataUpload();
  fresh.metadata = { ...fresh.metadata, name: 'fresh', uid: 'uid-fresh' };
  sim.put('DataUpload', fresh);
  const observer = new Observer(sim.stores(), new WriteOverlay({ now: () => T0, cachedVersion: () => undefined }), {
    countExposing: 32,
    now: () => T0,
  });
  const du = sim.get<DataUpload>('DataUpload', 'fresh', NS)!;
  assert.equal(
    observer.observe(du, new Set([`${NS}/in-flight`])).exposing,
    2,
    'recent + in-flight; not slow, done or self',
  );
  const small = new Observer(sim.stores(), new WriteOverlay({ now: () => T0, cachedVersion: () => undefined }), {
    countExposing: 1,
    now: () => T0,
  });
  assert.equal(small.observe(du, new Set([`${NS}/in-flight`])).exposing, 1, 'the count stops at the window');
  assert.equal(small.observe(du).exposing, 1, 'newest Accepted first');
  const off = new Observer(sim.stores(), new WriteOverlay({ now: () => T0, cachedVersion: () => undefined }));
  assert.equal(off.observe(du).exposing, undefined, 'not counted without a window');
});

test('a New DataUpload without a finalizer that would only wait gets no finalizer write yet; a canceled one does', () => {
  const ctx = { ...context(), maxConcurrentExposes: 4 };
  const waiting = plan({ ...freshWorld(), exposing: 4 }, ctx);
  assert.equal(waiting.kind, 'wait');
  assert.equal(waiting.reason, EXPOSE_WINDOW_FULL);
  const turn = plan({ ...freshWorld(), exposing: 3 }, ctx);
  assert.equal(turn.kind === 'act' && turn.reason, 'AddFinalizer', 'its turn: the finalizer first, as Velero does');
  const canceled = freshWorld(newDataUpload({ cancel: true }));
  const decision = plan({ ...canceled, exposing: 4 }, ctx);
  assert.equal(decision.kind === 'act' && decision.reason, 'AddFinalizer', 'a cancel is handled at once');
});
