/**
 * Read-your-writes over the watch caches.
 *
 * A watch cache lags the API server by one round trip. Without help, the pass after a create would not see the
 * object it just made, try again, and spend a write on a 409. The overlay remembers what this process wrote, and
 * shadows the cache only while the cache still shows what it showed at the time of the write: as soon as the cache
 * holds our version or anything newer (the watch event may even arrive before the write's response), the cache
 * wins. A time-to-live is the backstop.
 */
import type { KubeObject } from '../api/kube.js';
import type { ResourceRef } from '../runtime/kube-api.js';

interface Entry {
  resource: ResourceRef;
  namespace?: string;
  name: string;
  object?: KubeObject;
  deleted: boolean;
  resourceVersion?: string;
  /** The cache's resourceVersion when we wrote; `undefined` when the cache had no such object. */
  baseVersion?: string;
  expiresAt: number;
}

/** The cache's current resourceVersion of an object, `undefined` when it holds none. */
export type CachedVersion = (resource: ResourceRef, namespace: string | undefined, name: string) => string | undefined;

/** Options of {@link WriteOverlay}. */
export interface WriteOverlayOptions {
  now: () => number;
  /** Reads the cache's version of an object at write time. */
  cachedVersion: CachedVersion;
  /** How long an entry may shadow the cache at most. */
  ttlMs?: number;
}

/** What this process wrote recently, keyed by resource, namespace and name. */
export class WriteOverlay {
  private readonly entries = new Map<string, Entry>();
  /** Objects with a write of ours in flight: the versions the cache showed of them meanwhile. */
  private readonly flights = new Map<string, { writers: number; seen: Set<string> }>();
  private readonly now: () => number;
  private readonly cachedVersion: CachedVersion;
  private readonly ttlMs: number;

  constructor(options: WriteOverlayOptions) {
    this.now = options.now;
    this.cachedVersion = options.cachedVersion;
    this.ttlMs = options.ttlMs ?? 30_000;
  }

  /**
   * Runs one write (or live read) of an object and remembers its answer ({@link noteWritten}), knowing what the
   * cache showed of the object while the call was in flight. A watch delivers an object's versions in order, so if
   * ours went by before the answer arrived, the cache holds ours or something newer, and must not be shadowed: in a
   * burst, a backupPod seen Running before its create returned was otherwise shown as Pending until the resync.
   */
  async track<T extends KubeObject>(
    resource: ResourceRef,
    namespace: string | undefined,
    name: string,
    call: () => Promise<T>,
  ): Promise<T> {
    const k = key(resource, namespace, name);
    const flight = this.flights.get(k) ?? { writers: 0, seen: new Set<string>() };
    flight.writers++;
    this.flights.set(k, flight);
    try {
      const object = await call();
      const version = object.metadata.resourceVersion;
      if (version !== undefined && flight.seen.has(version)) this.entries.delete(k);
      else this.noteWritten(resource, object);
      return object;
    } finally {
      if (--flight.writers === 0) this.flights.delete(k);
    }
  }

  /** Remember an object as the API server returned it after a write. */
  noteWritten(resource: ResourceRef, object: KubeObject): void {
    const { namespace, name } = object.metadata;
    const k = key(resource, namespace, name);
    const base = this.cachedVersion(resource, namespace, name!);
    if (base !== undefined && base === object.metadata.resourceVersion) {
      this.entries.delete(k);
      return;
    }
    this.entries.set(k, {
      resource,
      namespace,
      name: name!,
      object,
      deleted: false,
      resourceVersion: object.metadata.resourceVersion,
      baseVersion: base,
      expiresAt: this.now() + this.ttlMs,
    });
  }

  /** Remember that this process asked for a deletion. */
  noteDeleted(resource: ResourceRef, namespace: string | undefined, name: string): void {
    this.entries.set(key(resource, namespace, name), {
      resource,
      namespace,
      name,
      deleted: true,
      baseVersion: this.cachedVersion(resource, namespace, name),
      expiresAt: this.now() + this.ttlMs,
    });
  }

  /** Forget everything about one object (e.g. after a conflict told us our copy is stale). */
  forget(resource: ResourceRef, namespace: string | undefined, name: string): void {
    this.entries.delete(key(resource, namespace, name));
  }

  /** Called for every cache event: drops the entry once the cache has caught up with our write. */
  observe(resource: ResourceRef, type: 'added' | 'updated' | 'deleted', object: KubeObject): void {
    const k = key(resource, object.metadata.namespace, object.metadata.name);
    const version = object.metadata.resourceVersion;
    if (version !== undefined) this.flights.get(k)?.seen.add(version);
    const entry = this.entries.get(k);
    if (!entry) return;
    const caughtUp = entry.deleted ? type === 'deleted' : object.metadata.resourceVersion === entry.resourceVersion;
    if (caughtUp) this.entries.delete(k);
  }

  /**
   * The freshest view of an object: our own write if the cache has not shown it yet, otherwise the cached one.
   * A deletion we asked for shows as the cached object with a deletionTimestamp, so callers wait for it to go.
   */
  read<T extends KubeObject>(
    resource: ResourceRef,
    namespace: string | undefined,
    name: string,
    cached: T | undefined,
  ): T | undefined {
    const k = key(resource, namespace, name);
    const entry = this.entries.get(k);
    if (!entry) return cached;
    const cacheMovedOn =
      cached?.metadata.resourceVersion !== entry.baseVersion ||
      (!entry.deleted && cached?.metadata.resourceVersion === entry.resourceVersion);
    if (entry.expiresAt <= this.now() || (entry.deleted ? !cached : cacheMovedOn)) {
      this.entries.delete(k);
      return cached;
    }
    if (entry.deleted) {
      if (!cached) return undefined;
      if (cached.metadata.deletionTimestamp || cacheMovedOn) return cached;
      return { ...cached, metadata: { ...cached.metadata, deletionTimestamp: new Date(this.now()).toISOString() } };
    }
    return entry.object as T;
  }

  /** The objects of one resource this process wrote recently (the entries may be stale; read them to check). */
  *written(resource: ResourceRef): Generator<{ namespace?: string; name: string }> {
    for (const entry of this.entries.values()) {
      if (entry.resource === resource) yield { namespace: entry.namespace, name: entry.name };
    }
  }

  /** Number of live entries (for tests and metrics). */
  size(): number {
    return this.entries.size;
  }
}

function key(resource: ResourceRef, namespace: string | undefined, name: string | undefined): string {
  return `${resource.group}/${resource.resource}/${resource.namespaced ? (namespace ?? '') : ''}/${name ?? ''}`;
}
