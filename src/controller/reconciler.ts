/**
 * The DataUpload reconciler: for one key, observe → plan → execute, again and again until the plan says to wait
 * or that nothing is left to do. Each step is one API call, never a wait, so a worker is never blocked; waits
 * become requeues at the time the plan computed.
 */
import { randomUUID } from 'node:crypto';
import { isTerminal, Phase, phaseOf } from '../api/dataupload.js';
import type { DataUpload } from '../api/dataupload.js';
import { LABEL_EXPOSE_ON_GOING } from '../api/names.js';
import { Resources } from '../runtime/kube-api.js';
import type { ResourceRef } from '../runtime/kube-api.js';
import { isRefusedAction, refusalOf, StaleCopyError } from './errors.js';
import { StaleDataUploadError } from './executor.js';
import type { Executor } from './executor.js';
import type { Observer } from './observe.js';
import { CLEANUP_GRACE_MS, EXPOSE_WINDOW_FULL, plan, tombstoneOf } from './plan.js';
import type { Action, Decision, PlanContext, Refusal } from './types.js';

/** The controller's name in logs and metrics. */
export const CONTROLLER_NAME = 'dataupload';

/** How a reconcile pass ended, in controller-runtime's terms. */
export type ReconcileOutcome = 'success' | 'requeue' | 'requeue_after';

/** At most this many actions in one reconcile; the rest continues in the next one. */
const MAX_STEPS = 25;

/** The slice of a pino logger the reconciler uses. */
export interface ReconcileLogger {
  child(bindings: Record<string, unknown>): ReconcileLogger;
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  /** pino's; without it, every level counts as enabled. */
  isLevelEnabled?(level: string): boolean;
}

/**
 * The logger of one reconcile pass, with its keys and a fresh `reconcileID`, made on the pass's first line that is
 * logged at all. Most passes log nothing at `info` (a wait is a debug line), and making a pino child for each was
 * about 2% of the operator's CPU in a burst of 1,000 DataUploads.
 */
export class PassLogger implements ReconcileLogger {
  #logger: ReconcileLogger | undefined;

  constructor(
    private readonly parent: ReconcileLogger,
    private readonly keys: { namespace: string; name: string },
  ) {}

  child(bindings: Record<string, unknown>): ReconcileLogger {
    return this.#made().child(bindings);
  }

  debug(obj: Record<string, unknown>, msg: string): void {
    if (this.parent.isLevelEnabled?.('debug') !== false) this.#made().debug(obj, msg);
  }

  info(obj: Record<string, unknown>, msg: string): void {
    if (this.parent.isLevelEnabled?.('info') !== false) this.#made().info(obj, msg);
  }

  warn(obj: Record<string, unknown>, msg: string): void {
    if (this.parent.isLevelEnabled?.('warn') !== false) this.#made().warn(obj, msg);
  }

  #made(): ReconcileLogger {
    this.#logger ??= this.parent.child({ controller: CONTROLLER_NAME, ...this.keys, reconcileID: randomUUID() });
    return this.#logger;
  }
}

/** Domain metrics hooks; every one is optional. */
export interface ReconcileMetrics {
  onTransition?(phase: Phase): void;
  onWrite?(resource: ResourceRef, verb: string): void;
  /** Writes spent on one DataUpload from New until Prepared or a terminal phase. */
  onWritesPerDataUpload?(writes: number, outcome: Phase): void;
  /** Milliseconds from acceptance to Prepared. */
  onPrepared?(ms: number): void;
}

/** What the reconciler needs. */
export interface ReconcilerDeps {
  observer: Observer;
  executor: Executor;
  /** Schedules a key again; the work queue. */
  requeue: { addAfter(key: string, ms: number): void };
  context: Omit<PlanContext, 'now'>;
  now: () => number;
  logger: ReconcileLogger;
  metrics?: ReconcileMetrics;
  /** Called when a New DataUpload waits for a slot of the expose window, so it can be woken when one frees. */
  onExposeWindowFull?: (key: string) => void;
  /** Reads what a DataUpload refers to that the caches left out so far; before its first plan. */
  loadReferences?: (du: DataUpload) => Promise<void>;
}

/** Reconciles DataUploads by `namespace/name` key. */
export class DataUploadReconciler {
  /** Accepts in flight, so concurrent workers respect the prepare queue length. */
  private readonly pendingAccepts = new Set<string>();
  /** API writes per DataUpload uid, reported once it is Prepared or terminal. */
  private readonly writes = new Map<string, number>();
  /** DataUploads whose writes were already reported. */
  private readonly reported = new Set<string>();
  /**
   * DataUploads deleted while New, before any controller held them with a finalizer, by key: what exposing would
   * have re-homed (the source snapshot) is still theirs to clean up. Kept until that is done.
   */
  private readonly tombstones = new Map<string, DataUpload>();

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Counts the one API write an action costs, per DataUpload and per resource and verb. */
  private countWrite(du: DataUpload, action: Action): void {
    const uid = du.metadata.uid ?? '';
    this.writes.set(uid, (this.writes.get(uid) ?? 0) + 1);
    const resource = 'resource' in action ? action.resource : Resources.dataUploads;
    const verb = action.type === 'create' || action.type === 'delete' ? action.type : 'patch';
    this.deps.metrics?.onWrite?.(resource, verb);
  }

  /**
   * Called for every DataUpload that disappeared from the cache. One that vanished while New (deleted before a
   * finalizer held it) is remembered as Canceled, so the next reconcile of its key runs the terminal cleanup.
   */
  noteDeleted(du: DataUpload, now: number): void {
    // Standbys see deletions too but run no workers: never keep a tombstone past the cleanup grace.
    for (const [key, old] of this.tombstones) {
      if (now - Date.parse(old.status?.completionTimestamp ?? '') > CLEANUP_GRACE_MS) this.tombstones.delete(key);
    }
    const tombstone = tombstoneOf(du, now);
    if (tombstone) this.tombstones.set(`${du.metadata.namespace}/${du.metadata.name}`, tombstone);
  }

  /** DataUploads deleted before a finalizer held them whose cleanup is still due (their sources stay cached). */
  tombstoned(): Iterable<DataUpload> {
    return this.tombstones.values();
  }

  /** Writes counted so far for a DataUpload (tests and the benchmark read this). */
  writesFor(uid: string): number {
    return this.writes.get(uid) ?? 0;
  }

  /**
   * The work-queue handler. Resolves with how the pass ended (for `controller_runtime_reconcile_total`); rejects
   * only for errors that deserve a backoff.
   */
  async reconcile(key: string): Promise<ReconcileOutcome> {
    const [namespace, name] = splitKey(key);
    const log = new PassLogger(this.deps.logger, { namespace, name });
    // Writes refused for good in this pass; plan() fails the DataUpload on one, or skips it during cleanup.
    const refused: Refusal[] = [];
    for (let step = 0; step < MAX_STEPS; step++) {
      const du = this.deps.observer.dataUpload(namespace, name) ?? this.tombstones.get(key);
      if (!du) {
        this.pendingAccepts.delete(key);
        return 'success';
      }
      this.prunePendingAccept(key, du);
      if (step === 0) await this.deps.loadReferences?.(du);
      const observed = this.deps.observer.observe(du, this.pendingAccepts, refused);
      const decision = plan(observed, { ...this.deps.context, now: this.deps.now() });
      if (decision.kind !== 'act') {
        this.settle(key, du, decision, log);
        return decision.kind === 'wait' && decision.requeueAfterMs !== undefined ? 'requeue_after' : 'success';
      }
      log.debug({ phase: phaseOf(du), reason: decision.reason }, decision.message);
      const accepting = decision.action.type === 'patchDataUpload' && decision.action.phase === Phase.Accepted;
      if (accepting) this.pendingAccepts.add(key);
      this.countWrite(du, decision.action);
      try {
        await this.deps.executor.execute(observed, decision.action);
      } catch (err) {
        if (accepting) this.pendingAccepts.delete(key);
        if (err instanceof StaleDataUploadError || err instanceof StaleCopyError) {
          log.debug({ phase: phaseOf(du) }, err.message);
          continue;
        }
        const refusal = refusalOf(decision.action, err);
        if (refusal && !refused.some((r) => isRefusedAction(r, decision.action))) {
          log.warn({ phase: phaseOf(du), reason: decision.reason, err: errorText(err) }, `${decision.message} refused`);
          refused.push(refusal);
          continue;
        }
        log.warn({ phase: phaseOf(du), reason: decision.reason, err: errorText(err) }, `${decision.message} failed`);
        throw err;
      }
      this.afterAction(du, decision, log);
    }
    this.deps.requeue.addAfter(key, 0);
    return 'requeue';
  }

  private afterAction(du: DataUpload, decision: Extract<Decision, { kind: 'act' }>, log: ReconcileLogger): void {
    const action = decision.action;
    const phase =
      action.type === 'finish' ? action.phase : action.type === 'patchDataUpload' ? action.phase : undefined;
    if (!phase) return;
    this.deps.metrics?.onTransition?.(phase);
    if (phase === Phase.Prepared) {
      const accepted = Date.parse(du.status?.acceptedTimestamp ?? '');
      if (!Number.isNaN(accepted)) this.deps.metrics?.onPrepared?.(this.deps.now() - accepted);
    }
    const writes =
      phase === Phase.Prepared || phase === Phase.Failed || phase === Phase.Canceled
        ? this.report(du, phase)
        : undefined;
    // One line per transition; the one that ends the expose also says how many writes it took.
    if (writes === undefined) log.info({ phase, reason: decision.reason }, decision.message);
    else {
      log.info(
        { phase, reason: decision.reason, writes },
        `${decision.message} (${writes} API writes from New to ${phase})`,
      );
    }
  }

  private settle(
    key: string,
    du: DataUpload,
    decision: Exclude<Decision, { kind: 'act' }>,
    log: ReconcileLogger,
  ): void {
    log.debug({ phase: phaseOf(du), reason: decision.reason }, decision.message);
    if (decision.kind === 'wait' && decision.requeueAfterMs !== undefined) {
      this.deps.requeue.addAfter(key, decision.requeueAfterMs);
    }
    if (decision.kind === 'wait' && decision.reason === EXPOSE_WINDOW_FULL) this.deps.onExposeWindowFull?.(key);
    if (decision.kind === 'done' && isTerminal(du)) {
      const uid = du.metadata.uid ?? '';
      this.writes.delete(uid);
      this.reported.delete(uid);
      if (this.tombstones.get(key) === du) this.tombstones.delete(key);
    }
  }

  /** Counts the writes of a DataUpload that reached `outcome` once; returns them the first time only. */
  private report(du: DataUpload, outcome: Phase): number | undefined {
    const uid = du.metadata.uid ?? '';
    if (this.reported.has(uid)) return undefined;
    this.reported.add(uid);
    const writes = this.writes.get(uid) ?? 0;
    this.deps.metrics?.onWritesPerDataUpload?.(writes, outcome);
    return writes;
  }

  /** Once the cache shows the acceptance (or the DataUpload moved on), the reservation is no longer needed. */
  private prunePendingAccept(key: string, du: DataUpload): void {
    if (!this.pendingAccepts.has(key)) return;
    if (du.metadata.labels?.[LABEL_EXPOSE_ON_GOING] === 'true' || phaseOf(du) !== Phase.New)
      this.pendingAccepts.delete(key);
  }
}

/** `namespace/name` → [namespace, name]. */
export function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return slash < 0 ? ['', key] : [key.slice(0, slash), key.slice(slash + 1)];
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
