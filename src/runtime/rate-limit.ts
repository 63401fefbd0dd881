/**
 * Pure timing arithmetic shared by the API client (client-side QPS limit), the work queue (per-key backoff plus an
 * overall bucket) and the watch cache (reconnect backoff). Nothing here sleeps or reads the real clock: callers
 * pass `now` and act on the returned delay, so tests control time completely.
 */

/** Settings of a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Sustained rate in tokens per second; must be > 0. */
  readonly qps: number;
  /** Bucket size: how many tokens may be spent at once after an idle period; must be >= 1. */
  readonly burst: number;
  /** Milliseconds clock (e.g. `Date.now` or a fake). */
  readonly now: () => number;
}

/**
 * A token bucket with reservation semantics (like Go's `rate.Limiter.Reserve`): every call takes a token at once,
 * possibly going into debt, and says how long the caller must wait before using it. Reservations are therefore
 * served in call order and never starve.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.qps > 0)) throw new RangeError(`token bucket qps must be > 0, got ${options.qps}`);
    if (!(options.burst >= 1)) throw new RangeError(`token bucket burst must be >= 1, got ${options.burst}`);
    this.#qps = options.qps;
    this.#burst = options.burst;
    this.#now = options.now;
    this.#tokens = options.burst;
    this.#last = options.now();
  }

  /** Takes one token and returns the delay in milliseconds before it may be used (0: use it now). */
  reserve(): number {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000);
    this.#tokens -= 1;
    if (this.#tokens >= 0) return 0;
    return Math.ceil((-this.#tokens * 1000) / this.#qps);
  }
}

/** Settings of an exponential backoff. */
export interface BackoffOptions {
  /** Delay after the first failure, in milliseconds. */
  readonly initialMs: number;
  /** Upper bound of the delay, in milliseconds. */
  readonly maxMs: number;
}

/**
 * `initialMs * 2^failures`, capped at `maxMs`. `failures` counts the failures before this one (0 for the first
 * retry). Stays finite for any count, because the exponent is clamped before it can overflow.
 */
export function exponentialDelay(options: BackoffOptions, failures: number): number {
  const exponent = Math.min(Math.max(0, failures), 62);
  const delay = options.initialMs * 2 ** exponent;
  return Math.min(options.maxMs, delay);
}

/**
 * "Full jitter" (AWS architecture blog): a uniform delay in `[0, ceiling)`. Spreads reconnect storms of many
 * clients after an apiserver restart better than a fixed or equal-jitter delay. `random` returns `[0, 1)`.
 */
export function fullJitter(ceilingMs: number, random: () => number): number {
  return Math.floor(Math.max(0, ceilingMs) * random());
}
