/**
 * A keyed work queue with client-go semantics, the piece between the watch caches and the reconcilers.
 *
 * - **Dedupe**: a key waits in the queue at most once (`dirty` set), however many events named it.
 * - **One worker per key**: a key being processed is never handed to a second worker; an `add` during processing
 *   marks it dirty and it runs again right after the current run ends, so no change is ever missed.
 * - **Rate-limited retries**: `addRateLimited` waits `max(per-key exponential 5 ms · 2^n capped at 1000 s,
 *   overall token bucket 10 qps / burst 100)` — client-go's `DefaultControllerRateLimiter`.
 * - **Drain**: `shutDownWithDrain` stops handing out keys and waits for in-flight runs, with a deadline.
 * - **Priority lanes** (optional, not in client-go): `priorityOf(key)` picks a lane when a key is queued; higher
 *   lanes are served first, FIFO within a lane. A key that waited longer than `starvationMs` in a lower lane is
 *   served before anything else, so a busy high lane delays the others but never starves them.
 *
 * Time comes from an injected {@link Clock}, so tests drive backoff and delays without waiting.
 */
import { exponentialDelay, TokenBucket } from './rate-limit.js';
import { systemClock, type Clock, type TimerHandle } from './timing.js';

/**
 * Hooks for the metrics module, one per controller-runtime `workqueue_*` metric. Durations are in seconds, as
 * Prometheus histograms expect. Hooks must be cheap and must not throw (a throw is ignored).
 */
export interface WorkQueueMetrics {
  /** A key entered the queue (not counted when it was already waiting): `workqueue_adds_total`. */
  onAdd?(key: string): void;
  /** The number of keys waiting changed: `workqueue_depth`. */
  onDepth?(depth: number): void;
  /** A key was handed to a worker after waiting this long: `workqueue_queue_duration_seconds`. */
  onQueueLatency?(seconds: number): void;
  /** A worker finished one run of a key: `workqueue_work_duration_seconds`. */
  onWorkDuration?(seconds: number): void;
  /** A key was re-queued with backoff: `workqueue_retries_total`. */
  onRetry?(key: string): void;
}

/** The logging a queue needs; a pino logger fits. */
export interface QueueLogger {
  error(obj: Record<string, unknown>, msg: string): void;
}

/** Retry timing; the defaults are client-go's `DefaultControllerRateLimiter`. */
export interface RateLimiterOptions {
  /** Per-key delay after the first failure; default 5 ms. */
  readonly baseDelayMs?: number;
  /** Per-key delay cap; default 1 000 000 ms (1000 s). */
  readonly maxDelayMs?: number;
  /** Overall retry rate across all keys; default 10 per second. */
  readonly qps?: number;
  /** Overall retry burst; default 100. */
  readonly burst?: number;
}

/** Construction options of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** For logs; e.g. the controller name. */
  readonly name?: string;
  readonly clock?: Clock;
  readonly rateLimiter?: RateLimiterOptions;
  readonly metrics?: WorkQueueMetrics;
  readonly logger?: QueueLogger;
  /** The lane of a key when it is queued: higher runs first; default 0 for every key. Must be cheap. */
  readonly priorityOf?: (key: string) => number;
  /** How long a key may wait behind higher lanes before it is served anyway; default 2000 ms. */
  readonly starvationMs?: number;
}

/** What {@link WorkQueue.run} needs. */
export interface RunOptions {
  /** How many keys may be processed at once (controller-runtime's `MaxConcurrentReconciles`). */
  readonly workers: number;
  /**
   * Processes one key. Resolving means success: the key's failure count is reset (unless the handler itself
   * called `addRateLimited` for it during this run). Rejecting re-queues the key with backoff.
   */
  readonly handler: (key: string) => Promise<void>;
}

const DEFAULTS = Object.freeze({ baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 100 });

/** A deduplicating, rate-limited work queue with N workers; see the module comment. */
export class WorkQueue {
  readonly #name: string;
  readonly #clock: Clock;
  readonly #metrics: WorkQueueMetrics;
  readonly #logger: QueueLogger | undefined;
  readonly #backoff: { initialMs: number; maxMs: number };
  readonly #bucket: TokenBucket;

  /** Keys waiting for a worker, by lane (a Set keeps insertion order and makes dedupe O(1)); highest lane first. */
  readonly #lanes = new Map<number, Set<string>>();
  #lanesByPriority: Set<string>[] = [];
  #waiting = 0;
  readonly #priorityOf: ((key: string) => number) | undefined;
  readonly #starvationMs: number;
  /** Keys that need a run: waiting in the queue, or processing and changed again since the run began. */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  /** When each dirty key was first added, for the queue-latency metric. */
  readonly #addedAt = new Map<string, number>();
  /** Delayed adds: one timer per key, for its earliest due time. */
  readonly #delayed = new Map<string, { dueAt: number; timer: TimerHandle }>();
  readonly #failures = new Map<string, number>();
  /** Keys whose current run already asked for a rate-limited retry, so success must not reset their backoff. */
  readonly #retriedDuringRun = new Set<string>();
  /** Idle workers waiting for a key or for shutdown. */
  #waiters: (() => void)[] = [];
  /** Resolvers waiting for the processing set to empty (drain). */
  #idleWaiters: (() => void)[] = [];
  #shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#name = options.name ?? 'queue';
    this.#clock = options.clock ?? systemClock();
    this.#metrics = options.metrics ?? {};
    this.#logger = options.logger;
    const rl = { ...DEFAULTS, ...options.rateLimiter };
    this.#backoff = { initialMs: rl.baseDelayMs, maxMs: rl.maxDelayMs };
    this.#bucket = new TokenBucket({ qps: rl.qps, burst: rl.burst, now: () => this.#clock.now() });
    this.#priorityOf = options.priorityOf;
    this.#starvationMs = options.starvationMs ?? 2000;
  }

  /** Queues `key` unless it is already waiting; a key being processed runs again after its current run. */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#addedAt.set(key, this.#clock.now());
    this.#hook(() => this.#metrics.onAdd?.(key));
    if (this.#processing.has(key)) return;
    this.#enqueue(key);
    this.#depthChanged();
    this.#wakeOne();
  }

  /** Queues `key` after `ms`; if it is already scheduled earlier, the earlier time wins. `ms <= 0` adds now. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const dueAt = this.#clock.now() + ms;
    const existing = this.#delayed.get(key);
    if (existing !== undefined && existing.dueAt <= dueAt) return;
    existing?.timer.cancel();
    const timer = this.#clock.setTimer(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { dueAt, timer });
  }

  /** Queues `key` after its backoff: the larger of the per-key exponential delay and the overall bucket's. */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    if (this.#processing.has(key)) this.#retriedDuringRun.add(key);
    const delay = Math.max(exponentialDelay(this.#backoff, failures), this.#bucket.reserve());
    this.#hook(() => this.#metrics.onRetry?.(key));
    this.addAfter(key, delay);
  }

  /** Resets the backoff of `key` (call on success; {@link run} does it for you). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** How many rate-limited retries `key` has had since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Keys waiting for a worker (not counting keys in processing or delayed adds). */
  len(): number {
    return this.#waiting;
  }

  /** Keys being processed right now. */
  processingCount(): number {
    return this.#processing.size;
  }

  /** True once {@link shutDownWithDrain} was called. */
  isShuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Runs `workers` concurrent loops that take keys and call `handler`, until shutdown. Resolves when every worker
   * has stopped. A handler rejection is logged and re-queued with backoff; it never escapes.
   */
  async run(options: RunOptions): Promise<void> {
    const count = Math.max(1, Math.floor(options.workers));
    const workers = Array.from({ length: count }, () => this.#workerLoop(options.handler));
    await Promise.all(workers);
  }

  /**
   * Stops taking keys (queued and later adds are dropped: a new leader or process relists everything) and waits
   * until in-flight runs finish or `deadlineMs` passes. Resolves `true` when drained in time.
   */
  async shutDownWithDrain(deadlineMs: number): Promise<boolean> {
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) timer.cancel();
    this.#delayed.clear();
    this.#lanes.clear();
    this.#lanesByPriority = [];
    this.#waiting = 0;
    this.#depthChanged();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
    if (this.#processing.size === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = this.#clock.setTimer(() => resolve(false), deadlineMs);
      this.#idleWaiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  async #workerLoop(handler: (key: string) => Promise<void>): Promise<void> {
    for (;;) {
      const key = await this.#next();
      if (key === undefined) return;
      await this.#process(key, handler);
    }
  }

  /** The next key for a worker, or `undefined` once the queue shuts down. */
  async #next(): Promise<string | undefined> {
    for (;;) {
      if (this.#shuttingDown) return undefined;
      const key = this.#pop();
      if (key !== undefined) return key;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Files a key in the lane its priority names. */
  #enqueue(key: string): void {
    const priority = this.#priorityOf?.(key) ?? 0;
    let lane = this.#lanes.get(priority);
    if (lane === undefined) {
      lane = new Set();
      this.#lanes.set(priority, lane);
      this.#lanesByPriority = [...this.#lanes.entries()].sort(([a], [b]) => b - a).map(([, l]) => l);
    }
    if (!lane.has(key)) this.#waiting++;
    lane.add(key);
  }

  /** The key to serve next: a starving one from a lower lane, else the head of the highest non-empty lane. */
  #choose(): { key: string; lane: Set<string> } | undefined {
    let chosen: { key: string; lane: Set<string> } | undefined;
    const now = this.#clock.now();
    for (const lane of this.#lanesByPriority) {
      const head = lane.values().next();
      if (head.done === true) continue;
      if (chosen === undefined) {
        chosen = { key: head.value, lane };
        continue;
      }
      const addedAt = this.#addedAt.get(head.value);
      if (addedAt !== undefined && now - addedAt > this.#starvationMs) return { key: head.value, lane };
    }
    return chosen;
  }

  #pop(): string | undefined {
    const next = this.#choose();
    if (next === undefined) return undefined;
    const key = next.key;
    next.lane.delete(key);
    this.#waiting--;
    this.#dirty.delete(key);
    this.#processing.add(key);
    const addedAt = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (addedAt !== undefined) {
      const waited = (this.#clock.now() - addedAt) / 1000;
      this.#hook(() => this.#metrics.onQueueLatency?.(waited));
    }
    this.#depthChanged();
    return key;
  }

  async #process(key: string, handler: (key: string) => Promise<void>): Promise<void> {
    const started = this.#clock.now();
    try {
      await handler(key);
      if (!this.#retriedDuringRun.has(key)) this.forget(key);
    } catch (err) {
      this.#logger?.error({ queue: this.#name, key, err }, 'work item failed; retrying with backoff');
      this.addRateLimited(key);
    } finally {
      const seconds = (this.#clock.now() - started) / 1000;
      this.#hook(() => this.#metrics.onWorkDuration?.(seconds));
      this.#done(key);
    }
  }

  /** Ends a run: a key that became dirty meanwhile goes back into the queue. */
  #done(key: string): void {
    this.#processing.delete(key);
    this.#retriedDuringRun.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#enqueue(key);
      this.#depthChanged();
      this.#wakeOne();
    }
    if (this.#processing.size === 0 && this.#idleWaiters.length > 0) {
      const idle = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of idle) resolve();
    }
  }

  #wakeOne(): void {
    this.#waiters.shift()?.();
  }

  #depthChanged(): void {
    const depth = this.#waiting;
    this.#hook(() => this.#metrics.onDepth?.(depth));
  }

  #hook(call: () => void): void {
    try {
      call();
    } catch {
      // Metrics must never break the queue.
    }
  }
}
