/**
 * Prometheus metrics with controller-runtime's names and labels, so existing dashboards and alerts for Go
 * operators work unchanged, plus the DataUpload domain metrics.
 *
 * Each {@link Metrics} owns its own prom-client `Registry` (never the global default one), so two instances —
 * two tests, or two operators in one process — never share or collide on state.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventRecorderHooks, EventType } from './event-recorder.js';
import type { KubeRequestInfo } from './kube-client.js';
import type { WorkQueueMetrics } from './work-queue.js';

/** controller-runtime's reconcile results. */
export const RECONCILE_RESULTS = Object.freeze(['success', 'error', 'requeue', 'requeue_after'] as const);

/** One of {@link RECONCILE_RESULTS}. */
export type ReconcileResult = (typeof RECONCILE_RESULTS)[number];

/** controller-runtime's `controller_runtime_reconcile_time_seconds` buckets. */
export const RECONCILE_TIME_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2,
  2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
]);

/** client-go's workqueue duration buckets: `ExponentialBuckets(10e-9, 10, 12)`, 10 ns to 1000 s. */
export const WORKQUEUE_DURATION_BUCKETS: readonly number[] = Object.freeze(
  Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1))),
);

/** API writes one DataUpload costs up to Prepared or a terminal phase (the "compare before you write" budget). */
export const WRITES_PER_DATAUPLOAD_BUCKETS: readonly number[] = Object.freeze([
  1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50,
]);

/** Accepted → Prepared, in seconds: seconds for a healthy cluster, up to the 30-minute prepare timeout. */
export const PREPARE_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1200, 1800,
]);

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Register Node's `process_*` and `nodejs_*` collectors. Default true. */
  defaultMetrics?: boolean;
  /** Wall time in epoch milliseconds, for the in-flight work gauges. Default `Date.now`. */
  now?: () => number;
}

/** A rest-client request as the metrics see it; matches `HttpKubeClientOptions.onRequest`. */
export type RestRequestObserver = (info: KubeRequestInfo) => void;

const VERB_TO_METHOD: Readonly<Record<string, string>> = Object.freeze({
  get: 'GET',
  list: 'GET',
  watch: 'GET',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  delete: 'DELETE',
});

/** In-flight runs of one queue: start times, matched to their end by duration (the hooks carry no key). */
class InFlight {
  readonly starts: number[] = [];

  start(at: number): void {
    this.starts.push(at);
  }

  /** Removes the start closest to `startedAt`. */
  finish(startedAt: number): void {
    let best = -1;
    let bestGap = Infinity;
    this.starts.forEach((s, i) => {
      const gap = Math.abs(s - startedAt);
      if (gap < bestGap) {
        best = i;
        bestGap = gap;
      }
    });
    if (best >= 0) this.starts.splice(best, 1);
  }
}

/** Every metric of the operator, on one private registry. */
export class Metrics {
  /** The registry `/metrics` serves. */
  readonly registry: Registry;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, InFlight>();

  readonly #reconcileTotal: Counter<'controller' | 'result'>;
  readonly #reconcileErrors: Counter<'controller'>;
  readonly #reconcileTime: Histogram<'controller'>;
  readonly #activeWorkers: Gauge<'controller'>;
  readonly #maxConcurrent: Gauge<'controller'>;
  readonly #queueDepth: Gauge<'name'>;
  readonly #queueAdds: Counter<'name'>;
  readonly #queueLatency: Histogram<'name'>;
  readonly #workDuration: Histogram<'name'>;
  readonly #retries: Counter<'name'>;
  readonly #restRequests: Counter<'code' | 'method' | 'host'>;
  readonly #leader: Gauge<'name'>;
  readonly #phaseTransitions: Counter<'phase'>;
  readonly #apiWrites: Counter<'resource' | 'verb'>;
  readonly #writesPerDataUpload: Histogram;
  readonly #prepareDuration: Histogram;
  readonly #eventsRecorded: Counter<'type' | 'reason'>;

  constructor(options: MetricsOptions = {}) {
    this.registry = new Registry();
    this.#now = options.now ?? Date.now;
    const registers = [this.registry];
    const inFlight = this.#inFlight;
    const now = this.#now;

    this.#reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.#reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: [...RECONCILE_TIME_BUCKETS],
      registers,
    });
    this.#activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#maxConcurrent = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#queueDepth = new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers,
    });
    this.#queueAdds = new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers,
    });
    this.#queueLatency = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: [...WORKQUEUE_DURATION_BUCKETS],
      registers,
    });
    this.#workDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: [...WORKQUEUE_DURATION_BUCKETS],
      registers,
    });
    this.#retries = new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers,
    });
    new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: 'How many seconds of work has been done that is in progress and has not been observed by work_duration',
      labelNames: ['name'],
      registers,
      collect() {
        const t = now();
        for (const [name, flight] of inFlight) {
          this.set({ name }, flight.starts.reduce((sum, s) => sum + (t - s), 0) / 1000);
        }
      },
    });
    new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running',
      labelNames: ['name'],
      registers,
      collect() {
        const t = now();
        for (const [name, flight] of inFlight) {
          this.set({ name }, flight.starts.length === 0 ? 0 : (t - Math.min(...flight.starts)) / 1000);
        }
      },
    });
    this.#restRequests = new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host',
      labelNames: ['code', 'method', 'host'],
      registers,
    });
    this.#leader = new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers,
    });
    this.#phaseTransitions = new Counter({
      name: 'dataupload_phase_transitions_total',
      help: 'DataUpload phase transitions written by this operator, by target phase',
      labelNames: ['phase'],
      registers,
    });
    this.#apiWrites = new Counter({
      name: 'dataupload_api_writes_total',
      help: 'Kubernetes API writes issued by the DataUpload controller, by resource and verb',
      labelNames: ['resource', 'verb'],
      registers,
    });
    this.#writesPerDataUpload = new Histogram({
      name: 'dataupload_api_writes_per_dataupload',
      help: 'API writes spent on one DataUpload until it reached Prepared or a terminal phase',
      buckets: [...WRITES_PER_DATAUPLOAD_BUCKETS],
      registers,
    });
    this.#prepareDuration = new Histogram({
      name: 'dataupload_prepare_duration_seconds',
      help: 'Seconds from Accepted to Prepared',
      buckets: [...PREPARE_DURATION_BUCKETS],
      registers,
    });
    this.#eventsRecorded = new Counter({
      name: 'dataupload_events_recorded_total',
      help: 'Kubernetes Events recorded (occurrences, before series deduplication), by type and reason',
      labelNames: ['type', 'reason'],
      registers,
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The `Content-Type` of {@link render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Declares a controller: sets its worker limit and zeroes its counters for every result, as controller-runtime
   * does, so `rate()` and alerts work from the first scrape.
   */
  registerController(controller: string, maxConcurrentReconciles: number): void {
    this.#maxConcurrent.set({ controller }, maxConcurrentReconciles);
    this.#activeWorkers.set({ controller }, 0);
    for (const result of RECONCILE_RESULTS) this.#reconcileTotal.inc({ controller, result }, 0);
    this.#reconcileErrors.inc({ controller }, 0);
  }

  /** Counts one reconcile and its duration; `error` also counts toward the errors total. */
  observeReconcile(controller: string, result: ReconcileResult, seconds: number): void {
    this.#reconcileTotal.inc({ controller, result });
    if (result === 'error') this.#reconcileErrors.inc({ controller });
    this.#reconcileTime.observe({ controller }, seconds);
  }

  /** Moves the busy-worker gauge by +1 (a reconcile starts) or -1 (it ends). */
  addActiveWorkers(controller: string, delta: 1 | -1): void {
    this.#activeWorkers.inc({ controller }, delta);
  }

  /** Hooks for `new WorkQueue({ metrics })`, feeding the `workqueue_*` metrics labelled `name`. */
  workQueueMetrics(name: string): Required<WorkQueueMetrics> {
    const flight = new InFlight();
    this.#inFlight.set(name, flight);
    this.#queueDepth.set({ name }, 0);
    this.#queueAdds.inc({ name }, 0);
    this.#retries.inc({ name }, 0);
    return {
      onAdd: () => this.#queueAdds.inc({ name }),
      onDepth: (depth) => this.#queueDepth.set({ name }, depth),
      onQueueLatency: (seconds) => {
        // A key is handed to a worker right after its queue latency is measured: its run starts now.
        flight.start(this.#now());
        this.#queueLatency.observe({ name }, seconds);
      },
      onWorkDuration: (seconds) => {
        flight.finish(this.#now() - seconds * 1000);
        this.#workDuration.observe({ name }, seconds);
      },
      onRetry: () => this.#retries.inc({ name }),
    };
  }

  /** An `onRequest` observer for `HttpKubeClient`, feeding `rest_client_requests_total`. */
  restClientObserver(host: string): RestRequestObserver {
    return (info) => {
      const method = VERB_TO_METHOD[info.verb] ?? info.verb.toUpperCase();
      this.#restRequests.inc({ code: info.code === 0 ? '<error>' : String(info.code), method, host });
    };
  }

  /** Sets `leader_election_master_status` for the Lease `name`. */
  setLeaderStatus(name: string, leading: boolean): void {
    this.#leader.set({ name }, leading ? 1 : 0);
  }

  /** Counts a DataUpload phase transition written by the controller. */
  phaseTransition(phase: string): void {
    this.#phaseTransitions.inc({ phase });
  }

  /** Counts one API write issued by the controller (`resource` plural, `verb` Kubernetes verb). */
  apiWrite(resource: string, verb: string): void {
    this.#apiWrites.inc({ resource, verb });
  }

  /** Observes the writes one DataUpload cost, when it reaches Prepared or a terminal phase. */
  observeWritesPerDataUpload(writes: number): void {
    this.#writesPerDataUpload.observe(writes);
  }

  /** Observes Accepted → Prepared. */
  observePrepareDuration(seconds: number): void {
    this.#prepareDuration.observe(seconds);
  }

  /** Counts one recorded Event occurrence. */
  eventRecorded(type: EventType, reason: string): void {
    this.#eventsRecorded.inc({ type, reason });
  }

  /** Hooks for `new EventRecorder({ hooks })`: occurrences and the recorder's own API writes. */
  eventRecorderHooks(): EventRecorderHooks {
    return {
      recorded: (type, reason) => this.eventRecorded(type, reason),
      apiWrite: (verb) => this.apiWrite('events', verb),
    };
  }
}
