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

/** What an informer needs. */
export interface InformerOptions {
  readonly client: RestClient;
  /** Collection path, e.g. `/api/v1/persistentvolumeclaims`. */
  readonly path: string;
  /** Called after every change of the cache (list or watch event). */
  readonly onChange: () => void;
  readonly log: (message: string) => void;
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: CachedObject & { code?: number; message?: string };
}

/** Raised by a watch that the server ended with 410 Gone: the cache must be re-listed. */
class ResourceVersionTooOld extends Error {}

const WATCH_SECONDS = 60;
const MAX_BACKOFF_MS = 2_000;

/** A cache of one resource type kept current by list+watch. */
export class Informer<T extends CachedObject> {
  private items = new Map<string, T>();
  private stopped = false;
  private synced = false;
  private abortCurrent: (() => void) | undefined;

  constructor(private readonly opts: InformerOptions) {}

  /** Whether the first list has completed. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** All cached objects. */
  list(): T[] {
    return [...this.items.values()];
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
    this.synced = true;
    this.opts.onChange();
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
    if (event.type === 'ADDED' || event.type === 'MODIFIED') this.items.set(keyOf(obj), obj);
    if (event.type === 'DELETED') this.items.delete(keyOf(obj));
    if (event.type !== 'BOOKMARK') this.opts.onChange();
    return obj.metadata.resourceVersion;
  }
}

function cacheKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function keyOf(obj: CachedObject): string {
  return cacheKey(obj.metadata.namespace, obj.metadata.name ?? '');
}
