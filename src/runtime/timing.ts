/**
 * Time for the operational runtime: an injectable clock (so leader election, the event recorder and the health
 * probes can be tested without waiting) and the Kubernetes `MicroTime` format that Leases and Events require.
 */

/** A cancellable timer returned by {@link Clock.setTimer}. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Wall time and timers, injected everywhere time matters. `now()` is epoch milliseconds and may carry a
 * fractional part (sub-millisecond precision) so MicroTime values get real microseconds.
 */
export interface Clock {
  now(): number;
  /** Runs `fn` once after `ms`. `unref` timers do not keep the process alive (for background housekeeping). */
  setTimer(fn: () => void, ms: number, options?: { unref?: boolean }): TimerHandle;
}

/** The real clock: `performance` for sub-millisecond wall time, `setTimeout` for timers. */
export function systemClock(): Clock {
  return {
    now: () => performance.timeOrigin + performance.now(),
    setTimer(fn, ms, options) {
      const t = setTimeout(fn, Math.max(0, ms));
      if (options?.unref === true) t.unref();
      return { cancel: () => clearTimeout(t) };
    },
  };
}

/**
 * Resolves after `ms` on `clock`, or at once when `signal` aborts (it never rejects: loops check the signal
 * themselves, which keeps every caller free of abort-error plumbing).
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Formats epoch milliseconds as a Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits,
 * e.g. `2026-11-23T21:50:18.123456Z`. The API server rejects Event `eventTime` values in other precisions.
 */
export function formatMicroTime(epochMs: number): string {
  // Whole microseconds fit a double exactly for any realistic date; rounding absorbs float noise (.000999…).
  const totalMicros = Math.round(epochMs * 1000);
  const micros = ((totalMicros % 1000) + 1000) % 1000;
  const iso = new Date((totalMicros - micros) / 1000).toISOString(); // always `YYYY-MM-DDTHH:MM:SS.mmmZ`
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 timestamp (any fractional precision, as MicroTime and Time values come back from the API
 * server) into epoch milliseconds with microsecond precision, or `undefined` when it is not a timestamp.
 */
export function parseMicroTime(value: string | null | undefined): number | undefined {
  if (value == null) return undefined;
  const m = RFC3339.exec(value);
  if (m === null) return undefined;
  const [, base = '', fraction = '', zone = 'Z'] = m;
  const seconds = Date.parse(`${base}${zone}`);
  if (Number.isNaN(seconds)) return undefined;
  const micros = Number(fraction.padEnd(6, '0').slice(0, 6));
  return seconds + micros / 1000;
}

/** Epoch milliseconds as Unix nanoseconds (microsecond resolution; BigInt, since nanoseconds overflow a double). */
export function toUnixNanos(epochMs: number): bigint {
  return BigInt(Math.round(epochMs * 1000)) * 1000n;
}
