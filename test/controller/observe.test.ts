import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataUpload } from '../../src/api/dataupload.js';
import { LABEL_EXPOSE_ON_GOING } from '../../src/api/names.js';
import { Observer } from '../../src/controller/observe.js';
import { WriteOverlay } from '../../src/controller/overlay.js';
import { Resources } from '../../src/runtime/kube-api.js';
import { SimCluster } from './cluster-sim.js';
import { newDataUpload, NS, T0 } from './world.js';

function du(name: string, exposing: boolean, resourceVersion = '1'): DataUpload {
  const d = newDataUpload();
  d.metadata = { ...d.metadata, name, uid: `uid-${name}`, resourceVersion };
  d.metadata.labels = exposing ? { [LABEL_EXPOSE_ON_GOING]: 'true' } : {};
  if (exposing) d.status = { phase: 'Accepted' };
  return d;
}

test('the prepare queue count is the indexed label, corrected by our own writes the cache does not show yet', () => {
  const sim = new SimCluster(T0);
  for (const d of [du('a', true), du('b', false), du('c', true), du('x', false)]) sim.put('DataUpload', d);
  const stores = sim.stores();
  const cachedVersion = (_r: unknown, ns: string | undefined, name: string) =>
    stores.dataUploads.get(name, ns)?.metadata.resourceVersion;
  const overlay = new WriteOverlay({ now: () => T0, cachedVersion });
  // We accepted b (label added) and finished c (label removed); the cache still shows both as before.
  overlay.noteWritten(Resources.dataUploads, du('b', true, '900'));
  overlay.noteWritten(Resources.dataUploads, du('c', false, '901'));
  const observer = new Observer(stores, overlay);
  const x = stores.dataUploads.get('x', NS)!;
  assert.equal(observer.observe(x, new Set([`${NS}/d`])).exposeOnGoing, 3, 'a, b, and d whose accept is in flight');
  assert.equal(observer.observe(stores.dataUploads.get('a', NS)!).exposeOnGoing, 0, 'only counted for a New one');
  const off = new Observer(stores, overlay, { countExposeOnGoing: false });
  assert.equal(off.observe(x).exposeOnGoing, 0, 'not counted at all without a prepare queue length');
});
