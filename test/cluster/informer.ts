/**
 * A small list+watch cache for the fake CSI layer. It never gives up: any watch failure (including an API
 * server restart or a 410 Gone) leads to a re-list after a short, growing pause.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RestClient } from './rest.js';
import { errorMessage } from './wait.js';

/** The parts of an object the cache needs. */
export interface CachedObject {
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

/** One change of the cache: the object as it is now (or was, when deleted). `undefined` means a (re)list. */
export interface CacheChange<T extends CachedObject> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: T;
  /** The cached version it replaced (MODIFIED and DELETED). */
  readonly previous?: T | undefined;
}

/** What an informer needs. */
export interface InformerOptions<T extends CachedObject = CachedObject> {
  readonly client: RestClient;
  /** Collection path, e.g. `/api/v1/persistentvolumeclaims`. */
  readonly path: string;
  /** Called after every change of the cache: with the change for a watch event, `undefined` after a list. */
  readonly onChange: (change: CacheChange<T> | undefined) => void;
  readonly log: (message: string) => void;
}

/** Index keys of an object (like client-go's IndexFunc); objects with no keys are not indexed. */
export type IndexFunc<T> = (obj: T) => readonly string[];

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: CachedObject & { code?: number; message?: string };
}

/** Raised by a watch that the server ended with 410 Gone: the cache must be re-listed. */
class ResourceVersionTooOld extends Error {}

const WATCH_SECONDS = 60;
const MAX_BACKOFF_MS = 2_000;

/** A cache of one resource type kept current by list+watch, with optional secondary indexes. */
export class Informer<T extends CachedObject> {
  private items = new Map<string, T>();
  private readonly indexers = new Map<string, { keysOf: IndexFunc<T>; keys: Map<string, Set<string>> }>();
  private stopped = false;
  private synced = false;
  private abortCurrent: (() => void) | undefined;

  constructor(private readonly opts: InformerOptions<T>) {}

  /** Adds an index (before {@link start}); {@link byIndex} then finds objects by any key `keysOf` returns. */
  addIndex(name: string, keysOf: IndexFunc<T>): void {
    this.indexers.set(name, { keysOf, keys: new Map() });
    for (const [key, obj] of this.items) this.indexOne(key, obj);
  }

  /** The cached objects whose index `name` has the key `key`. */
  byIndex(name: string, key: string): T[] {
    const keys = this.indexers.get(name)?.keys.get(key);
    if (!keys) return [];
    return [...keys].flatMap((k) => {
      const obj = this.items.get(k);
      return obj ? [obj] : [];
    });
  }

  /** Whether the first list has completed. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** All cached objects. */
  list(): T[] {
    return [...this.items.values()];
  }

  /** The cached object of a cache key (`namespace/name`, or `name` for cluster-scoped ones; see {@link keyOf}). */
  getByKey(key: string): T | undefined {
    return this.items.get(key);
  }

  /** The cached object `namespace/name` (or `name` for cluster-scoped ones). */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(cacheKey(namespace, name));
  }

  /** Starts the list+watch loop in the background. */
  start(): void {
    void this.run();
  }

  /** Stops the loop and closes the current watch. */
  stop(): void {
    this.stopped = true;
    this.abortCurrent?.();
  }

  private async run(): Promise<void> {
    let backoffMs = 100;
    while (!this.stopped) {
      try {
        let rv = await this.relist();
        backoffMs = 100;
        while (!this.stopped) rv = await this.watch(rv);
      } catch (err) {
        if (this.stopped) return;
        if (!(err instanceof ResourceVersionTooOld)) this.opts.log(`${this.opts.path}: ${errorMessage(err)}`);
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      }
    }
  }

  private async relist(): Promise<string> {
    const list = await this.opts.client.call<{ metadata: { resourceVersion: string }; items: T[] }>({
      path: this.opts.path,
      timeoutMs: 30_000,
    });
    this.items = new Map(list.items.map((o) => [keyOf(o), o]));
    for (const indexer of this.indexers.values()) indexer.keys.clear();
    for (const [key, obj] of this.items) this.indexOne(key, obj);
    this.synced = true;
    this.opts.onChange(undefined);
    return list.metadata.resourceVersion;
  }

  /** Follows one watch request to its end and returns the resourceVersion to resume from. */
  private async watch(fromRv: string): Promise<string> {
    const query = `watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SECONDS}&resourceVersion=${fromRv}`;
    const res = await this.opts.client.openStream(`${this.opts.path}?${query}`, (WATCH_SECONDS + 30) * 1000);
    this.abortCurrent = () => res.destroy();
    let rv = fromRv;
    try {
      for await (const line of createInterface({ input: res, crlfDelay: Infinity })) {
        if (line.trim() === '') continue;
        rv = this.apply(JSON.parse(line) as WatchEvent) ?? rv;
      }
    } finally {
      this.abortCurrent = undefined;
    }
    return rv;
  }

  private apply(event: WatchEvent): string | undefined {
    if (event.type === 'ERROR') {
      if (event.object.code === 410) throw new ResourceVersionTooOld();
      throw new Error(`watch error ${event.object.code ?? ''}: ${event.object.message ?? ''}`);
    }
    const obj = event.object as T;
    if (event.type === 'BOOKMARK') return obj.metadata.resourceVersion;
    const key = keyOf(obj);
    const previous = this.items.get(key);
    if (previous) this.unindexOne(key, previous);
    if (event.type === 'ADDED' || event.type === 'MODIFIED') {
      this.items.set(key, obj);
      this.indexOne(key, obj);
    }
    if (event.type === 'DELETED') this.items.delete(key);
    this.opts.onChange({ type: event.type, object: obj, previous });
    return obj.metadata.resourceVersion;
  }

  private indexOne(key: string, obj: T): void {
    for (const indexer of this.indexers.values()) {
      for (const k of indexer.keysOf(obj)) {
        let set = indexer.keys.get(k);
        if (!set) indexer.keys.set(k, (set = new Set()));
        set.add(key);
      }
    }
  }

  private unindexOne(key: string, obj: T): void {
    for (const indexer of this.indexers.values()) {
      for (const k of indexer.keysOf(obj)) {
        const set = indexer.keys.get(k);
        set?.delete(key);
        if (set?.size === 0) indexer.keys.delete(k);
      }
    }
  }
}

function cacheKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The cache key of an object: `namespace/name`, or `name` for a cluster-scoped one. */
export function keyOf(obj: CachedObject): string {
  return cacheKey(obj.metadata.namespace, obj.metadata.name ?? '');
}
