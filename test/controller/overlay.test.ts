import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../src/api/index.js';
import { WriteOverlay } from '../../src/controller/overlay.js';
import { Resources } from '../../src/runtime/kube-api.js';

const R = Resources.persistentVolumeClaims;

/** A one-object "cache" and an overlay reading it, with a controllable clock. */
function setup() {
  let cached: KubeObject | undefined;
  let now = 0;
  const overlay = new WriteOverlay({
    now: () => now,
    ttlMs: 30_000,
    cachedVersion: () => cached?.metadata.resourceVersion,
  });
  return {
    overlay,
    setCache: (rv: string | undefined, extra: Partial<KubeObject['metadata']> = {}) => {
      cached =
        rv === undefined ? undefined : { metadata: { name: 'p', namespace: 'ns', resourceVersion: rv, ...extra } };
    },
    read: () => overlay.read(R, 'ns', 'p', cached),
    advance: (ms: number) => (now += ms),
  };
}

const written = (rv: string): KubeObject => ({ metadata: { name: 'p', namespace: 'ns', resourceVersion: rv } });

test('our write shadows a cache that has not seen it yet', () => {
  const s = setup();
  s.setCache('1');
  s.overlay.noteWritten(R, written('2'));
  assert.equal(s.read()?.metadata.resourceVersion, '2');
});

test('a created object is visible before the cache sees it', () => {
  const s = setup();
  s.overlay.noteWritten(R, written('5'));
  assert.equal(s.read()?.metadata.resourceVersion, '5');
});

test('once the cache shows our version, the cache is read again', () => {
  const s = setup();
  s.setCache('1');
  s.overlay.noteWritten(R, written('2'));
  s.setCache('2');
  assert.equal(s.read()?.metadata.resourceVersion, '2');
  assert.equal(s.overlay.size(), 0);
});

test('a watch event that arrives before the write response leaves no stale entry behind', () => {
  const s = setup();
  s.setCache('2');
  s.overlay.noteWritten(R, written('2'));
  assert.equal(s.overlay.size(), 0);
  s.setCache('3', { deletionTimestamp: '2026-11-23T10:00:00Z' });
  assert.equal(s.read()?.metadata.deletionTimestamp, '2026-11-23T10:00:00Z');
});

test('a cache that moved past the version we wrote on wins, even if it skipped our version', () => {
  const s = setup();
  s.setCache('1');
  s.overlay.noteWritten(R, written('2'));
  s.setCache('7');
  assert.equal(s.read()?.metadata.resourceVersion, '7');
});

test('a deletion we asked for shows as deleting until the cache drops the object', () => {
  const s = setup();
  s.setCache('4');
  s.overlay.noteDeleted(R, 'ns', 'p');
  assert.ok(s.read()?.metadata.deletionTimestamp, 'shown as being deleted');
  s.setCache(undefined);
  assert.equal(s.read(), undefined);
  assert.equal(s.overlay.size(), 0);
});

test('entries expire after their time-to-live', () => {
  const s = setup();
  s.setCache('1');
  s.overlay.noteWritten(R, written('2'));
  s.advance(30_000);
  assert.equal(s.read()?.metadata.resourceVersion, '1');
});

test('observe drops an entry when the cache event carries our version', () => {
  const s = setup();
  s.setCache('1');
  s.overlay.noteWritten(R, written('2'));
  s.overlay.observe(R, 'updated', written('2'));
  assert.equal(s.overlay.size(), 0);
});

test('a create whose version and a newer one the watch delivered before its answer does not shadow the newer one', async () => {
  const s = setup();
  const event = (rv: string) => {
    s.setCache(rv);
    s.overlay.observe(R, rv === '5' ? 'added' : 'updated', written(rv));
  };
  const answer = await s.overlay.track(R, 'ns', 'p', () => {
    event('5'); // the pod as created
    event('6'); // scheduled and Running, before the create's answer is read
    return Promise.resolve(written('5'));
  });
  assert.equal(answer.metadata.resourceVersion, '5');
  assert.equal(s.read()?.metadata.resourceVersion, '6', 'the cache, newer than our answer, wins');
  assert.equal(s.overlay.size(), 0);
});

test('a tracked write whose version the watch has not delivered yet shadows the cache until it does', async () => {
  const s = setup();
  s.setCache('1');
  await s.overlay.track(R, 'ns', 'p', () => Promise.resolve(written('2')));
  assert.equal(s.read()?.metadata.resourceVersion, '2');
  s.setCache('2');
  s.overlay.observe(R, 'updated', written('2'));
  assert.equal(s.overlay.size(), 0);
});

test('a tracked write that fails remembers nothing', async () => {
  const s = setup();
  s.setCache('1');
  await assert.rejects(s.overlay.track(R, 'ns', 'p', () => Promise.reject(new Error('409'))));
  assert.equal(s.read()?.metadata.resourceVersion, '1');
  assert.equal(s.overlay.size(), 0);
});
