import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '../../src/api/kube.js';
import {
  applyWatchEvent,
  freezeParsedJson,
  diffRelist,
  objectKey,
  stripManagedFields,
} from '../../src/runtime/watch-cache.js';

function obj(name: string, rv: string, uid = `uid-${name}`, namespace = 'ns'): KubeObject {
  return { metadata: { name, namespace, resourceVersion: rv, uid } };
}

function storeOf(...objects: KubeObject[]): Map<string, KubeObject> {
  return new Map(objects.map((o) => [objectKey(o), o]));
}

function summary(events: { type: string; object: KubeObject; old?: KubeObject }[]): string[] {
  return events.map(
    (e) =>
      `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}` +
      (e.old ? ` (was ${e.old.metadata.resourceVersion})` : ''),
  );
}

describe('diffRelist', () => {
  const cases: { name: string; current: KubeObject[]; listed: KubeObject[]; want: string[] }[] = [
    {
      name: 'the first list adds everything',
      current: [],
      listed: [obj('a', '1'), obj('b', '2')],
      want: ['added a@1', 'added b@2'],
    },
    {
      name: 'an object with the same resourceVersion gives no event',
      current: [obj('a', '1')],
      listed: [obj('a', '1')],
      want: [],
    },
    {
      name: 'a changed object gives one update carrying its old state',
      current: [obj('a', '1'), obj('b', '2')],
      listed: [obj('a', '5'), obj('b', '2')],
      want: ['updated a@5 (was 1)'],
    },
    {
      name: 'a vanished object gives one delete with its last known state',
      current: [obj('a', '1'), obj('b', '2')],
      listed: [obj('b', '2')],
      want: ['deleted a@1'],
    },
    {
      name: 'a name reused by a new object gives a delete of the old one and an add of the new one',
      current: [obj('a', '1', 'old-uid')],
      listed: [obj('a', '9', 'new-uid')],
      want: ['deleted a@1', 'added a@9'],
    },
    {
      name: 'adds, updates and deletes combine in one relist',
      current: [obj('a', '1'), obj('b', '2'), obj('c', '3')],
      listed: [obj('b', '7'), obj('c', '3'), obj('d', '8')],
      want: ['updated b@7 (was 2)', 'added d@8', 'deleted a@1'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const current = storeOf(...c.current);
      const { store, events } = diffRelist(current, c.listed);
      assert.deepEqual(summary(events), c.want);
      assert.deepEqual([...store.keys()].sort(), c.listed.map(objectKey).sort());
      assert.equal(current.size, c.current.length, 'the current store is not mutated');
    });
  }
});

describe('applyWatchEvent', () => {
  test('a delete of an object the cache no longer holds gives no second delete', () => {
    const store = storeOf(obj('a', '1'));
    assert.deepEqual(summary([applyWatchEvent(store, 'DELETED', obj('a', '2'))!]), ['deleted a@2 (was 1)']);
    assert.equal(applyWatchEvent(store, 'DELETED', obj('a', '2')), undefined);
    assert.equal(store.size, 0);
  });

  test('a replayed event with the cached resourceVersion gives no update', () => {
    const store = storeOf(obj('a', '1'));
    assert.equal(applyWatchEvent(store, 'MODIFIED', obj('a', '1')), undefined);
    assert.deepEqual(summary([applyWatchEvent(store, 'MODIFIED', obj('a', '2'))!]), ['updated a@2 (was 1)']);
  });

  test('a cluster-scoped object is keyed by its name alone', () => {
    const store = new Map<string, KubeObject>();
    applyWatchEvent(store, 'ADDED', { metadata: { name: 'node-1', resourceVersion: '1' } });
    assert.deepEqual([...store.keys()], ['node-1']);
  });
});

test('a deep-frozen object rejects writes at any depth', () => {
  const o = freezeParsedJson({ metadata: { name: 'a', labels: { x: 'y' } }, spec: { list: [{ v: 1 }] } });
  assert.throws(() => {
    (o.metadata.labels as Record<string, string>).x = 'z';
  }, TypeError);
  assert.throws(() => {
    (o.spec.list as { v: number }[]).push({ v: 2 });
  }, TypeError);
  assert.throws(() => {
    (o.spec.list[0] as { v: number }).v = 3;
  }, TypeError);
});

test('managedFields are dropped and everything else is kept', () => {
  const o = {
    metadata: { name: 'a', labels: { x: 'y' }, managedFields: [{ manager: 'kubectl' }] },
    spec: { v: 1 },
  } as KubeObject;
  const out = stripManagedFields(o) as KubeObject & { spec: unknown };
  assert.deepEqual(out, { metadata: { name: 'a', labels: { x: 'y' } }, spec: { v: 1 } });
});
