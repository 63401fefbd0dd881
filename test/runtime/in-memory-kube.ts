/**
 * An in-memory {@link KubeApi} for state-machine tests of the operational runtime: objects with resourceVersions,
 * guarded replaces (409), AlreadyExists, merge patches, a call log, and an interceptor to inject failures or hangs.
 * It implements only what leader election and the event recorder use; `watch` rejects.
 */
import type { KubeList, KubeObject } from '../../src/api/kube.js';
import {
  KubeApiError,
  type DeleteOptions,
  type GetOptions,
  type KubeApi,
  type ListOptions,
  type PatchType,
  type ResourceRef,
  type WriteOptions,
} from '../../src/runtime/kube-api.js';

/** One API call as the fake saw it. */
export interface FakeCall {
  verb: 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete';
  resource: string;
  namespace: string;
  name: string;
  body?: unknown;
}

/** Runs before each call; throw (or reject) to fail it, or return a promise to delay it. */
export type Interceptor = (call: FakeCall) => void | Promise<void>;

/** A KubeApiError like the API server's. */
export function apiError(code: number, reason: string, message = reason): KubeApiError {
  return new KubeApiError({ code, reason, message });
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** RFC 7386 JSON merge patch (returns a new value; never mutates). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const base: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? clone(target as Record<string, unknown>)
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    else base[k] = mergePatch(base[k], v);
  }
  return base;
}

/** The fake API server. */
export class InMemoryKube implements KubeApi {
  readonly calls: FakeCall[] = [];
  interceptor: Interceptor | undefined;
  readonly #objects = new Map<string, KubeObject>();
  #rv = 100;

  #key(r: ResourceRef, namespace: string, name: string): string {
    return `${r.group}/${r.resource}/${r.namespaced ? namespace : ''}/${name}`;
  }

  async #enter(call: FakeCall): Promise<void> {
    this.calls.push(call);
    await this.interceptor?.(call);
  }

  /** The stored object, or undefined (bypasses the interceptor and the call log). */
  peek<T extends KubeObject>(r: ResourceRef, name: string, namespace = ''): T | undefined {
    const obj = this.#objects.get(this.#key(r, namespace, name));
    return obj === undefined ? undefined : (clone(obj) as T);
  }

  /** All stored objects of a resource. */
  all<T extends KubeObject>(r: ResourceRef): T[] {
    const prefix = `${r.group}/${r.resource}/`;
    return [...this.#objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => clone(v) as T);
  }

  /** Deletes directly (bypasses the interceptor), e.g. to simulate an Event expiring. */
  remove(r: ResourceRef, name: string, namespace = ''): void {
    this.#objects.delete(this.#key(r, namespace, name));
  }

  /** Calls of one verb, optionally for one resource. */
  callsOf(verb: FakeCall['verb'], resource?: string): FakeCall[] {
    return this.calls.filter((c) => c.verb === verb && (resource === undefined || c.resource === resource));
  }

  /** Always the latest version, which satisfies any `options.resourceVersion` (not older than). */
  async get<T extends KubeObject>(r: ResourceRef, name: string, namespace = '', _options?: GetOptions): Promise<T> {
    await this.#enter({ verb: 'get', resource: r.resource, namespace, name });
    const obj = this.#objects.get(this.#key(r, namespace, name));
    if (obj === undefined) throw apiError(404, 'NotFound', `${r.resource} "${name}" not found`);
    return clone(obj) as T;
  }

  async list<T extends KubeObject>(r: ResourceRef, options: ListOptions = {}): Promise<KubeList<T>> {
    await this.#enter({ verb: 'list', resource: r.resource, namespace: options.namespace ?? '', name: '' });
    const items = this.all<T>(r).filter(
      (o) => options.namespace === undefined || o.metadata.namespace === options.namespace,
    );
    return { metadata: { resourceVersion: String(this.#rv) }, items };
  }

  async create<T extends KubeObject>(r: ResourceRef, body: T, options: WriteOptions = {}): Promise<T> {
    const namespace = options.namespace ?? body.metadata.namespace ?? '';
    const name = body.metadata.name ?? '';
    await this.#enter({ verb: 'create', resource: r.resource, namespace, name, body: clone(body) });
    const key = this.#key(r, namespace, name);
    if (this.#objects.has(key)) throw apiError(409, 'AlreadyExists', `${r.resource} "${name}" already exists`);
    const stored = clone(body);
    stored.metadata = { ...stored.metadata, namespace, uid: `uid-${++this.#rv}`, resourceVersion: String(this.#rv) };
    this.#objects.set(key, stored);
    return clone(stored);
  }

  async replace<T extends KubeObject>(r: ResourceRef, body: T, options: WriteOptions = {}): Promise<T> {
    const namespace = options.namespace ?? body.metadata.namespace ?? '';
    const name = body.metadata.name ?? '';
    await this.#enter({ verb: 'update', resource: r.resource, namespace, name, body: clone(body) });
    const key = this.#key(r, namespace, name);
    const current = this.#objects.get(key);
    if (current === undefined) throw apiError(404, 'NotFound', `${r.resource} "${name}" not found`);
    const expected = body.metadata.resourceVersion;
    if (expected !== undefined && expected !== current.metadata.resourceVersion) {
      throw apiError(409, 'Conflict', `the object has been modified; please apply your changes to the latest version`);
    }
    const stored = clone(body);
    stored.metadata = { ...stored.metadata, uid: current.metadata.uid, resourceVersion: String(++this.#rv) };
    this.#objects.set(key, stored);
    return clone(stored);
  }

  async patch<T extends KubeObject>(
    r: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options: WriteOptions = {},
  ): Promise<T> {
    const namespace = options.namespace ?? '';
    await this.#enter({ verb: 'patch', resource: r.resource, namespace, name, body: clone(patch) });
    if (type !== 'merge') throw apiError(415, 'UnsupportedMediaType', `the fake only does merge patches`);
    const key = this.#key(r, namespace, name);
    const current = this.#objects.get(key);
    if (current === undefined) throw apiError(404, 'NotFound', `${r.resource} "${name}" not found`);
    const stored = mergePatch(current, patch) as T;
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.#rv) };
    this.#objects.set(key, stored);
    return clone(stored);
  }

  async delete(r: ResourceRef, name: string, options: DeleteOptions = {}): Promise<void> {
    const namespace = options.namespace ?? '';
    await this.#enter({ verb: 'delete', resource: r.resource, namespace, name });
    if (!this.#objects.delete(this.#key(r, namespace, name))) {
      throw apiError(404, 'NotFound', `${r.resource} "${name}" not found`);
    }
  }

  watch(): Promise<void> {
    return Promise.reject(apiError(501, 'NotImplemented', 'the in-memory fake does not watch'));
  }
}
