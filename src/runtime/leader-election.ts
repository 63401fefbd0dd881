/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics: only the holder reconciles;
 * others take over when the holder's record has not changed for `leaseDurationSeconds` as seen on their **own**
 * clock (no clock-skew assumptions); every write is a create or a resourceVersion-guarded replace, so a 409 means
 * another candidate won the race.
 *
 * The decisions are pure functions ({@link observeLease}, {@link decideLease}, {@link releasedRecord}); the
 * {@link LeaderElector} class only loops, reads, writes and calls back.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeObject } from '../api/kube.js';
import { isAlreadyExists, isConflict, isNotFound, Resources, type KubeApi } from './kube-api.js';
import type { Logger } from './logger.js';
import { formatMicroTime, sleep, systemClock, type Clock } from './timing.js';

/** A `coordination.k8s.io/v1` Lease as JSON. */
export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
    strategy?: string | null;
    preferredHolder?: string | null;
  };
}

/** The election-relevant part of a Lease spec, normalised (empty holder = vacant). */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

/** What this candidate last saw of the Lease, and when (local clock) the record last changed. */
export interface LeaseObservation {
  record: LeaseRecord;
  /** Local epoch ms at which this record was first seen; expiry counts from here, never from `renewTime`. */
  observedAt: number;
}

/** The next step for a candidate, with the reason behind it. */
export type LeaseDecision =
  | { kind: 'create'; record: LeaseRecord; reason: 'LeaseMissing'; message: string }
  | { kind: 'update'; record: LeaseRecord; reason: 'Renew' | 'Vacant' | 'Expired'; message: string }
  | { kind: 'wait'; reason: 'HeldByOther'; message: string; holder: string; expiresAt: number };

/** Normalises a Lease's spec into a record; missing fields read as empty/zero. */
export function leaseRecordOf(lease: Lease): LeaseRecord {
  const s = lease.spec ?? {};
  return {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: s.acquireTime ?? '',
    renewTime: s.renewTime ?? '',
    leaseTransitions: s.leaseTransitions ?? 0,
  };
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

/**
 * Folds a freshly read Lease into the previous observation. The observation time moves only when the record
 * changed: an unchanged record keeps ageing on the local clock, which is what makes a dead holder expire.
 */
export function observeLease(previous: LeaseObservation | undefined, lease: Lease, now: number): LeaseObservation {
  const record = leaseRecordOf(lease);
  if (previous !== undefined && sameRecord(previous.record, record)) return previous;
  return { record, observedAt: now };
}

/** Inputs of {@link decideLease}. */
export interface LeaseDecisionInput {
  /** `undefined` when the Lease does not exist. */
  observation: LeaseObservation | undefined;
  identity: string;
  now: number;
  /** Our configured lease duration, written into records we create or take over. */
  leaseDurationSeconds: number;
}

/**
 * Whether and how to acquire or renew. A vacant record (empty holder, e.g. after a release) is free at once; a
 * record held by another identity is free once it has been unchanged for its own `leaseDurationSeconds` (ours if
 * it carries none) on the local clock.
 */
export function decideLease(input: LeaseDecisionInput): LeaseDecision {
  const { observation, identity, now, leaseDurationSeconds } = input;
  const nowText = formatMicroTime(now);
  if (observation === undefined) {
    return {
      kind: 'create',
      reason: 'LeaseMissing',
      message: 'no Lease exists yet; creating it as holder',
      record: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: nowText,
        renewTime: nowText,
        leaseTransitions: 0,
      },
    };
  }
  const current = observation.record;
  if (current.holderIdentity === identity) {
    return {
      kind: 'update',
      reason: 'Renew',
      message: 'we hold the Lease; renewing',
      record: { ...current, leaseDurationSeconds, renewTime: nowText },
    };
  }
  const takeover = {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: nowText,
    renewTime: nowText,
    leaseTransitions: current.leaseTransitions + 1,
  };
  if (current.holderIdentity === '') {
    return { kind: 'update', reason: 'Vacant', message: 'the Lease has no holder; taking it', record: takeover };
  }
  const durationMs = (current.leaseDurationSeconds > 0 ? current.leaseDurationSeconds : leaseDurationSeconds) * 1000;
  const expiresAt = observation.observedAt + durationMs;
  if (now < expiresAt) {
    return {
      kind: 'wait',
      reason: 'HeldByOther',
      holder: current.holderIdentity,
      expiresAt,
      message: `held by ${current.holderIdentity}; free in ${Math.ceil((expiresAt - now) / 1000)}s unless renewed`,
    };
  }
  return {
    kind: 'update',
    reason: 'Expired',
    message: `${current.holderIdentity} has not renewed for ${Math.round((now - observation.observedAt) / 1000)}s; taking over`,
    record: takeover,
  };
}

/**
 * The record written on release: no holder and a one-second duration, so any successor takes over on its next
 * attempt instead of waiting a full lease duration. Transitions are kept; the successor counts its takeover.
 */
export function releasedRecord(current: LeaseRecord, now: number): LeaseRecord {
  const nowText = formatMicroTime(now);
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: nowText,
    renewTime: nowText,
    leaseTransitions: current.leaseTransitions,
  };
}

/** A unique candidate identity: the pod name, `_`, and a random suffix (two processes in one pod differ). */
export function leaderIdentity(podName: string = hostname(), suffix: string = randomUUID()): string {
  return `${podName}_${suffix}`;
}

/** Why leadership ended. */
export type StopReason =
  /** Renewal failed until the renew deadline, or another candidate took the Lease: stop reconciling and exit. */
  | 'lost'
  /** {@link LeaderElector.release} was called (shutdown). */
  | 'released'
  /** The `run` signal aborted; the Lease was left as is (it expires after its duration). */
  | 'stopped';

/** Callbacks of {@link LeaderElector}. Exceptions thrown by them are logged and otherwise ignored. */
export interface LeaderCallbacks {
  /** We became leader; `signal` aborts the moment we stop leading. */
  onStartedLeading: (signal: AbortSignal) => void;
  /** We stopped leading (only called after `onStartedLeading`). */
  onStoppedLeading: (reason: StopReason) => void;
  /** The Lease holder changed (including to ourselves). */
  onNewLeader?: (identity: string) => void;
}

/** Options of {@link LeaderElector}. Durations in milliseconds; defaults are client-go's. */
export interface LeaderElectorOptions {
  api: KubeApi;
  namespace: string;
  /** The Lease name. */
  name: string;
  /** See {@link leaderIdentity}. */
  identity: string;
  callbacks: LeaderCallbacks;
  /** 15 s. Whole seconds on the wire; rounded up. */
  leaseDurationMs?: number;
  /** 10 s. Must be shorter than the lease duration so we stop before anyone may take over. */
  renewDeadlineMs?: number;
  /** 2 s. */
  retryPeriodMs?: number;
  /**
   * Extra random wait on acquire attempts, as a fraction of the retry period (0.2 → 2.0–2.4 s). client-go uses
   * 1.2, which only matters with many candidates and adds up to two periods to the failover time.
   */
  jitterFactor?: number;
  /** Tolerance beyond the renew deadline before {@link LeaderElector.isHealthy} fails. 5 s. */
  healthMarginMs?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

/** Timings after defaults, validated. */
interface Timings {
  leaseDurationSeconds: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  jitterFactor: number;
  healthMarginMs: number;
}

/** Validates the timing relations client-go enforces; throws with the violated rule. */
export function electionTimings(options: Partial<LeaderElectorOptions>): Readonly<Timings> {
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  const jitterFactor = options.jitterFactor ?? 0.2;
  if (!(retryPeriodMs > 0)) throw new Error(`leader election: retryPeriod must be positive, got ${retryPeriodMs}ms`);
  if (!(renewDeadlineMs > retryPeriodMs * (1 + jitterFactor))) {
    throw new Error(
      `leader election: renewDeadline (${renewDeadlineMs}ms) must exceed retryPeriod × (1 + jitter) (${retryPeriodMs * (1 + jitterFactor)}ms)`,
    );
  }
  if (!(leaseDurationMs > renewDeadlineMs)) {
    throw new Error(
      `leader election: leaseDuration (${leaseDurationMs}ms) must exceed renewDeadline (${renewDeadlineMs}ms), or two leaders may overlap`,
    );
  }
  return Object.freeze({
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    renewDeadlineMs,
    retryPeriodMs,
    jitterFactor,
    healthMarginMs: options.healthMarginMs ?? 5_000,
  });
}

type AttemptResult =
  | { ok: true }
  | { ok: false; reason: 'HeldByOther'; holder: string; expiresAt: number }
  | { ok: false; reason: 'Conflict' | 'Failed' | 'Timeout'; message: string };

/**
 * Campaigns for a Lease and keeps it renewed. `run(signal)` resolves when leadership ends (or the signal aborts
 * before we ever lead); an elector runs once. Call {@link release} on shutdown, after draining work.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #api: KubeApi;
  readonly #namespace: string;
  readonly #name: string;
  readonly #callbacks: LeaderCallbacks;
  readonly #timings: Readonly<Timings>;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: Logger | undefined;
  /** Aborted by release(): ends the loops without touching the Lease. */
  readonly #stop = new AbortController();
  #observation: LeaseObservation | undefined;
  #reportedLeader = '';
  #leading = false;
  #lastRenewAt = 0;
  #running: Promise<void> | undefined;
  #stopReason: StopReason | undefined;

  constructor(options: LeaderElectorOptions) {
    this.identity = options.identity;
    this.#api = options.api;
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.#callbacks = options.callbacks;
    this.#timings = electionTimings(options);
    this.#clock = options.clock ?? systemClock();
    this.#random = options.random ?? Math.random;
    this.#log = options.logger?.child({ lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  /** Whether we lead right now. */
  isLeader(): boolean {
    return this.#leading;
  }

  /** The last holder we saw, or `''`. */
  currentLeader(): string {
    return this.#observation?.record.holderIdentity ?? '';
  }

  /**
   * For /healthz: false when we lead but have not renewed for longer than the renew deadline plus a margin,
   * i.e. the renew loop is wedged (the deadline itself would otherwise have ended our leadership).
   */
  isHealthy(): boolean {
    if (!this.#leading) return true;
    return this.#clock.now() - this.#lastRenewAt <= this.#timings.renewDeadlineMs + this.#timings.healthMarginMs;
  }

  /** Campaigns, leads, and resolves when leadership ends. Never rejects. */
  run(signal: AbortSignal): Promise<void> {
    if (this.#running !== undefined) throw new Error('LeaderElector.run may be called only once');
    this.#running = this.#runLoops(signal).catch((err: unknown) => {
      this.#log?.error({ err }, 'leader election loop failed');
    });
    return this.#running;
  }

  /**
   * Stops campaigning/renewing and, if we still hold the Lease, clears its holder so a successor takes over at
   * once. Resolves `true` when the Lease was released by this call.
   */
  async release(): Promise<boolean> {
    this.#stopReason ??= 'released';
    this.#stop.abort();
    await this.#running;
    const observed = this.#observation;
    if (observed === undefined || observed.record.holderIdentity !== this.identity) return false;
    try {
      const lease = await this.#api.get<Lease>(Resources.leases, this.#name, this.#namespace);
      const record = leaseRecordOf(lease);
      if (record.holderIdentity !== this.identity) return false;
      const released = releasedRecord(record, this.#clock.now());
      await this.#api.replace<Lease>(Resources.leases, withRecord(lease, released), { namespace: this.#namespace });
      this.#observation = { record: released, observedAt: this.#clock.now() };
      this.#log?.info('released the Lease');
      return true;
    } catch (err) {
      this.#log?.warn({ err }, 'could not release the Lease; the successor waits for it to expire');
      return false;
    }
  }

  async #runLoops(signal: AbortSignal): Promise<void> {
    const halt = AbortSignal.any([signal, this.#stop.signal]);
    if (!(await this.#acquire(halt))) return;
    const leading = new AbortController();
    this.#leading = true;
    this.#log?.info('started leading');
    this.#safely('onStartedLeading', () => this.#callbacks.onStartedLeading(leading.signal));
    const outcome = await this.#renewUntilLost(halt);
    this.#leading = false;
    leading.abort();
    const reason: StopReason =
      outcome === 'lost' ? 'lost' : signal.aborted ? 'stopped' : (this.#stopReason ?? 'stopped');
    this.#log?.[reason === 'lost' ? 'error' : 'info']({ reason }, 'stopped leading');
    this.#safely('onStoppedLeading', () => this.#callbacks.onStoppedLeading(reason));
  }

  /** Attempts until we hold the Lease (true) or `halt` aborts (false). */
  async #acquire(halt: AbortSignal): Promise<boolean> {
    while (!halt.aborted) {
      const result = await this.#attempt(this.#timings.renewDeadlineMs);
      if (result.ok) return true;
      if (result.reason !== 'HeldByOther') this.#log?.debug({ reason: result.reason }, result.message);
      await sleep(this.#clock, this.#acquireDelay(result), halt);
    }
    return false;
  }

  /** Jittered retry period, cut short when the holder's lease is known to expire sooner. */
  #acquireDelay(result: AttemptResult): number {
    const { retryPeriodMs, jitterFactor } = this.#timings;
    const base = retryPeriodMs * (1 + jitterFactor * this.#random());
    if (result.ok || result.reason !== 'HeldByOther') return base;
    return Math.min(base, Math.max(1, result.expiresAt - this.#clock.now()));
  }

  /** Renews every retry period; returns 'lost' once renewal fails past the deadline, 'halted' on abort. */
  async #renewUntilLost(halt: AbortSignal): Promise<'lost' | 'halted'> {
    const { retryPeriodMs, renewDeadlineMs } = this.#timings;
    for (;;) {
      await sleep(this.#clock, retryPeriodMs, halt);
      // The deadline counts from the start of the last successful write: others count from their first sight of
      // that write, which comes later, so we always stop before anyone may take over.
      const deadline = this.#lastRenewAt + renewDeadlineMs;
      for (;;) {
        if (halt.aborted) return 'halted';
        const remaining = deadline - this.#clock.now();
        if (remaining <= 0) return 'lost';
        const result = await this.#attempt(remaining);
        if (result.ok) break;
        if (result.reason === 'HeldByOther') return 'lost';
        this.#log?.warn({ reason: result.reason }, `renewing the Lease failed: ${result.message}`);
        await sleep(this.#clock, Math.min(retryPeriodMs, Math.max(0, deadline - this.#clock.now())), halt);
      }
    }
  }

  /** One read-decide-write round (client-go's tryAcquireOrRenew), bounded by `timeoutMs`. */
  #attempt(timeoutMs: number): Promise<AttemptResult> {
    const work = this.#attemptOnce().catch((err: unknown): AttemptResult => ({
      ok: false,
      reason: 'Failed',
      message: errorMessage(err),
    }));
    return new Promise<AttemptResult>((resolve) => {
      const timer = this.#clock.setTimer(
        () => resolve({ ok: false, reason: 'Timeout', message: `no answer within ${Math.round(timeoutMs)}ms` }),
        timeoutMs,
      );
      void work.then((r) => {
        timer.cancel();
        resolve(r);
      });
    });
  }

  async #attemptOnce(): Promise<AttemptResult> {
    const now = this.#clock.now();
    let lease: Lease | undefined;
    try {
      lease = await this.#api.get<Lease>(Resources.leases, this.#name, this.#namespace);
      this.#observation = observeLease(this.#observation, lease, now);
      this.#reportLeader(this.#observation.record.holderIdentity);
    } catch (err) {
      if (!isNotFound(err)) return { ok: false, reason: 'Failed', message: `reading the Lease: ${errorMessage(err)}` };
    }
    const decision = decideLease({
      observation: lease === undefined ? undefined : this.#observation,
      identity: this.identity,
      now,
      leaseDurationSeconds: this.#timings.leaseDurationSeconds,
    });
    if (decision.kind === 'wait') {
      return { ok: false, reason: 'HeldByOther', holder: decision.holder, expiresAt: decision.expiresAt };
    }
    // The stop signal may have fired while we were reading: do not (re)write a Lease we are about to release.
    if (this.#stop.signal.aborted) return { ok: false, reason: 'Failed', message: 'stopping' };
    try {
      if (decision.kind === 'create') {
        await this.#api.create<Lease>(Resources.leases, this.#newLease(decision.record), {
          namespace: this.#namespace,
        });
      } else {
        await this.#api.replace<Lease>(
          Resources.leases,
          withRecord(lease ?? this.#newLease(decision.record), decision.record),
          {
            namespace: this.#namespace,
          },
        );
      }
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) {
        return { ok: false, reason: 'Conflict', message: 'another candidate wrote the Lease first' };
      }
      return { ok: false, reason: 'Failed', message: `writing the Lease: ${errorMessage(err)}` };
    }
    if (decision.reason !== 'Renew') this.#log?.info({ reason: decision.reason }, decision.message);
    this.#observation = { record: decision.record, observedAt: now };
    this.#lastRenewAt = now;
    this.#reportLeader(this.identity);
    return { ok: true };
  }

  #newLease(record: LeaseRecord): Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.#name, namespace: this.#namespace },
      spec: { ...record },
    };
  }

  #reportLeader(holder: string): void {
    if (holder === '' || holder === this.#reportedLeader) return;
    this.#reportedLeader = holder;
    this.#safely('onNewLeader', () => this.#callbacks.onNewLeader?.(holder));
  }

  #safely(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log?.error({ err }, `leader election callback ${name} threw`);
    }
  }
}

/** A copy of `lease` carrying `record` (metadata, including resourceVersion, kept for the guarded replace). */
function withRecord(lease: Lease, record: LeaseRecord): Lease {
  return { ...lease, spec: { ...lease.spec, ...record } };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
