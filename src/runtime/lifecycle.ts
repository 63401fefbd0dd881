/**
 * Graceful shutdown. On SIGTERM or SIGINT the registered steps run in registration order under one overall
 * deadline (default 25 s, inside Kubernetes' default 30 s grace period). The intended order is: stop the watches
 * → stop taking keys and drain in-flight reconciles → flush Events → release the Lease → close the servers.
 *
 * A failing or overrunning step does not stop the ones after it: releasing the Lease matters most exactly when
 * draining hung. Steps left when the deadline passes still run, each with a short budget of its own. A second
 * signal forces exit at once.
 *
 * The library never calls `process.exit`: {@link Lifecycle.done} resolves with the exit code for `main` to use,
 * and the forced exit goes through the injected `exit` function.
 */
import type { Logger } from './logger.js';
import { systemClock, type Clock } from './timing.js';

/** The part of `process` the lifecycle listens on; an `EventEmitter` fits in tests. */
export interface SignalSource {
  on(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  off(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

/** One shutdown step. `signal` aborts when the step's time is up; the step should then return promptly. */
export type ShutdownStepFn = (signal: AbortSignal) => Promise<unknown> | void;

/** How one step went. */
export interface StepOutcome {
  name: string;
  ok: boolean;
  durationMs: number;
  /** `timeout` when the step overran its budget. */
  error?: string;
}

/** Options of {@link Lifecycle}. */
export interface LifecycleOptions {
  /** Where signals come from; `process` in production. */
  signals: SignalSource;
  /** Called on a second signal (forced exit); `process.exit` in production. */
  exit: (code: number) => void;
  /** Overall budget of all steps. 25 s. */
  deadlineMs?: number;
  /** Budget of each step that starts after the deadline passed. 1 s. */
  lateStepBudgetMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** The exit code for a set of step outcomes: 0 when all succeeded and nothing forced a failure, else 1. */
export function exitCodeFor(outcomes: readonly StepOutcome[], requestedCode: number): number {
  return requestedCode === 0 && outcomes.every((o) => o.ok) ? 0 : 1;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Runs the shutdown steps once, on the first signal or {@link shutdown} call. */
export class Lifecycle {
  readonly #steps: { name: string; run: ShutdownStepFn }[] = [];
  readonly #options: LifecycleOptions;
  readonly #clock: Clock;
  readonly #outcomes: StepOutcome[] = [];
  readonly #listeners = new Map<(typeof SIGNALS)[number], () => void>();
  readonly #done: Promise<number>;
  #resolveDone!: (code: number) => void;
  #started = false;
  #requestedCode = 0;

  constructor(options: LifecycleOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock();
    this.#done = new Promise<number>((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Resolves with the exit code once every step has run. */
  get done(): Promise<number> {
    return this.#done;
  }

  /** Whether shutdown has begun. */
  get shuttingDown(): boolean {
    return this.#started;
  }

  /** What each step did (after {@link done}). */
  outcomes(): readonly StepOutcome[] {
    return [...this.#outcomes];
  }

  /** Appends a step; steps run in the order they were added. */
  addStep(name: string, run: ShutdownStepFn): this {
    this.#steps.push({ name, run });
    return this;
  }

  /** Starts listening for SIGTERM and SIGINT. */
  listen(): void {
    for (const signal of SIGNALS) {
      if (this.#listeners.has(signal)) continue;
      const listener = (): void => this.#onSignal(signal);
      this.#listeners.set(signal, listener);
      this.#options.signals.on(signal, listener);
    }
  }

  /** Stops listening (after shutdown, or in tests). */
  dispose(): void {
    for (const [signal, listener] of this.#listeners) this.#options.signals.off(signal, listener);
    this.#listeners.clear();
  }

  /**
   * Begins shutdown (idempotent) and resolves with the exit code. `exitCode` 1 marks a shutdown caused by a
   * failure (e.g. leadership lost), so the process exits 1 even when every step succeeds.
   */
  shutdown(reason: string, exitCode = 0): Promise<number> {
    if (exitCode !== 0) this.#requestedCode = exitCode;
    if (!this.#started) {
      this.#started = true;
      this.#options.logger?.info({ reason }, 'shutting down');
      void this.#runSteps().then((code) => {
        this.dispose();
        this.#resolveDone(code);
      });
    }
    return this.#done;
  }

  #onSignal(signal: string): void {
    if (this.#started) {
      this.#options.logger?.warn({ signal }, 'second signal: exiting now');
      this.#options.exit(1);
      return;
    }
    void this.shutdown(`received ${signal}`);
  }

  async #runSteps(): Promise<number> {
    const deadlineAt = this.#clock.now() + (this.#options.deadlineMs ?? 25_000);
    const lateBudget = this.#options.lateStepBudgetMs ?? 1_000;
    for (const step of this.#steps) {
      const budget = Math.max(deadlineAt - this.#clock.now(), lateBudget);
      const outcome = await this.#runStep(step, budget);
      this.#outcomes.push(outcome);
      const log = this.#options.logger;
      if (outcome.ok) log?.info({ step: step.name, durationMs: outcome.durationMs }, 'shutdown step done');
      else
        log?.error({ step: step.name, durationMs: outcome.durationMs, error: outcome.error }, 'shutdown step failed');
    }
    return exitCodeFor(this.#outcomes, this.#requestedCode);
  }

  /** Runs one step, resolving with its outcome when it settles or its budget runs out, whichever is first. */
  #runStep(step: { name: string; run: ShutdownStepFn }, budgetMs: number): Promise<StepOutcome> {
    const started = this.#clock.now();
    const abort = new AbortController();
    const elapsed = (): number => this.#clock.now() - started;
    return new Promise<StepOutcome>((resolve) => {
      const timer = this.#clock.setTimer(() => {
        abort.abort();
        resolve({ name: step.name, ok: false, durationMs: elapsed(), error: 'timeout' });
      }, budgetMs);
      let running: Promise<unknown>;
      try {
        running = Promise.resolve(step.run(abort.signal));
      } catch (err) {
        running = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      running.then(
        () => {
          timer.cancel();
          resolve({ name: step.name, ok: true, durationMs: elapsed() });
        },
        (err: unknown) => {
          timer.cancel();
          resolve({
            name: step.name,
            ok: false,
            durationMs: elapsed(),
            error: err instanceof Error ? err.message : String(err),
          });
        },
      );
    });
  }
}
