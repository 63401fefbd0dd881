/**
 * The data path of the runtime on a real kube-apiserver: HttpKubeClient's error mapping and patch flavours, and
 * the WatchCache across kube-apiserver restarts and forced 410s (no missed update, no duplicate delete).
 *
 * The restart tests run on a cluster of their own (startCluster), because restarting the shared apiserver would
 * disturb the other e2e files.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeList, KubeObject } from '../../src/api/kube.js';
import {
  Resources,
  isAlreadyExists,
  isConflict,
  isInvalid,
  isNotFound,
  type DeleteOptions,
  type KubeApi,
  type ListOptions,
  type PatchType,
  type ResourceRef,
  type WatchEvent,
  type WatchOptions,
  type WriteOptions,
} from '../../src/runtime/kube-api.js';
import { HttpKubeClient, type KubeRequestInfo } from '../../src/runtime/kube-client.js';
import { WatchCache, type CacheEvent } from '../../src/runtime/watch-cache.js';
import { connectCluster, createTestNamespace, startCluster, type Cluster, type ClusterInfo } from '../cluster/index.js';
import { deleteNamespaces } from '../cluster/testing.js';
import { waitFor } from '../cluster/wait.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

function clientFor(info: ClusterInfo, onRequest?: (i: KubeRequestInfo) => void): HttpKubeClient {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  return HttpKubeClient.fromKubeConfig(kc, { userAgent: 'runtime-watch-e2e', onRequest });
}

function configMap(namespace: string, name: string, data: Record<string, string> = {}): ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data };
}

/** Records cache events with their arrival time. */
class EventLog {
  readonly events: { at: number; type: string; name: string; rv: string; data?: Record<string, string> }[] = [];

  handler = (e: CacheEvent<ConfigMap>): void => {
    this.events.push({
      at: Date.now(),
      type: e.type,
      name: e.object.metadata.name ?? '',
      rv: e.object.metadata.resourceVersion ?? '',
      data: e.object.data,
    });
  };

  count(type: string, name: string): number {
    return this.events.filter((e) => e.type === type && e.name === name).length;
  }

  since(index: number): string[] {
    return this.events.slice(index).map((e) => `${e.type} ${e.name}`);
  }
}

/**
 * A KubeApi wrapper that can hold the cache's connections back (so changes happen while it is surely
 * disconnected) and drop its open watches.
 */
class GatedApi implements KubeApi {
  readonly watchResourceVersions: (string | undefined)[] = [];
  #gate: Promise<void> | undefined;
  #open = new Set<AbortController>();
  #release: (() => void) | undefined;

  constructor(private readonly inner: KubeApi) {}

  /** New lists and watches wait until {@link release}. */
  hold(): void {
    this.#gate ??= new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release?.();
    this.#gate = undefined;
  }

  /** Ends every open watch (the cache sees a clean end and reconnects, into the gate when it is held). */
  dropWatches(): void {
    for (const c of this.#open) c.abort();
  }

  get<T extends KubeObject>(r: ResourceRef, name: string, namespace?: string): Promise<T> {
    return this.inner.get<T>(r, name, namespace);
  }
  async list<T extends KubeObject>(r: ResourceRef, options?: ListOptions): Promise<KubeList<T>> {
    await this.#gate;
    return this.inner.list<T>(r, options);
  }
  create<T extends KubeObject>(r: ResourceRef, body: T, options?: WriteOptions): Promise<T> {
    return this.inner.create(r, body, options);
  }
  replace<T extends KubeObject>(r: ResourceRef, body: T, options?: WriteOptions): Promise<T> {
    return this.inner.replace(r, body, options);
  }
  patch<T extends KubeObject>(
    r: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options?: WriteOptions,
  ): Promise<T> {
    return this.inner.patch<T>(r, name, patch, type, options);
  }
  delete(r: ResourceRef, name: string, options?: DeleteOptions): Promise<void> {
    return this.inner.delete(r, name, options);
  }
  async watch<T extends KubeObject>(
    r: ResourceRef,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#gate;
    if (signal.aborted) return;
    this.watchResourceVersions.push(options.resourceVersion);
    const own = new AbortController();
    const onAbort = (): void => own.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#open.add(own);
    try {
      await this.inner.watch(r, options, onEvent, own.signal);
    } finally {
      this.#open.delete(own);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** The truth from the apiserver: name → resourceVersion of every ConfigMap in the namespace. */
async function truth(api: KubeApi, namespace: string): Promise<Map<string, string>> {
  const list = await api.list<ConfigMap>(Resources.configMaps, { namespace });
  return new Map(list.items.map((i) => [i.metadata.name ?? '', i.metadata.resourceVersion ?? '']));
}

function cacheView(cache: WatchCache<ConfigMap>): Map<string, string> {
  return new Map(cache.list().map((i) => [i.metadata.name ?? '', i.metadata.resourceVersion ?? '']));
}

async function waitUntilCacheMatches(api: KubeApi, cache: WatchCache<ConfigMap>, namespace: string): Promise<void> {
  await waitFor(
    async () => {
      const want = await truth(api, namespace);
      const have = cacheView(cache);
      return want.size === have.size && [...want].every(([k, v]) => have.get(k) === v);
    },
    { description: 'the cache to match the apiserver', timeoutMs: 60_000, intervalMs: 100 },
  );
}

describe('HttpKubeClient on the shared cluster', () => {
  let info: ClusterInfo;
  let api: HttpKubeClient;
  let ns = '';
  const requests: KubeRequestInfo[] = [];

  before(async () => {
    const shared = connectCluster();
    info = shared;
    api = clientFor(info, (r) => requests.push(r));
    ns = await createTestNamespace(info, 'runtime-client');
  });
  after(async () => {
    api.close();
    await deleteNamespaces(connectCluster(), ns);
  });

  test('reads, writes and errors map to NotFound, AlreadyExists, Conflict and Invalid', async () => {
    const missing = await api.get(Resources.configMaps, 'nope', ns).catch((e: unknown) => e);
    assert.ok(isNotFound(missing), String(missing));

    const created = await api.create(Resources.configMaps, configMap(ns, 'cm', { a: '1' }));
    assert.equal(created.metadata.namespace, ns);
    const again = await api.create(Resources.configMaps, configMap(ns, 'cm')).catch((e: unknown) => e);
    assert.ok(isAlreadyExists(again), String(again));

    const updated = await api.replace<ConfigMap>(Resources.configMaps, { ...created, data: { a: '2' } });
    const stale = await api
      .replace<ConfigMap>(Resources.configMaps, { ...created, data: { a: '3' } })
      .catch((e: unknown) => e);
    assert.ok(isConflict(stale), String(stale));
    assert.notEqual(updated.metadata.resourceVersion, created.metadata.resourceVersion);

    const invalid = await api.create(Resources.configMaps, configMap(ns, 'Not_A_Name')).catch((e: unknown) => e);
    assert.ok(isInvalid(invalid), String(invalid));
    assert.match((invalid as Error).message, /Not_A_Name/);

    const wrongUid = await api
      .delete(Resources.configMaps, 'cm', { namespace: ns, preconditions: { uid: 'not-the-uid' } })
      .catch((e: unknown) => e);
    assert.ok(isConflict(wrongUid), String(wrongUid));
    await api.delete(Resources.configMaps, 'cm', { namespace: ns, preconditions: { uid: created.metadata.uid } });
    assert.ok(isNotFound(await api.get(Resources.configMaps, 'cm', ns).catch((e: unknown) => e)));

    assert.ok(requests.some((r) => r.verb === 'create' && r.resource === 'configmaps' && r.code === 409));
    assert.ok(requests.some((r) => r.verb === 'get' && r.code === 404));
  });

  test('each patch flavour changes the object as the apiserver understands it', async () => {
    await api.create(Resources.configMaps, configMap(ns, 'patched', { base: 'x' }));
    const opts = { namespace: ns, fieldManager: 'runtime-e2e' };
    await api.patch(Resources.configMaps, 'patched', { data: { merge: '1' } }, 'merge', opts);
    await api.patch(Resources.configMaps, 'patched', [{ op: 'add', path: '/data/json', value: '2' }], 'json', opts);
    await api.patch(Resources.configMaps, 'patched', { data: { strategic: '3' } }, 'strategic', opts);
    const applied = await api.patch<ConfigMap>(
      Resources.configMaps,
      'patched',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'patched', namespace: ns }, data: { apply: '4' } },
      'apply',
      { ...opts, fieldManager: 'runtime-e2e-apply', force: true },
    );
    assert.deepEqual(applied.data, { base: 'x', merge: '1', json: '2', strategic: '3', apply: '4' });
    const failedTest = await api
      .patch(
        Resources.configMaps,
        'patched',
        [{ op: 'test', path: '/metadata/resourceVersion', value: '1' }],
        'json',
        opts,
      )
      .catch((e: unknown) => e);
    assert.ok(isInvalid(failedTest) || isConflict(failedTest), String(failedTest));
  });

  test('a watch cache pages through a list and follows adds, updates and deletes', async () => {
    for (let i = 0; i < 7; i++) await api.create(Resources.configMaps, configMap(ns, `page-${i}`, { i: String(i) }));
    const log = new EventLog();
    const cache = new WatchCache<ConfigMap>({ api, resource: Resources.configMaps, namespace: ns, pageSize: 3 });
    cache.onEvent(log.handler);
    const ac = new AbortController();
    const running = cache.start(ac.signal);
    try {
      await cache.synced;
      const lists = requests.filter((r) => r.verb === 'list').length;
      assert.ok(lists >= 3, `a 3-item page size needs several list calls, saw ${lists}`);
      assert.ok(cache.get('page-6', ns));
      await api.patch(Resources.configMaps, 'page-0', { data: { i: 'changed' } }, 'merge', { namespace: ns });
      await api.delete(Resources.configMaps, 'page-1', { namespace: ns });
      await waitUntilCacheMatches(api, cache, ns);
      assert.equal(cache.get('page-0', ns)?.data?.i, 'changed');
      assert.equal(cache.get('page-1', ns), undefined);
      assert.equal(log.count('deleted', 'page-1'), 1);
      assert.equal(log.count('updated', 'page-0'), 1);
    } finally {
      ac.abort();
      await running;
    }
  });
});

describe('WatchCache across kube-apiserver restarts (own cluster)', () => {
  let cluster: Cluster;
  let api: HttpKubeClient;
  let ns = '';

  before(async () => {
    cluster = await startCluster({ fakeCsi: false });
    api = clientFor(cluster);
    ns = await createTestNamespace(cluster, 'runtime-restart');
  });
  after(async () => {
    api?.close();
    await cluster?.stop();
  });

  test('a cache survives an apiserver restart with no missed update and no duplicate delete', async (t) => {
    for (const name of ['keep', 'change', 'remove']) await api.create(Resources.configMaps, configMap(ns, name));
    const log = new EventLog();
    const cache = new WatchCache<ConfigMap>({ api, resource: Resources.configMaps, namespace: ns });
    cache.onEvent(log.handler);
    const ac = new AbortController();
    const running = cache.start(ac.signal);
    try {
      await cache.synced;
      const mark = log.events.length;

      await cluster.restartApiServer();
      const ready = Date.now();
      // Changed before the cache can have caught up: its reconnect backoff is at least several hundred ms.
      await api.patch(Resources.configMaps, 'change', { data: { v: 'final' } }, 'merge', { namespace: ns });
      await api.delete(Resources.configMaps, 'remove', { namespace: ns });
      await api.create(Resources.configMaps, configMap(ns, 'probe'));

      await waitFor(() => Promise.resolve(cache.get('probe', ns) !== undefined), {
        description: 'the cache to see the probe created after the restart',
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      const seenAt = log.events.find((e) => e.type === 'added' && e.name === 'probe')?.at ?? Date.now();
      await waitUntilCacheMatches(api, cache, ns);

      assert.equal(cache.get('change', ns)?.data?.v, 'final');
      assert.equal(cache.get('remove', ns), undefined);
      assert.equal(log.count('deleted', 'remove'), 1, 'exactly one delete of the removed object');
      assert.equal(log.count('deleted', 'keep') + log.count('deleted', 'change'), 0);
      assert.deepEqual(log.since(mark).sort(), ['added probe', 'deleted remove', 'updated change']);
      const stats = cache.stats();
      t.diagnostic(
        `reconnect: apiserver ready -> probe seen ${seenAt - ready} ms; ` +
          `failures=${stats.failures} gone=${stats.gone} lists=${stats.lists} watches=${stats.watches}`,
      );
    } finally {
      ac.abort();
      await running;
    }
  });

  test('a forced 410 on reconnect relists and emits exactly the changes made while disconnected', async (t) => {
    const names = ['same', 'edited', 'gone'];
    for (const name of names) await api.create(Resources.configMaps, configMap(ns, name));
    const gated = new GatedApi(api);
    const log = new EventLog();
    const cache = new WatchCache<ConfigMap>({
      api: gated,
      resource: Resources.configMaps,
      namespace: ns,
    });
    cache.onEvent(log.handler);
    const ac = new AbortController();
    const running = cache.start(ac.signal);
    try {
      await cache.synced;
      const before = cache.stats();
      const oldRv = before.resourceVersion;
      const mark = log.events.length;

      gated.hold();
      gated.dropWatches();
      await api.patch(Resources.configMaps, 'edited', { data: { v: 'while-away' } }, 'merge', { namespace: ns });
      await api.delete(Resources.configMaps, 'gone', { namespace: ns });
      await api.create(Resources.configMaps, configMap(ns, 'new'));
      // A restart resets the apiserver's watch cache, so the cache's resume point is now too old: 410 Expired.
      await cluster.restartApiServer();
      gated.release();

      await waitUntilCacheMatches(gated, cache, ns);
      const after = cache.stats();
      assert.ok(after.gone > before.gone, `expected a 410, stats ${JSON.stringify(after)}`);
      assert.ok(after.lists > before.lists, 'the 410 led to a relist');
      assert.ok(gated.watchResourceVersions.includes(oldRv), 'the cache first tried to resume from its old RV');
      const changes = log.since(mark);
      assert.deepEqual([...changes].sort(), ['added new', 'deleted gone', 'updated edited']);
      assert.equal(log.count('deleted', 'gone'), 1);
      assert.equal(log.count('updated', 'same') + log.count('deleted', 'same'), 0, 'an unchanged object is quiet');
      assert.equal(cache.get('edited', ns)?.data?.v, 'while-away');
      t.diagnostic(`410 path: ${JSON.stringify(after)}`);
    } finally {
      gated.release();
      ac.abort();
      await running;
    }
  });
});
