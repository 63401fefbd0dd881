/**
 * Kubernetes Events (`events.k8s.io/v1`) with client-go's series semantics, so a condition that repeats 100 times
 * is one Event with `series.count: 100` (`kubectl describe` shows `(x100 over 5m)`), written a handful of times.
 *
 * `record()` is synchronous and never throws: it updates an in-memory series map and queues a write; one async
 * writer drains the bounded queue. A reconcile never waits on, or fails because of, an Event.
 *
 * Differences from client-go: repeats after the second are batched by a short flush timer (client-go leaves them
 * in memory until the 30-minute heartbeat, so `kubectl describe` shows a stale count for up to half an hour);
 * transient write errors back off exponentially from 1 s (client-go sleeps a flat 10 s ± 25 %).
 */
import type { KubeObject } from '../api/kube.js';
import { isAlreadyExists, isNotFound, isTransient, Resources, type KubeApi } from './kube-api.js';
import type { Logger } from './logger.js';
import { formatMicroTime, sleep, systemClock, toUnixNanos, type Clock, type TimerHandle } from './timing.js';

/** A reference to the object an Event is about (`regarding`) or mentions (`related`). */
export interface EventObjectReference {
  apiVersion: string;
  kind: string;
  name: string;
  /** Empty or absent for cluster-scoped objects. */
  namespace?: string;
  /** Required by `kubectl describe`, which selects events by uid. */
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

/** `Normal` or `Warning`: the only types the API server accepts. */
export type EventType = 'Normal' | 'Warning';

/** One occurrence to record. */
export interface EventInput {
  regarding: EventObjectReference;
  related?: EventObjectReference;
  type: EventType;
  /** UpperCamelCase, machine-readable; ≤128 bytes (longer is truncated). */
  reason: string;
  /** What was done or failed, e.g. `Expose`; ≤128 bytes. */
  action: string;
  /** Human-readable; ≤1024 bytes (longer is truncated). Not part of the series key. */
  note: string;
  /** When it happened (ms since the epoch), for an Event recorded later than it occurred; default now. */
  at?: number;
}

/** An `events.k8s.io/v1` Event as JSON. */
export interface EventsV1Event extends KubeObject {
  eventTime: string;
  series?: { count: number; lastObservedTime: string } | null;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  regarding: EventObjectReference;
  related?: EventObjectReference;
  note?: string;
  type: EventType;
}

/** API-server limits (`pkg/apis/core/validation/events.go`); lengths are in bytes. */
export const EVENT_LIMITS = Object.freeze({ reason: 128, action: 128, note: 1024, reportingInstance: 128, name: 253 });

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Whether `value` is a Kubernetes qualified name (`[prefix/]name`), as `reportingController` must be. */
export function isQualifiedName(value: string): boolean {
  const parts = value.split('/');
  if (parts.length > 2) return false;
  const name = parts.length === 2 ? parts[1] : parts[0];
  const prefix = parts.length === 2 ? parts[0] : undefined;
  if (name === undefined || name.length > 63 || !QUALIFIED_NAME_PART.test(name)) return false;
  return prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix));
}

/** Cuts `value` to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(value: string, maxBytes: number): string {
  if (Buffer.byteLength(value, 'utf8') <= maxBytes) return value;
  let out = '';
  let used = 0;
  for (const ch of value) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (used + size > maxBytes) break;
    out += ch;
    used += size;
  }
  return out;
}

/** The Event namespace: the regarding object's, or `default` for cluster-scoped objects (API rule). */
export function eventNamespace(regarding: EventObjectReference): string {
  return regarding.namespace !== undefined && regarding.namespace !== '' ? regarding.namespace : 'default';
}

/** `<regarding name>.<hex unix nanos>`, with the prefix cut so the whole stays a valid 253-character name. */
export function eventName(regardingName: string, unixNanos: bigint): string {
  const suffix = `.${unixNanos.toString(16)}`;
  return `${regardingName.slice(0, EVENT_LIMITS.name - suffix.length)}${suffix}`;
}

function refKey(ref: EventObjectReference | undefined): unknown[] {
  if (ref === undefined) return [];
  return [ref.apiVersion, ref.kind, ref.namespace ?? '', ref.name, ref.uid ?? '', ref.fieldPath ?? ''];
}

/** The series identity: everything but the note (client-go's `getKey`). */
export function seriesKey(input: EventInput, reportingController: string, reportingInstance: string): string {
  return JSON.stringify([
    input.type,
    input.action,
    input.reason,
    reportingController,
    reportingInstance,
    refKey(input.regarding),
    refKey(input.related),
  ]);
}

/** Identity of the writer, as stamped on every Event. */
export interface EventSource {
  reportingController: string;
  reportingInstance: string;
}

/** Builds the create body of an Event's first occurrence (pure; truncates to the API limits). */
export function buildEvent(input: EventInput, source: EventSource, init: { name: string; now: number }): EventsV1Event {
  const event: EventsV1Event = {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: init.name, namespace: eventNamespace(input.regarding) },
    eventTime: formatMicroTime(init.now),
    reportingController: source.reportingController,
    reportingInstance: source.reportingInstance,
    action: truncateUtf8(input.action, EVENT_LIMITS.action),
    reason: truncateUtf8(input.reason, EVENT_LIMITS.reason),
    regarding: { ...input.regarding },
    note: truncateUtf8(input.note, EVENT_LIMITS.note),
    type: input.type,
  };
  if (input.related !== undefined) event.related = { ...input.related };
  return event;
}

/** Why an input cannot become an Event (the API server would reject it), or `undefined` when it can. */
export function invalidEventReason(input: EventInput): string | undefined {
  if (input.type !== 'Normal' && input.type !== 'Warning')
    return `type must be Normal or Warning, got ${String(input.type)}`;
  if (input.reason === '') return 'reason is required';
  if (input.action === '') return 'action is required';
  if (input.regarding.name === '' || input.regarding.kind === '') return 'regarding needs a kind and a name';
  return undefined;
}

/** Counters for metrics and tests. */
export interface EventRecorderStats {
  /** API requests sent (creates + patches, retries included). */
  writes: number;
  creates: number;
  patches: number;
  /** Occurrences or writes dropped: queue full, invalid input, recorder closed. */
  dropped: number;
  /** Writes given up after a non-retriable error or exhausted retries. */
  failed: number;
  /** Writes waiting in the queue. */
  pending: number;
  /** Series currently tracked. */
  series: number;
}

/** Optional observers, e.g. `dataupload_events_recorded_total` and `dataupload_api_writes_total`. */
export interface EventRecorderHooks {
  recorded?(type: EventType, reason: string): void;
  apiWrite?(verb: 'create' | 'patch'): void;
}

/** Options of {@link EventRecorder}. Durations in milliseconds. */
export interface EventRecorderOptions extends EventSource {
  api: KubeApi;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  hooks?: EventRecorderHooks;
  /** How often repeats beyond the second are written. 2 s. */
  flushIntervalMs?: number;
  /** Series idle this long get a final write and are forgotten. 6 min (client-go). */
  idleTimeoutMs?: number;
  /** Every active series is re-written this often, so its Event outlives the API server's event TTL. 30 min. */
  heartbeatMs?: number;
  /** Series kept in memory; the least recently seen is evicted beyond it. 4096. */
  maxSeries?: number;
  /** Queued writes; further writes are dropped and counted. 1000 (client-go). */
  maxPending?: number;
  /** Attempts per write on transport errors. 12 (client-go). */
  maxAttempts?: number;
  /** First retry delay, doubled per attempt up to 10 s, ± 25 %. 1 s. */
  retryBaseMs?: number;
}

/** In-memory state of one series. Jobs hold the entry itself, so eviction never loses a queued write. */
interface SeriesEntry {
  key: string;
  body: EventsV1Event;
  count: number;
  lastObservedAt: number;
  /** The count the API server has (0 until created). */
  writtenCount: number;
  created: boolean;
  queued: boolean;
}

type Job = { kind: 'create' | 'patch'; entry: SeriesEntry };

/** Records Events for one reporting controller instance. See the module comment. */
export class EventRecorder {
  readonly #api: KubeApi;
  readonly #source: EventSource;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: Logger | undefined;
  readonly #hooks: EventRecorderHooks;
  readonly #cfg: Required<
    Pick<
      EventRecorderOptions,
      'flushIntervalMs' | 'idleTimeoutMs' | 'heartbeatMs' | 'maxSeries' | 'maxPending' | 'maxAttempts' | 'retryBaseMs'
    >
  >;
  /** Insertion order = least recently seen first (entries are re-inserted on every occurrence). */
  readonly #series = new Map<string, SeriesEntry>();
  readonly #dirty = new Set<SeriesEntry>();
  readonly #queue: Job[] = [];
  readonly #closed = new AbortController();
  readonly #idleWaiters: (() => void)[] = [];
  readonly #stats = { writes: 0, creates: 0, patches: 0, dropped: 0, failed: 0 };
  #writer: Promise<void> | undefined;
  #flushTimer: TimerHandle | undefined;
  #idleTimer: TimerHandle | undefined;
  #heartbeatTimer: TimerHandle | undefined;
  #lastNanos = 0n;

  constructor(options: EventRecorderOptions) {
    if (!isQualifiedName(options.reportingController)) {
      throw new Error(
        `reportingController ${JSON.stringify(options.reportingController)} must be a qualified name such as example.com/my-controller`,
      );
    }
    const instanceBytes = Buffer.byteLength(options.reportingInstance, 'utf8');
    if (instanceBytes === 0 || instanceBytes > EVENT_LIMITS.reportingInstance) {
      throw new Error(`reportingInstance must be 1..128 bytes, got ${instanceBytes}`);
    }
    this.#api = options.api;
    this.#source = { reportingController: options.reportingController, reportingInstance: options.reportingInstance };
    this.#clock = options.clock ?? systemClock();
    this.#random = options.random ?? Math.random;
    this.#log = options.logger;
    this.#hooks = options.hooks ?? {};
    this.#cfg = {
      flushIntervalMs: options.flushIntervalMs ?? 2_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 6 * 60_000,
      heartbeatMs: options.heartbeatMs ?? 30 * 60_000,
      maxSeries: options.maxSeries ?? 4096,
      maxPending: options.maxPending ?? 1000,
      maxAttempts: options.maxAttempts ?? 12,
      retryBaseMs: options.retryBaseMs ?? 1_000,
    };
    this.#scheduleIdleEviction();
    this.#scheduleHeartbeat();
  }

  /** API requests sent so far. */
  get writes(): number {
    return this.#stats.writes;
  }

  /** Occurrences or writes dropped so far. */
  get dropped(): number {
    return this.#stats.dropped;
  }

  /** All counters. */
  stats(): EventRecorderStats {
    return { ...this.#stats, pending: this.#queue.length, series: this.#series.size };
  }

  /** Records one occurrence. Synchronous; never throws; never waits for the API. */
  record(input: EventInput): void {
    try {
      this.#record(input);
    } catch (err) {
      this.#stats.dropped++;
      this.#log?.warn({ err, reason: input.reason }, 'dropped an Event');
    }
  }

  /**
   * Writes every pending count and waits for the queue to drain, at most `timeoutMs`. Resolves `true` when
   * everything was written (or given up on after errors), `false` when the time ran out.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.#flushDirty();
    if (this.#isIdle()) return true;
    return new Promise<boolean>((resolve) => {
      const timer = this.#clock.setTimer(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  /** Stops the timers and the writer; queued writes are dropped (call {@link flush} first). */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    for (const t of [this.#flushTimer, this.#idleTimer, this.#heartbeatTimer]) t?.cancel();
    this.#stats.dropped += this.#queue.length;
    this.#queue.length = 0;
    this.#notifyIdle();
  }

  #record(input: EventInput): void {
    if (this.#closed.signal.aborted) {
      this.#stats.dropped++;
      return;
    }
    const invalid = invalidEventReason(input);
    if (invalid !== undefined) {
      this.#stats.dropped++;
      this.#log?.warn({ reason: input.reason }, `dropped an invalid Event: ${invalid}`);
      return;
    }
    this.#hooks.recorded?.(input.type, input.reason);
    const now = input.at ?? this.#clock.now();
    const key = seriesKey(input, this.#source.reportingController, this.#source.reportingInstance);
    const existing = this.#series.get(key);
    if (existing === undefined) {
      this.#startSeries(key, input, now);
      return;
    }
    existing.count++;
    existing.lastObservedAt = now;
    this.#series.delete(key); // re-insert: most recently seen goes last
    this.#series.set(key, existing);
    if (existing.count === 2) {
      // client-go writes the second occurrence at once: it is what turns the Event into a series.
      this.#enqueue({ kind: 'patch', entry: existing });
    } else {
      this.#dirty.add(existing);
      this.#scheduleFlush();
    }
  }

  #startSeries(key: string, input: EventInput, now: number): void {
    while (this.#series.size >= this.#cfg.maxSeries) {
      const oldest = this.#series.values().next().value;
      if (oldest === undefined) break;
      this.#forget(oldest);
    }
    const body = buildEvent(input, this.#source, {
      name: eventName(input.regarding.name, this.#uniqueNanos(now)),
      now,
    });
    const entry: SeriesEntry = {
      key,
      body,
      count: 1,
      lastObservedAt: now,
      writtenCount: 0,
      created: false,
      queued: false,
    };
    this.#series.set(key, entry);
    this.#enqueue({ kind: 'create', entry });
  }

  /** Nanosecond timestamps, bumped when two Events start within one clock tick, so names never collide. */
  #uniqueNanos(now: number): bigint {
    let nanos = toUnixNanos(now);
    if (nanos <= this.#lastNanos) nanos = this.#lastNanos + 1n;
    this.#lastNanos = nanos;
    return nanos;
  }

  /** Drops an entry from memory, after queueing the write of any count the server has not seen yet. */
  #forget(entry: SeriesEntry): void {
    if (entry.created && entry.count > entry.writtenCount) this.#enqueue({ kind: 'patch', entry });
    this.#series.delete(entry.key);
    this.#dirty.delete(entry);
  }

  #enqueue(job: Job): void {
    if (job.entry.queued) {
      this.#dirty.delete(job.entry); // the queued job writes the latest count when it runs
      return;
    }
    if (this.#queue.length >= this.#cfg.maxPending) {
      this.#stats.dropped++;
      // A dropped create must not leave a series that later patches an Event that was never made.
      const tracked = this.#series.get(job.entry.key) === job.entry;
      if (!job.entry.created && tracked) this.#series.delete(job.entry.key);
      else if (tracked) this.#dirty.add(job.entry); // retried by the next flush
      return;
    }
    job.entry.queued = true;
    this.#dirty.delete(job.entry);
    this.#queue.push(job);
    this.#startWriter();
  }

  #startWriter(): void {
    if (this.#writer !== undefined || this.#closed.signal.aborted) return;
    this.#writer = this.#drain()
      .catch((err: unknown) => this.#log?.error({ err }, 'event writer failed'))
      .finally(() => {
        this.#writer = undefined;
        if (this.#queue.length > 0) this.#startWriter();
        else this.#notifyIdle();
      });
  }

  async #drain(): Promise<void> {
    for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
      job.entry.queued = false;
      await this.#writeWithRetries(job.entry);
      if (this.#closed.signal.aborted) return;
    }
  }

  async #writeWithRetries(entry: SeriesEntry): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#write(entry);
        return;
      } catch (err) {
        const retriable = isTransient(err) && attempt < this.#cfg.maxAttempts && !this.#closed.signal.aborted;
        if (!retriable) {
          this.#stats.failed++;
          this.#log?.warn({ err, event: entry.body.metadata.name }, 'giving up writing an Event');
          if (!entry.created && this.#series.get(entry.key) === entry) this.#series.delete(entry.key);
          return;
        }
        await sleep(this.#clock, this.#retryDelay(attempt), this.#closed.signal);
      }
    }
  }

  #retryDelay(attempt: number): number {
    const base = Math.min(10_000, this.#cfg.retryBaseMs * 2 ** (attempt - 1));
    return base * (0.75 + 0.5 * this.#random());
  }

  /** Creates the Event or patches its series with the latest count; a vanished Event is created again. */
  async #write(entry: SeriesEntry): Promise<void> {
    const count = entry.count;
    const lastObservedTime = formatMicroTime(entry.lastObservedAt);
    const namespace = entry.body.metadata.namespace;
    if (entry.created) {
      if (count < 2) return; // a singleton has nothing to patch
      try {
        this.#countWrite('patch');
        await this.#api.patch(
          Resources.events,
          entry.body.metadata.name ?? '',
          { series: { count, lastObservedTime } },
          'merge',
          {
            namespace,
          },
        );
        entry.writtenCount = Math.max(entry.writtenCount, count);
        this.#afterWrite(entry);
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        entry.created = false; // expired or deleted: create it again, series included
      }
    }
    const body: EventsV1Event = count >= 2 ? { ...entry.body, series: { count, lastObservedTime } } : entry.body;
    try {
      this.#countWrite('create');
      await this.#api.create(Resources.events, body, { namespace });
      entry.writtenCount = Math.max(entry.writtenCount, count);
    } catch (err) {
      // Most likely our own earlier create whose answer was lost; the next flush patches the count.
      if (!isAlreadyExists(err)) throw err;
    }
    entry.created = true;
    this.#afterWrite(entry);
  }

  #countWrite(verb: 'create' | 'patch'): void {
    this.#stats.writes++;
    this.#stats[verb === 'create' ? 'creates' : 'patches']++;
    this.#hooks.apiWrite?.(verb);
  }

  /** Occurrences that arrived while the write was in flight still need writing. */
  #afterWrite(entry: SeriesEntry): void {
    if (entry.count > entry.writtenCount && this.#series.get(entry.key) === entry) {
      this.#dirty.add(entry);
      this.#scheduleFlush();
    }
  }

  #flushDirty(): void {
    for (const entry of [...this.#dirty]) {
      if (entry.count > entry.writtenCount) this.#enqueue({ kind: 'patch', entry });
      else this.#dirty.delete(entry);
    }
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#closed.signal.aborted) return;
    this.#flushTimer = this.#clock.setTimer(
      () => {
        this.#flushTimer = undefined;
        this.#flushDirty();
      },
      this.#cfg.flushIntervalMs,
      { unref: true },
    );
  }

  #scheduleIdleEviction(): void {
    this.#idleTimer = this.#clock.setTimer(
      () => {
        this.#evictIdle();
        if (!this.#closed.signal.aborted) this.#scheduleIdleEviction();
      },
      this.#cfg.idleTimeoutMs,
      { unref: true },
    );
  }

  #scheduleHeartbeat(): void {
    this.#heartbeatTimer = this.#clock.setTimer(
      () => {
        for (const entry of this.#series.values())
          if (entry.created && entry.count >= 2) this.#enqueue({ kind: 'patch', entry });
        if (!this.#closed.signal.aborted) this.#scheduleHeartbeat();
      },
      this.#cfg.heartbeatMs,
      { unref: true },
    );
  }

  /** Forgets series not seen for the idle timeout (client-go's 6-minute pass), after a final write. */
  #evictIdle(): void {
    const cutoff = this.#clock.now() - this.#cfg.idleTimeoutMs;
    for (const entry of [...this.#series.values()]) {
      if (entry.lastObservedAt > cutoff) break; // ordered by last occurrence
      this.#forget(entry);
    }
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#writer === undefined;
  }

  #notifyIdle(): void {
    if (!this.#isIdle() && !this.#closed.signal.aborted) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
