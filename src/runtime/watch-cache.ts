/**
 * `WatchCache`: an informer for one resource type — list, then watch, keep an in-memory copy, tell handlers what
 * changed — written to close the traps of client-node 1.4.0's informer (reference: typescript-ecosystem.md §2):
 *
 * - it **never gives up**: every failure (list or watch) reconnects with exponential backoff and full jitter
 *   (1 s → 30 s); client-node's informer stops on the first non-410 error;
 * - a **watchdog** aborts a connection silent for longer than the server-side timeout + 30 s (client-node 1.x has
 *   no client timeout, so a half-open connection hangs forever);
 * - **410 Gone** (HTTP at connect, or an in-stream `ERROR` event) relists and emits synthetic `updated` events for
 *   changed objects and `deleted` for vanished ones, each at most once;
 * - **bookmarks** are requested and their resourceVersion becomes the resume point, so a re-watch after a clean
 *   end (every ~5 min) does not replay or miss anything;
 * - a **throwing handler** is caught and logged; it never crashes the process or stops the cache.
 *
 * Cached objects are **deep-frozen** at ingestion: callers get shared, read-only objects and must copy before
 * changing one (`structuredClone`). Freezing is one walk over freshly parsed JSON (measured at a third to half of
 * the parse time, less once `managedFields` are stripped, which the cache also does by default), and it turns an
 * accidental mutation of shared state (Velero #10341) into an immediate TypeError instead of a silent bug.
 */
import type { KubeList, KubeObject } from '../api/kube.js';
import { isGone, KubeApiError, type KubeApi, type ResourceRef, type WatchEvent } from './kube-api.js';
import { errorFromWatchStatus } from './kube-client.js';
import { exponentialDelay, fullJitter, type BackoffOptions } from './rate-limit.js';
import { sleep, systemClock, type Clock } from './timing.js';

/** A change seen by the cache. `old` is the previous cached state of an update. */
export interface CacheEvent<T extends KubeObject> {
  readonly type: 'added' | 'updated' | 'deleted';
  readonly object: T;
  readonly old?: T;
}

/** A cache event handler: it should only compute keys and enqueue them. */
export type CacheEventHandler<T extends KubeObject> = (event: CacheEvent<T>) => void;

/** The logging a cache needs; a pino logger fits. */
export interface CacheLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** Construction options of a {@link WatchCache}. */
export interface WatchCacheOptions {
  readonly api: KubeApi;
  readonly resource: ResourceRef;
  /** Watch one namespace; all namespaces when absent. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly clock?: Clock;
  /** `[0, 1)`, for jitter; injectable so tests are deterministic. */
  readonly random?: () => number;
  readonly logger?: CacheLogger;
  /** Server-side watch timeout (jittered by ±10 % per connection); default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** Abort a watch that delivered nothing for this long; default (the connection's timeout + 30 s). */
  readonly watchdogMs?: number;
  /** Reconnect backoff; default 1 s → 30 s, full jitter. */
  readonly backoff?: BackoffOptions;
  /** List page size; default 500. */
  readonly pageSize?: number;
  /** Deep-freeze cached objects; default true. */
  readonly freeze?: boolean;
  /** Drop `metadata.managedFields` from cached objects; default true. */
  readonly stripManagedFields?: boolean;
  /**
   * Secondary indexes, by name: each function returns the index values of an object (none to leave it out).
   * {@link WatchCache.byIndex} answers from them without scanning the store.
   */
  readonly indexers?: Readonly<Record<string, Indexer<KubeObject>>>;
  /**
   * Applied to every freshly parsed object (owned by the cache) before it is frozen and stored: return a slimmer
   * copy or the object changed in place to keep only what readers use, or `undefined` to not cache it at all (an
   * object that stops qualifying is dropped with a `deleted` event). Like controller-runtime's TransformFunc.
   */
  readonly transform?: (object: KubeObject) => KubeObject | undefined;
}

/** The values under which an object is filed in one secondary index. */
export type Indexer<T extends KubeObject> = (object: T) => readonly string[];

/** Counters for metrics, health and tests. */
export interface WatchCacheStats {
  /** Completed lists (the initial one included). */
  readonly lists: number;
  /** Watch connections opened. */
  readonly watches: number;
  /** Failures that led to a backoff (list or watch). */
  readonly failures: number;
  /** 410 Gone answers that forced a relist. */
  readonly gone: number;
  /** Watchdog aborts of silent connections. */
  readonly watchdogAborts: number;
  /** The resume point of the next watch. */
  readonly resourceVersion: string | undefined;
  /** Clock time of the last watch event (bookmarks included) or list. */
  readonly lastActivityAt: number | undefined;
}

/** The cache key of an object: `namespace/name`, or `name` for a cluster-scoped object (client-go's format). */
export function objectKey(obj: KubeObject): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}

/** The cache key of a name. */
export function keyOf(name: string, namespace?: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * Freezes freshly parsed JSON on the watch hot path. A faster twin of `config/deep-freeze.ts`'s `deepFreeze`: JSON
 * has no cycles, and a frozen object met here was frozen by this function, so its children are frozen already.
 */
export function freezeParsedJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // for-in over a JSON object avoids the array Object.values would allocate; JSON has no inherited keys.
  for (const key in value) {
    const child: unknown = value[key];
    if (typeof child === 'object' && child !== null) freezeParsedJson(child);
  }
  return value;
}

/**
 * Drops `metadata.managedFields` from a freshly parsed object (owned by the cache, so changing it in place is
 * safe): often half an object's size, never read by a controller, like controller-runtime's
 * `TransformStripManagedFields`.
 */
export function stripManagedFields<T extends KubeObject>(object: T): T {
  const meta = object.metadata as { managedFields?: unknown } | undefined;
  if (meta?.managedFields !== undefined) delete meta.managedFields;
  return object;
}

/**
 * The outcome of a relist: the new store content and the events that bring handlers from `current` to `listed`.
 * Pure. Unchanged objects (same resourceVersion) give no event; a changed one gives `updated`; a name reused by a
 * new object (other uid) gives `deleted` for the old one and `added` for the new; a vanished one gives `deleted`
 * with its last known state.
 */
export function diffRelist<T extends KubeObject>(
  current: ReadonlyMap<string, T>,
  listed: readonly T[],
): { store: Map<string, T>; events: CacheEvent<T>[] } {
  const store = new Map<string, T>();
  const events: CacheEvent<T>[] = [];
  for (const object of listed) {
    const key = objectKey(object);
    store.set(key, object);
    const old = current.get(key);
    if (old === undefined) {
      events.push({ type: 'added', object });
    } else if (old.metadata.uid !== undefined && old.metadata.uid !== object.metadata.uid) {
      events.push({ type: 'deleted', object: old }, { type: 'added', object });
    } else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) {
      events.push({ type: 'updated', object, old });
    }
  }
  for (const [key, old] of current) {
    if (!store.has(key)) events.push({ type: 'deleted', object: old });
  }
  return { store, events };
}

/**
 * Applies one watch event to the store (mutating it) and returns the handler event, or `undefined` when nothing
 * changed: a delete of an unknown object (already deleted: no duplicate delete) or a replay of the cached version.
 */
export function applyWatchEvent<T extends KubeObject>(
  store: Map<string, T>,
  type: 'ADDED' | 'MODIFIED' | 'DELETED',
  object: T,
): CacheEvent<T> | undefined {
  const key = objectKey(object);
  const old = store.get(key);
  if (type === 'DELETED') {
    if (old === undefined) return undefined;
    store.delete(key);
    return { type: 'deleted', object, old };
  }
  store.set(key, object);
  if (old === undefined) return { type: 'added', object };
  if (old.metadata.resourceVersion === object.metadata.resourceVersion) return undefined;
  return { type: 'updated', object, old };
}

/** How one watch connection ended. */
type WatchEnd =
  | { kind: 'ended'; events: number; durationMs: number }
  | { kind: 'gone'; error: KubeApiError }
  | { kind: 'failed'; error: unknown };

const SHORT_WATCH_MS = 1000;
/** How long a watch's deletion keeps {@link WatchCache.upsert} from adding the object back. */
export const RECENT_DELETE_MS = 60_000;

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/** Options with their defaults filled in. */
interface Settings extends WatchCacheOptions {
  readonly clock: Clock;
  readonly random: () => number;
  readonly watchTimeoutSeconds: number;
  readonly backoff: BackoffOptions;
  readonly pageSize: number;
  readonly freeze: boolean;
  readonly stripManagedFields: boolean;
}

function settingsOf(options: WatchCacheOptions): Settings {
  return {
    ...options,
    clock: options.clock ?? systemClock(),
    random: options.random ?? Math.random,
    watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
    backoff: options.backoff ?? { initialMs: 1000, maxMs: 30_000 },
    pageSize: options.pageSize ?? 500,
    freeze: options.freeze ?? true,
    stripManagedFields: options.stripManagedFields ?? true,
  };
}

/** A list+watch cache of one resource type; see the module comment. */
export class WatchCache<T extends KubeObject> {
  readonly #o: Settings;
  #store = new Map<string, T>();
  readonly #handlers = new Set<CacheEventHandler<T>>();
  /** index name → index value → keys of the objects filed under it. */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();
  /** Keys the watch reported deleted lately (clock ms), so an {@link upsert} from a read cannot bring one back. */
  readonly #recentlyDeleted = new Map<string, number>();
  readonly #stop = new AbortController();
  #resourceVersion: string | undefined;
  #synced = false;
  #resolveSynced!: () => void;
  #started = false;
  #consecutiveFailures = 0;
  /** True from a relist until the next watch delivers an event: a 410 then means relisting does not help. */
  #freshList = false;
  #stats = {
    lists: 0,
    watches: 0,
    failures: 0,
    gone: 0,
    watchdogAborts: 0,
    lastActivityAt: undefined as number | undefined,
  };

  /** Resolves once the first list is in the cache. Never rejects: the cache retries until stopped. */
  readonly synced: Promise<void>;

  constructor(options: WatchCacheOptions) {
    this.#o = settingsOf(options);
    for (const name of Object.keys(options.indexers ?? {})) this.#indexes.set(name, new Map());
    this.synced = new Promise<void>((resolve) => {
      this.#resolveSynced = resolve;
    });
  }

  /** Lists and watches until `signal` aborts or {@link stop} is called. Resolves then; never rejects. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#started) throw new Error(`watch cache for ${this.#o.resource.resource} started twice`);
    this.#started = true;
    if (signal?.aborted) this.#stop.abort();
    signal?.addEventListener('abort', () => this.#stop.abort(), { once: true });
    await this.#loop();
  }

  /** Stops listing and watching; the cache keeps its last content. */
  stop(): void {
    this.#stop.abort();
  }

  /** True once the first list is in the cache. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Registers a handler; returns a function that removes it. Handlers registered late see only later events. */
  onEvent(handler: CacheEventHandler<T>): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** The cached object, read-only (frozen); copy it before changing it. */
  get(name: string, namespace?: string): T | undefined {
    return this.#store.get(keyOf(name, namespace));
  }

  /** The cached objects that pass `filter` (all when absent), read-only. */
  list(filter?: (object: T) => boolean): T[] {
    const all = [...this.#store.values()];
    return filter === undefined ? all : all.filter(filter);
  }

  /**
   * The cached objects filed under `value` in the secondary index `index`, read-only. Costs one map lookup per
   * match, whatever the size of the store.
   */
  byIndex(index: string, value: string): T[] {
    const table = this.#indexes.get(index);
    if (table === undefined) throw new Error(`watch cache for ${this.#o.resource.resource} has no index ${index}`);
    const keys = table.get(value);
    if (keys === undefined) return [];
    const found: T[] = [];
    for (const key of keys) {
      const object = this.#store.get(key);
      if (object !== undefined) found.push(object);
    }
    return found;
  }

  /** How many cached objects are filed under `value` in the secondary index `index`. */
  countByIndex(index: string, value: string): number {
    const table = this.#indexes.get(index);
    if (table === undefined) throw new Error(`watch cache for ${this.#o.resource.resource} has no index ${index}`);
    return table.get(value)?.size ?? 0;
  }

  /**
   * Adds an object read outside the watch (a live GET), for a cache whose transform leaves out objects nobody
   * needed yet. Only when the cache holds no such object (the watch's copy is never older) and the watch has not
   * reported it deleted in the last {@link RECENT_DELETE_MS}; the transform applies as for a watch event. Emits
   * `added`. Returns whether it was stored. The cache takes `object` over (it may be trimmed and frozen): pass one
   * nobody else holds, such as a freshly parsed response.
   */
  upsert(object: T): boolean {
    const key = objectKey(object);
    const deletedAt = this.#recentlyDeleted.get(key);
    if (deletedAt !== undefined && this.#o.clock.now() - deletedAt < RECENT_DELETE_MS) return false;
    if (this.#store.has(key)) return false;
    const ingested = this.#ingest(object);
    if (ingested === undefined) return false;
    this.#store.set(key, ingested);
    this.#emit({ type: 'added', object: ingested });
    return true;
  }

  /**
   * Drops cached objects that `keep` rejects, quietly (they still exist in the cluster: no `deleted` event), and
   * returns how many. For a cache that holds only what is needed: what stopped being needed goes.
   */
  prune(keep: (object: T) => boolean): number {
    let dropped = 0;
    for (const [key, object] of this.#store) {
      if (keep(object)) continue;
      this.#store.delete(key);
      this.#reindex({ type: 'deleted', object });
      dropped++;
    }
    const now = this.#o.clock.now();
    for (const [key, at] of this.#recentlyDeleted) if (now - at >= RECENT_DELETE_MS) this.#recentlyDeleted.delete(key);
    return dropped;
  }

  /** Every cached key, for a periodic resync by the controller. */
  keys(): string[] {
    return [...this.#store.keys()];
  }

  /** The resourceVersion the cache has seen up to (its resume point); undefined before the first list. */
  resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  /** Counters and the resume point. */
  stats(): WatchCacheStats {
    return { ...this.#stats, resourceVersion: this.#resourceVersion };
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (this.#resourceVersion === undefined) {
        const listed = await this.#relist().then(
          () => true,
          (err: unknown) => this.#fail('list failed', err),
        );
        if (!listed) {
          await this.#backoff();
          continue;
        }
      }
      const end = await this.#watchOnce();
      if (signal.aborted) break;
      await this.#afterWatch(end);
    }
  }

  /** Decides what follows a watch: re-watch at once, relist, or back off first. */
  async #afterWatch(end: WatchEnd): Promise<void> {
    if (end.kind === 'gone') {
      this.#stats.gone++;
      this.#resourceVersion = undefined;
      if (this.#freshList) {
        // Gone straight after a fresh list: relisting at once would spin, so back off first.
        this.#fail('watch expired right after a relist', end.error);
        await this.#backoff();
        return;
      }
      this.#o.logger?.info(
        { resource: this.#o.resource.resource, reason: end.error.message },
        'watch expired; relisting',
      );
      return;
    }
    if (end.kind === 'failed') {
      this.#fail('watch failed', end.error);
      await this.#backoff();
      return;
    }
    // A clean end is the normal server-side timeout; an immediate empty close means something is wrong
    // (client-go's "very short watch"), so back off instead of spinning.
    if (end.events === 0 && end.durationMs < SHORT_WATCH_MS) {
      this.#fail('watch closed at once without events', undefined);
      await this.#backoff();
      return;
    }
    this.#consecutiveFailures = 0;
  }

  #fail(what: string, err: unknown): false {
    this.#stats.failures++;
    this.#consecutiveFailures++;
    const detail = err === undefined ? undefined : describeError(err);
    const code = err instanceof KubeApiError ? err.code : undefined;
    this.#o.logger?.warn(
      { resource: this.#o.resource.resource, err: detail, code, failures: this.#consecutiveFailures },
      `${what}; retrying with backoff`,
    );
    return false;
  }

  async #backoff(): Promise<void> {
    const ceiling = exponentialDelay(this.#o.backoff, this.#consecutiveFailures - 1);
    await sleep(this.#o.clock, fullJitter(ceiling, this.#o.random), this.#stop.signal);
  }

  /** Pages through the collection, then replaces the store and tells handlers the difference. */
  async #relist(): Promise<void> {
    const list = await this.#listAll();
    const { store, events } = diffRelist(this.#store, list.items);
    this.#store = store;
    this.#resourceVersion = list.resourceVersion;
    this.#stats.lists++;
    this.#stats.lastActivityAt = this.#o.clock.now();
    this.#consecutiveFailures = 0;
    this.#freshList = true;
    for (const e of events) this.#emit(e);
    if (!this.#synced) {
      this.#synced = true;
      this.#resolveSynced();
    }
  }

  /**
   * Every item of the collection at one consistent resourceVersion (continue tokens keep the snapshot), ingested
   * page by page: what the transform drops is garbage before the next page arrives, so listing 10,000 unrelated
   * PVCs never holds them all at once.
   */
  async #listAll(): Promise<{ items: T[]; resourceVersion: string | undefined }> {
    const base = {
      namespace: this.#o.namespace,
      labelSelector: this.#o.labelSelector,
      fieldSelector: this.#o.fieldSelector,
    };
    const items: T[] = [];
    const keep = (list: KubeList<T>): void => {
      for (const item of list.items) {
        const object = this.#ingest(item);
        if (object !== undefined) items.push(object);
      }
    };
    let page: KubeList<T> | undefined;
    let continueToken: string | undefined;
    do {
      try {
        page = await this.#o.api.list<T>(this.#o.resource, {
          ...base,
          limit: this.#o.pageSize,
          continue: continueToken,
        });
      } catch (err) {
        // The snapshot behind a continue token was compacted away: fall back to one unpaginated list.
        if (!isGone(err) || continueToken === undefined) throw err;
        const whole = await this.#o.api.list<T>(this.#o.resource, base);
        items.length = 0;
        keep(whole);
        return { items, resourceVersion: whole.metadata.resourceVersion };
      }
      keep(page);
      continueToken = page.metadata.continue || undefined;
    } while (continueToken !== undefined && !this.#stop.signal.aborted);
    return { items, resourceVersion: page.metadata.resourceVersion };
  }

  /** One watch connection from the current resume point, guarded by the watchdog. */
  async #watchOnce(): Promise<WatchEnd> {
    const connection = new AbortController();
    const onStop = (): void => connection.abort();
    // A stop that came while the previous step ran fires no further 'abort' event.
    if (this.#stop.signal.aborted) return { kind: 'ended', events: 0, durationMs: 0 };
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    const timeoutSeconds = Math.max(1, Math.round(this.#o.watchTimeoutSeconds * (0.9 + 0.2 * this.#o.random())));
    const watchdogMs = this.#o.watchdogMs ?? (timeoutSeconds + 30) * 1000;
    const state = {
      events: 0,
      gone: undefined as KubeApiError | undefined,
      error: undefined as KubeApiError | undefined,
    };
    let watchdogFired = false;
    let watchdog = this.#o.clock.setTimer(fire, watchdogMs);
    function fire(): void {
      watchdogFired = true;
      connection.abort();
    }
    const started = this.#o.clock.now();
    this.#stats.watches++;
    try {
      await this.#o.api.watch<T>(
        this.#o.resource,
        {
          namespace: this.#o.namespace,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
          resourceVersion: this.#resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        (event) => {
          watchdog.cancel();
          watchdog = this.#o.clock.setTimer(fire, watchdogMs);
          state.events++;
          const outcome = this.#onWatchEvent(event);
          if (outcome !== undefined) {
            if (isGone(outcome)) state.gone = outcome;
            else state.error = outcome;
            connection.abort();
          }
        },
        connection.signal,
      );
    } catch (err) {
      if (isGone(err)) return { kind: 'gone', error: err as KubeApiError };
      return { kind: 'failed', error: err };
    } finally {
      watchdog.cancel();
      this.#stop.signal.removeEventListener('abort', onStop);
    }
    if (state.gone) return { kind: 'gone', error: state.gone };
    if (state.error) return { kind: 'failed', error: state.error };
    if (watchdogFired) {
      this.#stats.watchdogAborts++;
      return { kind: 'failed', error: new Error(`watch silent for ${watchdogMs} ms; reconnecting`) };
    }
    return { kind: 'ended', events: state.events, durationMs: this.#o.clock.now() - started };
  }

  /** Applies one watch event; returns the error carried by an `ERROR` event. */
  #onWatchEvent(event: WatchEvent<T>): KubeApiError | undefined {
    this.#stats.lastActivityAt = this.#o.clock.now();
    if (event.type === 'ERROR') return errorFromWatchStatus(event.object);
    this.#freshList = false;
    const rv = event.object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (rv) this.#resourceVersion = rv;
      return undefined;
    }
    if (event.type === 'DELETED') this.#recentlyDeleted.set(objectKey(event.object), this.#o.clock.now());
    const ingested = this.#ingest(event.object);
    // An object the transform leaves out is, to the store, deleted (a no-op when it was never cached).
    const change =
      ingested === undefined
        ? applyWatchEvent(this.#store, 'DELETED', event.object)
        : applyWatchEvent(this.#store, event.type, ingested);
    if (rv) this.#resourceVersion = rv;
    if (change !== undefined) this.#emit(change);
    return undefined;
  }

  /** Prepares a freshly parsed object (owned by the cache) for sharing; `undefined` when it is not to be cached. */
  #ingest(object: T): T | undefined {
    const stripped = this.#o.stripManagedFields ? stripManagedFields(object) : object;
    const kept = this.#o.transform ? (this.#o.transform(stripped) as T | undefined) : stripped;
    if (kept === undefined) return undefined;
    return this.#o.freeze ? freezeParsedJson(kept) : kept;
  }

  /** Keeps the secondary indexes in step with one store change (every change is emitted as an event). */
  #reindex(event: CacheEvent<T>): void {
    if (this.#indexes.size === 0) return;
    const key = objectKey(event.object);
    for (const [name, table] of this.#indexes) {
      const indexer = this.#o.indexers![name]!;
      const before = event.type === 'added' ? [] : indexer(event.old ?? event.object);
      const after = event.type === 'deleted' ? [] : indexer(event.object);
      for (const value of before) {
        if (after.includes(value)) continue;
        const keys = table.get(value);
        keys?.delete(key);
        if (keys?.size === 0) table.delete(value);
      }
      for (const value of after) {
        let keys = table.get(value);
        if (keys === undefined) table.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  #emit(event: CacheEvent<T>): void {
    this.#reindex(event);
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (err) {
        this.#o.logger?.error(
          {
            resource: this.#o.resource.resource,
            key: objectKey(event.object),
            event: event.type,
            err: describeError(err),
          },
          'watch cache event handler threw; event dropped for this handler',
        );
      }
    }
  }
}
