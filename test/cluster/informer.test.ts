import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Informer, keyOf, type CacheChange, type CachedObject } from './informer.js';
import type { RestClient } from './rest.js';

interface Snap extends CachedObject {
  spec: { claim?: string };
}

function snap(name: string, claim?: string, resourceVersion = '1'): Snap {
  return { metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion }, spec: claim ? { claim } : {} };
}

/** A RestClient that lists `items` once and then streams whatever the test writes to `watch`. */
function fakeClient(items: Snap[]): { client: RestClient; watch: PassThrough } {
  const watch = new PassThrough();
  const client = {
    call: () => Promise.resolve({ metadata: { resourceVersion: '1' }, items }),
    openStream: () => Promise.resolve(watch),
  } as unknown as RestClient;
  return { client, watch };
}

async function started(items: Snap[]) {
  const { client, watch } = fakeClient(items);
  const changes: (CacheChange<Snap> | undefined)[] = [];
  const informer = new Informer<Snap>({ client, path: '/x', log: () => undefined, onChange: (c) => changes.push(c) });
  informer.addIndex('claim', (s) => (s.spec.claim ? [`${s.metadata.namespace}/${s.spec.claim}`] : []));
  informer.start();
  while (!informer.hasSynced) await sleep(1);
  const send = async (type: string, object: Snap) => {
    watch.write(`${JSON.stringify({ type, object })}\n`);
    await sleep(5);
  };
  return { informer, changes, send, stop: () => informer.stop() };
}

const names = (items: Snap[]) => items.map((s) => s.metadata.name).sort();

describe('Informer indexes', () => {
  test('a list fills the index and reports one change without an object', async () => {
    const { informer, changes, stop } = await started([snap('a', 'c1'), snap('b', 'c1'), snap('c', 'c2'), snap('d')]);
    try {
      assert.deepEqual(names(informer.byIndex('claim', 'ns/c1')), ['a', 'b']);
      assert.deepEqual(names(informer.byIndex('claim', 'ns/c2')), ['c']);
      assert.deepEqual(informer.byIndex('claim', 'ns/none'), []);
      assert.deepEqual(changes, [undefined]);
    } finally {
      stop();
    }
  });

  test('watch events move objects between keys, drop deleted ones, and report the replaced version', async () => {
    const { informer, changes, send, stop } = await started([snap('a', 'c1')]);
    try {
      await send('ADDED', snap('b', 'c1', '2'));
      await send('MODIFIED', snap('a', 'c2', '3'));
      assert.deepEqual(names(informer.byIndex('claim', 'ns/c1')), ['b']);
      assert.deepEqual(names(informer.byIndex('claim', 'ns/c2')), ['a']);
      await send('DELETED', snap('b', 'c1', '4'));
      assert.deepEqual(informer.byIndex('claim', 'ns/c1'), []);
      assert.equal(informer.getByKey('ns/a')?.spec.claim, 'c2');
      assert.equal(informer.getByKey('ns/b'), undefined);
      const modified = changes.find((c) => c?.type === 'MODIFIED');
      assert.equal(modified?.previous?.spec.claim, 'c1');
      assert.equal(modified?.object.spec.claim, 'c2');
      assert.equal(changes.find((c) => c?.type === 'DELETED')?.previous?.metadata.resourceVersion, '2');
    } finally {
      stop();
    }
  });

  test('keyOf is namespace/name, or the name of a cluster-scoped object', () => {
    assert.equal(keyOf(snap('a')), 'ns/a');
    assert.equal(keyOf({ metadata: { name: 'pv-1' } }), 'pv-1');
  });
});
