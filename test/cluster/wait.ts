/** Polling helpers for the harness and the e2e tests. */
import { setTimeout as sleep } from 'node:timers/promises';

/** How long and how often to poll, and what to call the condition in a timeout error. */
export interface WaitOptions {
  /** Completes the sentence "timed out after N s waiting for ..." */
  readonly description: string;
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Called before each probe; throw from it to give up early (for example when a process died). */
  readonly precondition?: () => void;
  readonly signal?: AbortSignal;
}

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns that value.
 * Errors thrown by the probe count as "not yet"; the last one is quoted in the timeout error.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    opts.precondition?.();
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError === undefined ? '' : ` (last error: ${errorMessage(lastError)})`;
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${opts.description}${last}`);
    }
    await sleep(opts.intervalMs ?? 200, undefined, opts.signal ? { signal: opts.signal } : undefined);
  }
}

/** The message of an error-like value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
