/**
 * Lifecycle Events cost API writes: `Accepted`, `Exposed` and `Prepared` would be three Event creates per
 * DataUpload on top of its ten object writes, and in a burst of a thousand DataUploads they compete with those
 * writes for the API server. This sink does two things:
 *
 * - **Folds** `Accepted` and `Exposed` into `Prepared`: they are held back for a window; when the DataUpload is
 *   Prepared within it, they are dropped and the `Prepared` Event summarises them, with their timings. Otherwise,
 *   or as soon as anything else happens to that DataUpload (a Warning, a cancel, a failure), they are recorded
 *   before that Event, so a slow or stuck DataUpload still shows its whole trail.
 * - **Defers** Normal Events while the controller is busy: they are recorded once it is idle, or at the latest
 *   {@link DEFAULT_MAX_DELAY_MS} after they happened, so a burst's Events do not slow the burst. Every Event keeps
 *   the time it happened. Warnings are never deferred.
 */
import type { EventRecord, EventSink } from './executor.js';

/** The lifecycle reasons that may be folded into the `Prepared` summary. */
export const DEFERRED_REASONS: ReadonlySet<string> = new Set(['Accepted', 'Exposed']);
/** The reason whose Event summarises the deferred ones. */
export const SUMMARY_REASON = 'Prepared';
/** How long the deferred Events wait for the summary; default of {@link CoalescingEventSink}. */
export const DEFAULT_WINDOW_MS = 30_000;
/** The longest a Normal Event waits for the controller to be idle. */
export const DEFAULT_MAX_DELAY_MS = 120_000;
/** How often the idle check runs while Normal Events are waiting. */
const IDLE_CHECK_MS = 1_000;

/** Options of {@link CoalescingEventSink}. */
export interface CoalescingOptions {
  windowMs?: number;
  now?: () => number;
  /** Schedules `fn` after `ms`; returns a cancel function. Default: an unref'd setTimeout. */
  schedule?: (fn: () => void, ms: number) => () => void;
  /** Whether the controller is busy (Normal Events wait); default: never busy. */
  busy?: () => boolean;
  maxDelayMs?: number;
}

interface Held {
  events: EventRecord[];
  cancel: () => void;
}

/** Wraps the Event recorder; see the module comment. */
export class CoalescingEventSink implements EventSink {
  private readonly held = new Map<string, Held>();
  /** Normal Events waiting for an idle controller, oldest first. */
  private readonly deferred: EventRecord[] = [];
  private cancelIdleCheck: (() => void) | undefined;
  private readonly busy: () => boolean;
  private readonly maxDelayMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;

  constructor(
    private readonly inner: EventSink,
    options: CoalescingOptions = {},
  ) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.busy = options.busy ?? (() => false);
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.now = options.now ?? Date.now;
    this.schedule =
      options.schedule ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        timer.unref();
        return () => clearTimeout(timer);
      });
  }

  record(event: EventRecord): void {
    const key = keyOf(event);
    if (event.type === 'Normal' && DEFERRED_REASONS.has(event.reason)) {
      let held = this.held.get(key);
      if (!held) {
        held = { events: [], cancel: this.schedule(() => this.release(key), this.windowMs) };
        this.held.set(key, held);
      }
      held.events.push({ ...event, at: event.at ?? this.now() });
      return;
    }
    if (event.type === 'Normal' && event.reason === SUMMARY_REASON) this.drop(key);
    else this.release(key);
    this.emit(event);
  }

  /** Records everything still held or deferred (shutdown). */
  releaseAll(): void {
    for (const key of [...this.held.keys()]) this.release(key);
    this.cancelIdleCheck?.();
    this.cancelIdleCheck = undefined;
    for (const event of this.deferred.splice(0)) this.inner.record(event);
  }

  /** Normal Events wait for an idle controller (in order); Warnings go at once. */
  private emit(event: EventRecord): void {
    if (event.type !== 'Normal') {
      this.inner.record(event);
      return;
    }
    this.deferred.push({ ...event, at: event.at ?? this.now() });
    this.flushDeferred();
  }

  /** Records the deferred Events that may go now: all when idle, else those past the maximum delay. */
  private flushDeferred(): void {
    const idle = !this.busy();
    const cutoff = this.now() - this.maxDelayMs;
    while (this.deferred.length > 0 && (idle || (this.deferred[0]!.at ?? 0) <= cutoff)) {
      this.inner.record(this.deferred.shift()!);
    }
    if (this.deferred.length > 0 && !this.cancelIdleCheck) {
      this.cancelIdleCheck = this.schedule(() => {
        this.cancelIdleCheck = undefined;
        this.flushDeferred();
      }, IDLE_CHECK_MS);
    }
  }

  /** How many DataUploads have Events held back (tests, metrics). */
  size(): number {
    return this.held.size;
  }

  private release(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    this.held.delete(key);
    held.cancel();
    for (const event of held.events) this.emit(event);
  }

  private drop(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    this.held.delete(key);
    held.cancel();
  }
}

function keyOf(event: EventRecord): string {
  const r = event.regarding;
  return r.uid ?? `${r.namespace ?? ''}/${r.name}`;
}
