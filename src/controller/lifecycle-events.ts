/**
 * Lifecycle Events cost API writes: `Accepted`, `Exposed` and `Prepared` would be three Event creates per
 * DataUpload on top of its ten object writes, and in a burst of a thousand DataUploads they compete with those
 * writes for the API server. This sink holds `Accepted` and `Exposed` back for a window. When the DataUpload is
 * Prepared within it, they are dropped: the `Prepared` Event summarises them, with their timings. Otherwise, or
 * as soon as anything else happens to that DataUpload (a Warning, a cancel, a failure), they are recorded with
 * the time they happened, before that Event, so a slow or stuck DataUpload still shows its whole trail.
 */
import type { EventRecord, EventSink } from './executor.js';

/** The lifecycle reasons that may be folded into the `Prepared` summary. */
export const DEFERRED_REASONS: ReadonlySet<string> = new Set(['Accepted', 'Exposed']);
/** The reason whose Event summarises the deferred ones. */
export const SUMMARY_REASON = 'Prepared';
/** How long the deferred Events wait for the summary; default of {@link CoalescingEventSink}. */
export const DEFAULT_WINDOW_MS = 30_000;

/** Options of {@link CoalescingEventSink}. */
export interface CoalescingOptions {
  windowMs?: number;
  now?: () => number;
  /** Schedules `fn` after `ms`; returns a cancel function. Default: an unref'd setTimeout. */
  schedule?: (fn: () => void, ms: number) => () => void;
}

interface Held {
  events: EventRecord[];
  cancel: () => void;
}

/** Wraps the Event recorder; see the module comment. */
export class CoalescingEventSink implements EventSink {
  private readonly held = new Map<string, Held>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;

  constructor(
    private readonly inner: EventSink,
    options: CoalescingOptions = {},
  ) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
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
    this.inner.record(event);
  }

  /** Records everything still held (shutdown). */
  releaseAll(): void {
    for (const key of [...this.held.keys()]) this.release(key);
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
    for (const event of held.events) this.inner.record(event);
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
