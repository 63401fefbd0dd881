import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeList, KubeObject } from '../../src/api/kube.js';
import {
  KubeApiError,
  Resources,
  type KubeApi,
  type ListOptions,
  type WatchEvent,
  type WatchOptions,
} from '../../src/runtime/kube-api.js';
import { WatchCache, type CacheEvent, type CacheLogger } from '../../src/runtime/watch-cache.js';
import { ManualClock, flush } from './manual-clock.js';

function obj(name: string, rv: string, extra: Record<string, unknown> = {}): KubeObject {
  return { metadata: { name, namespace: 'ns', resourceVersion: rv, uid: `uid-${name}` }, ...extra };
}

/** One watch connection the test drives. */
interface Session {
  readonly options: WatchOptions;
  readonly signal: AbortSignal;
  emit(event: WatchEvent): void;
  end(): void;
  fail(err: Error): void;
}

type Unsupported = never;

/** A KubeApi whose lists answer from a script and whose watches the test drives by hand. */
class ScriptedApi implements KubeApi {
  readonly listCalls: ListOptions[] = [];
  readonly sessions: Session[] = [];
  /** Answers of the next list calls, in order; a function may throw. */
  readonly listAnswers: (() => KubeList)[] = [];
  /** Errors the next watch calls reject with at connect, in order (undefined: connect normally). */
  readonly watchConnectErrors: Error[] = [];

  list<T extends KubeObject>(_r: unknown, options: ListOptions = {}): Promise<KubeList<T>> {
    this.listCalls.push(options);
    const next = this.listAnswers.shift();
    if (next === undefined) return Promise.reject(new Error('unexpected list'));
    return new Promise((resolve) => resolve(next() as KubeList<T>));
  }

  watch<T extends KubeObject>(
    _r: unknown,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const connectError = this.watchConnectErrors.shift();
    if (connectError !== undefined) return Promise.reject(connectError);
    return new Promise<void>((resolve, reject) => {
      signal.addEventListener('abort', () => resolve(), { once: true });
      this.sessions.push({
        options,
        signal,
        emit: (e) => onEvent(e as WatchEvent<T>),
        end: resolve,
        fail: reject,
      });
    });
  }

  get(): Promise<Unsupported> {
    return Promise.reject(new Error('not scripted'));
  }
  create(): Promise<Unsupported> {
    return Promise.reject(new Error('not scripted'));
  }
  replace(): Promise<Unsupported> {
    return Promise.reject(new Error('not scripted'));
  }
  patch(): Promise<Unsupported> {
    return Promise.reject(new Error('not scripted'));
  }
  delete(): Promise<void> {
    return Promise.reject(new Error('not scripted'));
  }

  lastSession(): Session {
    const s = this.sessions.at(-1);
    assert.ok(s, 'a watch is open');
    return s;
  }
}

function listOf(rv: string, items: KubeObject[], cont?: string): KubeList {
  return { metadata: { resourceVersion: rv, continue: cont }, items };
}

function gone(): KubeApiError {
  return new KubeApiError({ code: 410, reason: 'Expired', message: 'too old resource version' });
}

class RecordingLogger implements CacheLogger {
  readonly lines: string[] = [];
  debug(_o: Record<string, unknown>, msg: string): void {
    this.lines.push(`debug ${msg}`);
  }
  info(_o: Record<string, unknown>, msg: string): void {
    this.lines.push(`info ${msg}`);
  }
  warn(_o: Record<string, unknown>, msg: string): void {
    this.lines.push(`warn ${msg}`);
  }
  error(_o: Record<string, unknown>, msg: string): void {
    this.lines.push(`error ${msg}`);
  }
}

function setup(
  initial: KubeList[] = [listOf('10', [obj('a', '5'), obj('b', '6')])],
  indexers?: Record<string, (o: KubeObject) => readonly string[]>,
  transform?: (o: KubeObject) => KubeObject | undefined,
) {
  const api = new ScriptedApi();
  for (const page of initial) api.listAnswers.push(() => page);
  const clock = new ManualClock();
  const logger = new RecordingLogger();
  const cache = new WatchCache<KubeObject>({
    api,
    resource: Resources.configMaps,
    namespace: 'ns',
    labelSelector: 'app=x',
    clock,
    random: () => 0.5,
    logger,
    indexers,
    transform,
  });
  const events: string[] = [];
  cache.onEvent((e: CacheEvent<KubeObject>) =>
    events.push(`${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`),
  );
  const ac = new AbortController();
  const done = cache.start(ac.signal);
  return { api, clock, logger, cache, events, ac, done };
}

async function stop(t: { ac: AbortController; done: Promise<void> }): Promise<void> {
  t.ac.abort();
  await t.done;
}

describe('WatchCache', () => {
  test('a paged list fills the cache, resolves synced, and the watch starts from the list resourceVersion', async () => {
    const t = setup([listOf('99', [obj('a', '5')], 'page2'), listOf('99', [obj('b', '6')])]);
    await t.cache.synced;
    assert.equal(t.cache.hasSynced(), true);
    assert.deepEqual(
      t.api.listCalls.map((c) => [c.limit, c.continue, c.labelSelector]),
      [
        [500, undefined, 'app=x'],
        [500, 'page2', 'app=x'],
      ],
    );
    assert.deepEqual(t.events, ['added a@5', 'added b@6']);
    await flush();
    const w = t.api.lastSession().options;
    assert.deepEqual(
      [w.resourceVersion, w.allowWatchBookmarks, w.timeoutSeconds, w.namespace, w.labelSelector],
      ['99', true, 300, 'ns', 'app=x'],
    );
    await stop(t);
  });

  test('watch events update the cache and reach handlers with the old state', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    const old: (string | undefined)[] = [];
    t.cache.onEvent((e) => old.push(e.old?.metadata.resourceVersion));
    const s = t.api.lastSession();
    s.emit({ type: 'MODIFIED', object: obj('a', '11', { data: { k: 'v' } }) });
    s.emit({ type: 'ADDED', object: obj('c', '12') });
    s.emit({ type: 'DELETED', object: obj('b', '13') });
    s.emit({ type: 'DELETED', object: obj('b', '13') });
    assert.deepEqual(t.events.slice(2), ['updated a@11', 'added c@12', 'deleted b@13']);
    assert.deepEqual(old, ['5', undefined, '6'], 'a delete carries the state it had in the cache');
    assert.deepEqual((t.cache.get('a', 'ns') as { data?: unknown } | undefined)?.data, { k: 'v' });
    assert.deepEqual(t.cache.keys().sort(), ['ns/a', 'ns/c']);
    assert.equal(t.cache.stats().resourceVersion, '13');
    await stop(t);
  });

  test('a secondary index follows adds, updates, deletes and relists without scanning', async () => {
    const colour = (o: KubeObject) => {
      const c = (o as { data?: { colour?: string } }).data?.colour;
      return c ? [c] : [];
    };
    const t = setup(
      [listOf('10', [obj('a', '5', { data: { colour: 'red' } }), obj('b', '6', { data: { colour: 'red' } })])],
      { colour },
    );
    await t.cache.synced;
    await flush();
    const names = (value: string) =>
      t.cache
        .byIndex('colour', value)
        .map((o) => o.metadata.name)
        .sort();
    assert.deepEqual(names('red'), ['a', 'b']);
    const s = t.api.lastSession();
    s.emit({ type: 'MODIFIED', object: obj('a', '11', { data: { colour: 'blue' } }) });
    s.emit({ type: 'ADDED', object: obj('c', '12') });
    assert.deepEqual([names('red'), names('blue')], [['b'], ['a']]);
    s.emit({ type: 'DELETED', object: obj('b', '13') });
    assert.deepEqual(names('red'), [], 'a delete unfiles the object under the values it was filed under');
    t.api.listAnswers.push(() => listOf('20', [obj('c', '14', { data: { colour: 'red' } })]));
    s.emit({ type: 'ERROR', object: { metadata: {}, code: 410, reason: 'Expired' } as unknown as KubeObject });
    await flush();
    assert.deepEqual([names('red'), names('blue')], [['c'], []], 'a relist re-files every change');
    assert.throws(() => t.cache.byIndex('size', 'x'), /no index size/);
    await stop(t);
  });

  test('a paged list goes through the transform page by page, before the next page is asked for', async () => {
    const seen: string[] = [];
    const t = setup(
      [listOf('99', [obj('a', '5'), obj('x', '6')], 'page2'), listOf('99', [obj('b', '7')])],
      undefined,
      (o) => {
        seen.push(`${o.metadata.name} (pages asked: ${t.api.listCalls.length})`);
        return o.metadata.name === 'x' ? undefined : o;
      },
    );
    await t.cache.synced;
    assert.deepEqual(seen, ['a (pages asked: 1)', 'x (pages asked: 1)', 'b (pages asked: 2)']);
    assert.deepEqual(t.cache.keys().sort(), ['ns/a', 'ns/b']);
    await stop(t);
  });

  test('a transform slims what is cached, and an object that stops qualifying leaves the cache as a delete', async () => {
    const keep = (o: KubeObject) => {
      const data = (o as { data?: { keep?: string; big?: string } }).data;
      return data?.keep === 'yes' ? ({ metadata: o.metadata, data: { keep: 'yes' } } as KubeObject) : undefined;
    };
    const t = setup(
      [listOf('10', [obj('a', '5', { data: { keep: 'yes', big: 'x'.repeat(100) } }), obj('b', '6')])],
      undefined,
      keep,
    );
    await t.cache.synced;
    await flush();
    assert.deepEqual(t.cache.keys(), ['ns/a'], 'what the transform leaves out is not cached');
    assert.deepEqual((t.cache.get('a', 'ns') as { data?: unknown }).data, { keep: 'yes' }, 'slimmed');
    const s = t.api.lastSession();
    s.emit({ type: 'MODIFIED', object: obj('b', '11', { data: { keep: 'yes' } }) });
    s.emit({ type: 'MODIFIED', object: obj('a', '12', { data: { keep: 'no' } }) });
    s.emit({ type: 'MODIFIED', object: obj('c', '13') });
    assert.deepEqual(t.events, ['added a@5', 'added b@11', 'deleted a@12']);
    assert.deepEqual(t.cache.keys(), ['ns/b']);
    await stop(t);
  });

  test('upsert adds what a read found, never over the watch copy or a recent deletion; prune drops quietly', async () => {
    const t = setup([listOf('10', [obj('a', '5')])], { name: (o: KubeObject) => [o.metadata.name!] });
    await t.cache.synced;
    await flush();
    assert.equal(t.cache.upsert(obj('b', '3')), true, 'absent: stored, with an added event');
    assert.equal(t.cache.upsert(obj('a', '1')), false, 'the watch copy wins');
    assert.equal((t.cache.get('a', 'ns') as KubeObject).metadata.resourceVersion, '5');
    const s = t.api.lastSession();
    s.emit({ type: 'DELETED', object: obj('c', '12') });
    assert.equal(t.cache.upsert(obj('c', '11')), false, 'a read from before the deletion does not bring it back');
    await t.clock.advance(61_000);
    t.cache.prune(() => true);
    assert.equal(t.cache.upsert(obj('c', '13')), true, 'after a minute it may');
    const seen = t.events.length;
    assert.equal(
      t.cache.prune((o) => o.metadata.name !== 'b'),
      1,
    );
    assert.equal(t.cache.get('b', 'ns'), undefined);
    assert.deepEqual(t.cache.byIndex('name', 'b'), [], 'indexes follow');
    assert.equal(t.events.length, seen, 'no deleted event: the object still exists');
    assert.deepEqual(t.events.slice(-2), ['added b@3', 'added c@13']);
    await stop(t);
  });

  test('after a clean end the watch resumes from the last bookmark without relisting', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    const s = t.api.lastSession();
    s.emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '50' } } });
    await t.clock.advance(2000);
    s.end();
    await flush();
    assert.equal(t.api.sessions.length, 2, 're-watched at once');
    assert.equal(t.api.lastSession().options.resourceVersion, '50');
    assert.equal(t.api.listCalls.length, 1);
    await stop(t);
  });

  test('an in-stream 410 relists and emits one update per changed object and one delete per vanished one', async () => {
    const t = setup([listOf('10', [obj('a', '5'), obj('b', '6'), obj('c', '7')])]);
    await t.cache.synced;
    await flush();
    t.api.listAnswers.push(() => listOf('40', [obj('a', '5'), obj('b', '30'), obj('d', '31')]));
    t.api.lastSession().emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } });
    t.api.lastSession().emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } as never });
    await flush();
    assert.deepEqual(t.events.slice(3), ['updated b@30', 'added d@31', 'deleted c@7']);
    assert.equal(t.api.lastSession().options.resourceVersion, '40');
    assert.equal(t.cache.stats().gone, 1);
    // The apiserver then replays the delete of c (e.g. a watch that overlaps the relist): no second delete.
    t.api.lastSession().emit({ type: 'DELETED', object: obj('c', '41') });
    assert.equal(t.events.filter((e) => e.startsWith('deleted c')).length, 1);
    await stop(t);
  });

  test('an HTTP 410 when reconnecting relists at once', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    t.api.lastSession().emit({ type: 'MODIFIED', object: obj('a', '11') });
    t.api.watchConnectErrors.push(gone());
    t.api.listAnswers.push(() => listOf('20', [obj('a', '11')]));
    await t.clock.advance(2000);
    t.api.lastSession().end();
    await flush();
    assert.equal(t.api.listCalls.length, 2);
    assert.deepEqual(t.events, ['added a@5', 'added b@6', 'updated a@11', 'deleted b@6']);
    assert.equal(t.api.lastSession().options.resourceVersion, '20');
    assert.equal(t.clock.pendingDelays().length, 1, 'only the watchdog is scheduled: no backoff');
    await stop(t);
  });

  test('a 410 straight after a fresh list backs off before relisting, so a broken server is not hammered', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    t.api.listAnswers.push(() => listOf('20', [obj('a', '5'), obj('b', '6')]));
    t.api.lastSession().emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } as never });
    await flush();
    assert.equal(t.api.listCalls.length, 1, 'no relist yet');
    assert.deepEqual(t.clock.pendingDelays(), [500]);
    await t.clock.advance(500);
    assert.equal(t.api.listCalls.length, 2);
    assert.deepEqual(t.events, ['added a@5', 'added b@6'], 'an unchanged relist emits nothing');
    await stop(t);
  });

  test('connection failures back off with growing full-jitter delays and resume from the same resourceVersion', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      t.api.lastSession().fail(new KubeApiError({ code: 0, reason: 'ConnectionFailed', message: 'ECONNREFUSED' }));
      await flush();
      delays.push(t.clock.pendingDelays().at(-1) ?? -1);
      await t.clock.advance(t.clock.pendingDelays().at(-1) ?? 0);
    }
    // random() = 0.5: half of 1 s, 2 s, 4 s, ... capped at 30 s.
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
    assert.equal(t.api.lastSession().options.resourceVersion, '10');
    assert.equal(t.api.listCalls.length, 1, 'a transport failure does not relist');
    await stop(t);
  });

  test('a connection silent past the watchdog is aborted and replaced', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    const first = t.api.lastSession();
    await t.clock.advance(329_000);
    assert.equal(first.signal.aborted, false, 'events or not, 329 s is within 300 s + 30 s of slack');
    first.emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '11' } } });
    await t.clock.advance(329_000);
    assert.equal(first.signal.aborted, false, 'the bookmark reset the watchdog');
    await t.clock.advance(2_000);
    assert.equal(first.signal.aborted, true);
    assert.equal(t.cache.stats().watchdogAborts, 1);
    await t.clock.advance(1_000);
    assert.equal(t.api.sessions.length, 2);
    assert.equal(t.api.lastSession().options.resourceVersion, '11');
    await stop(t);
  });

  test('a throwing handler is logged and neither stops the cache nor other handlers', async () => {
    const t = setup();
    t.cache.onEvent(() => {
      throw new Error('handler bug');
    });
    const seen: string[] = [];
    t.cache.onEvent((e) => seen.push(e.type));
    await t.cache.synced;
    await flush();
    t.api.lastSession().emit({ type: 'ADDED', object: obj('z', '20') });
    assert.deepEqual(seen, ['added', 'added', 'added']);
    assert.equal(t.logger.lines.filter((l) => l.startsWith('error')).length, 3);
    assert.equal(t.cache.get('z', 'ns')?.metadata.resourceVersion, '20');
    assert.equal(t.api.lastSession().signal.aborted, false);
    await stop(t);
  });

  test('cached objects are frozen, so a caller mutating one gets a TypeError', async () => {
    const t = setup();
    await t.cache.synced;
    const a = t.cache.get('a', 'ns')!;
    assert.throws(() => {
      a.metadata.labels = { changed: 'yes' };
    }, TypeError);
    const copy = structuredClone(a);
    copy.metadata.labels = { changed: 'yes' };
    assert.equal(t.cache.get('a', 'ns')?.metadata.labels, undefined);
    await stop(t);
  });

  test('a failing first list is retried with backoff until it succeeds, and synced waits for it', async () => {
    const api = new ScriptedApi();
    api.listAnswers.push(
      () => {
        throw new KubeApiError({ code: 503, reason: 'ServiceUnavailable', message: 'starting' });
      },
      () => listOf('3', [obj('a', '1')]),
    );
    const clock = new ManualClock();
    const cache = new WatchCache<KubeObject>({ api, resource: Resources.configMaps, clock, random: () => 0.5 });
    const ac = new AbortController();
    const done = cache.start(ac.signal);
    await flush();
    assert.equal(cache.hasSynced(), false);
    assert.deepEqual(clock.pendingDelays(), [500]);
    await clock.advance(500);
    await cache.synced;
    assert.deepEqual(cache.keys(), ['ns/a']);
    ac.abort();
    await done;
  });

  test('a watch that closes at once without events backs off instead of spinning', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    t.api.lastSession().end();
    await flush();
    assert.equal(t.api.sessions.length, 1);
    assert.deepEqual(t.clock.pendingDelays(), [500]);
    await t.clock.advance(500);
    assert.equal(t.api.sessions.length, 2);
    await stop(t);
  });

  test('stop ends start and leaves no timers behind', async () => {
    const t = setup();
    await t.cache.synced;
    await flush();
    t.cache.stop();
    await t.done;
    assert.equal(t.api.lastSession().signal.aborted, true);
    assert.equal(t.clock.pendingTimers(), 0);
  });
});
