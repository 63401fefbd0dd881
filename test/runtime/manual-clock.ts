import type { Clock, TimerHandle } from '../../src/runtime/timing.js';

/** A clock that only moves when a test says so; timers fire in due order during {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, { dueAt: number; fn: () => void }>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = this.#seq++;
    this.#timers.set(id, { dueAt: this.#now + Math.max(0, ms), fn });
    return { cancel: () => this.#timers.delete(id) };
  }

  /** Pending timers (for assertions that nothing is left scheduled). */
  pendingTimers(): number {
    return this.#timers.size;
  }

  /** The due times of pending timers, relative to now, in ascending order. */
  pendingDelays(): number[] {
    return [...this.#timers.values()].map((t) => t.dueAt - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, earliest first, with promise flushes between. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.dueAt > target) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.dueAt);
      next.fn();
      await flush();
    }
    this.#now = target;
    await flush();
  }

  #earliest(): { id: number; dueAt: number; fn: () => void } | undefined {
    let best: { id: number; dueAt: number; fn: () => void } | undefined;
    for (const [id, t] of this.#timers) {
      if (best === undefined || t.dueAt < best.dueAt) best = { id, ...t };
    }
    return best;
  }
}

/** Lets pending promise callbacks and immediates run. */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise with its resolve/reject exposed, for handlers that finish when a test decides. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
