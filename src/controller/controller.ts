/**
 * The DataUpload controller: watch caches → keys → work queue → reconciler. Cache handlers only compute keys
 * (they never write), and a periodic resync re-enqueues every DataUpload that still needs attention, so no
 * decision depends on seeing one particular watch event.
 */
import { isTerminal, Phase, phaseOf } from '../api/dataupload.js';
import type { DataUpload } from '../api/dataupload.js';
import type {
  KubeObject,
  Node,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/kube.js';
import {
  DATAUPLOAD_FINALIZER,
  EXPOSER_POD_GROUP_SNAPSHOT,
  LABEL_BACKUP_PVC_SECRET,
  LABEL_EXPOSER_POD_GROUP,
} from '../api/names.js';
import { copyUsers, withoutContent } from '../exposer/copies.js';
import type { CopyKind } from '../exposer/copies.js';
import { isNotFound, KubeApiError, Resources } from '../runtime/kube-api.js';
import type { KubeApi, ResourceRef } from '../runtime/kube-api.js';
import type { Logger } from '../runtime/logger.js';
import type { Metrics } from '../runtime/metrics.js';
import { WatchCache } from '../runtime/watch-cache.js';
import type { Indexer } from '../runtime/watch-cache.js';
import { WorkQueue } from '../runtime/work-queue.js';
import { Executor } from './executor.js';
import { CoalescingEventSink } from './lifecycle-events.js';
import {
  contentIndexers,
  copyIndexers,
  dataUploadIndexers,
  Index,
  nodeIndexers,
  sourceKey,
  volumeIndexers,
} from './indexes.js';
import type { EventSink } from './executor.js';
import { EXPOSE_WINDOW_POD_MS, Observer } from './observe.js';
import type { Stores } from './observe.js';
import { WriteOverlay } from './overlay.js';
import { cacheTransforms, relevance } from './slim.js';
import type { References } from './slim.js';
import { CONTROLLER_NAME, DataUploadReconciler, splitKey } from './reconciler.js';
import type { PlanContext } from './types.js';

/** What the controller needs. */
export interface ControllerOptions {
  api: KubeApi;
  /** Velero's namespace: only DataUploads here are reconciled (Velero does the same). */
  namespace: string;
  context: Omit<PlanContext, 'now'>;
  events: EventSink;
  workers: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Every DataUpload that is not finished is re-enqueued this often; default 60 s (Velero's monitor period). */
  resyncMs?: number;
  /** Watch timeout of the caches; default 300 s. */
  watchTimeoutSeconds?: number;
}

type Caches = {
  [K in keyof Stores]: WatchCache<
    NonNullable<Stores[K]> extends { get(n: string): infer T | undefined } ? Extract<T, KubeObject> : never
  >;
};

/** Whether the controller needs a cache of copies of this kind. */
function wantsCopies(context: Omit<PlanContext, 'now'>, kind: CopyKind): boolean {
  if (context.copyProblems?.[kind]) return false;
  const field = kind === 'Secret' ? 'secretNames' : 'configMapNames';
  return Object.values(context.config.backupPVC ?? {}).some((entry) => (entry[field]?.length ?? 0) > 0);
}

/** Copies in the DataUploads' namespace, found by Velero's copy label; their content is never kept. */
function copyCacheOptions(namespace: string) {
  return {
    namespace,
    labelSelector: LABEL_BACKUP_PVC_SECRET,
    indexers: copyIndexers,
    transform: (o: KubeObject) => withoutContent(o),
  };
}

/**
 * List page size of the cluster-wide caches whose transform drops most of what they list (PVCs, PVs, snapshots,
 * contents): four of them list in parallel at start, and a smaller page is garbage sooner. In a cluster with 10,000
 * unrelated PVCs and snapshots that is 400 list requests at start instead of 80.
 */
const SLIM_PAGE_SIZE = 100;

/** Owns the caches and the queue; `startCaches` may run on standbys, `runWorkers` only on the leader. */
export class DataUploadController {
  readonly caches: Caches;
  readonly queue: WorkQueue;
  readonly reconciler: DataUploadReconciler;
  readonly overlay: WriteOverlay;
  private readonly lifecycleEvents: CoalescingEventSink;
  /** Whether a cached object is still needed by some DataUpload, per cluster-wide cache (pruned at resync). */
  private readonly relevant: ReturnType<typeof relevance>;
  /** DataUploads whose references were read once (by uid). */
  private readonly referencesLoaded = new Set<string>();
  /** New DataUploads waiting for a slot of --max-concurrent-exposes, in the order they started waiting. */
  private readonly windowWaiters = new Set<string>();
  private readonly options: ControllerOptions;
  private readonly now: () => number;

  constructor(options: ControllerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    const ns = options.namespace;
    // Cluster-wide caches keep only what a DataUpload (or a tombstone) refers to: see slim.ts.
    const referenced = (index: string, namespace: string | undefined, name: string | undefined): boolean => {
      const key = sourceKey(namespace, name);
      if (this.caches.dataUploads.countByIndex(index, key) > 0) return true;
      for (const t of this.reconciler.tombstoned()) {
        const pick = index === Index.sourcePvc ? t.spec.sourcePVC : t.spec.csiSnapshot?.volumeSnapshot;
        if (sourceKey(t.spec.sourceNamespace, pick) === key) return true;
      }
      return false;
    };
    const refs: References = {
      isSourcePvc: (namespace, name) => referenced(Index.sourcePvc, namespace, name),
      isSourceSnapshot: (namespace, name) => referenced(Index.sourceSnapshot, namespace, name),
    };
    this.relevant = relevance(ns, refs);
    const slim = cacheTransforms(ns, refs);
    // Resources refs are frozen singletons, so the ref itself is the key.
    const byResource = new Map<ResourceRef, WatchCache<KubeObject>>();
    const cache = <T extends KubeObject>(
      resource: ResourceRef,
      extra: {
        namespace?: string;
        labelSelector?: string;
        indexers?: Record<string, Indexer<T>>;
        transform?: (o: KubeObject) => KubeObject | undefined;
        pageSize?: number;
      } = {},
    ): WatchCache<T> => {
      const c = new WatchCache<T>({
        api: options.api,
        resource,
        logger: options.logger.child({ cache: resource.resource }),
        watchTimeoutSeconds: options.watchTimeoutSeconds,
        ...extra,
        indexers: extra.indexers as Record<string, Indexer<KubeObject>> | undefined,
      });
      byResource.set(resource, c as unknown as WatchCache<KubeObject>);
      return c;
    };
    this.caches = {
      dataUploads: cache<DataUpload>(Resources.dataUploads, { namespace: ns, indexers: dataUploadIndexers }),
      pods: cache<Pod>(Resources.pods, {
        namespace: ns,
        labelSelector: `${LABEL_EXPOSER_POD_GROUP}=${EXPOSER_POD_GROUP_SNAPSHOT}`,
        transform: slim.pods,
      }),
      persistentVolumeClaims: cache<PersistentVolumeClaim>(Resources.persistentVolumeClaims, {
        transform: slim.persistentVolumeClaims,
        pageSize: SLIM_PAGE_SIZE,
      }),
      persistentVolumes: cache<PersistentVolume>(Resources.persistentVolumes, {
        indexers: volumeIndexers,
        transform: slim.persistentVolumes,
        pageSize: SLIM_PAGE_SIZE,
      }),
      volumeSnapshots: cache<VolumeSnapshot>(Resources.volumeSnapshots, {
        transform: slim.volumeSnapshots,
        pageSize: SLIM_PAGE_SIZE,
      }),
      volumeSnapshotContents: cache<VolumeSnapshotContent>(Resources.volumeSnapshotContents, {
        indexers: contentIndexers,
        transform: slim.volumeSnapshotContents,
        pageSize: SLIM_PAGE_SIZE,
      }),
      nodes: cache<Node>(Resources.nodes, { indexers: nodeIndexers, transform: slim.nodes }),
      storageClasses: cache<StorageClass>(Resources.storageClasses),
      // Copies exist only when the config asks for them and the opt-in permissions were found at boot.
      ...(wantsCopies(options.context, 'Secret')
        ? { secretCopies: cache<KubeObject>(Resources.secrets, copyCacheOptions(ns)) }
        : {}),
      ...(wantsCopies(options.context, 'ConfigMap')
        ? { configMapCopies: cache<KubeObject>(Resources.configMaps, copyCacheOptions(ns)) }
        : {}),
    };
    this.overlay = new WriteOverlay({
      now: this.now,
      cachedVersion: (resource, namespace, name) =>
        byResource.get(resource)?.get(name, resource.namespaced ? namespace : undefined)?.metadata.resourceVersion,
    });
    this.queue = new WorkQueue({
      name: CONTROLLER_NAME,
      logger: options.logger,
      metrics: options.metrics?.workQueueMetrics(CONTROLLER_NAME),
      // Finish DataUploads, not steps: a DataUpload already being exposed (or cleaned up) goes before New ones, so
      // in a burst the first ones reach Prepared early and the data mover can start, instead of every DataUpload
      // advancing one step per round. New ones still run whenever exposing waits on the cluster.
      priorityOf: (key) => this.priorityOf(key),
    });
    const metrics = options.metrics;
    this.lifecycleEvents = new CoalescingEventSink(options.events, {
      now: this.now,
      // Busy: keys queued or running, New ones waiting for a slot, or any DataUpload being exposed (between two
      // steps the queue is often empty while the cluster works; an Event write then would still slow the burst).
      busy: () =>
        this.queue.len() > 0 ||
        this.queue.processingCount() > 0 ||
        this.windowWaiters.size > 0 ||
        this.caches.dataUploads.countByIndex(Index.phase, Phase.Accepted) > 0,
    });
    const executor = new Executor({
      api: options.api,
      overlay: this.overlay,
      events: this.lifecycleEvents,
      now: this.now,
      onDiagnosed: (du, report) =>
        options.logger.warn(
          {
            controller: CONTROLLER_NAME,
            namespace: du.metadata.namespace,
            name: du.metadata.name,
            report: report.lines,
          },
          `expose diagnostics: ${report.cause}`,
        ),
    });
    this.reconciler = new DataUploadReconciler({
      observer: new Observer(this.caches, this.overlay, {
        countExposeOnGoing: (options.context.config.loadConcurrency?.prepareQueueLength ?? 0) > 0,
        countExposing: options.context.maxConcurrentExposes ?? 0,
        now: this.now,
      }),
      onExposeWindowFull: (key) => this.windowWaiters.add(key),
      loadReferences: (du) => this.loadReferences(du),
      executor,
      requeue: this.queue,
      context: options.context,
      now: this.now,
      logger: options.logger,
      metrics: metrics && {
        onTransition: (phase) => metrics.phaseTransition(phase),
        onWrite: (resource, verb) => metrics.apiWrite(resource.resource, verb),
        onWritesPerDataUpload: (writes) => metrics.observeWritesPerDataUpload(writes),
        onPrepared: (ms) => metrics.observePrepareDuration(ms / 1000),
      },
    });
    this.routeEvents();
  }

  /** Starts every cache; resolves once all have listed. */
  async startCaches(signal: AbortSignal): Promise<void> {
    // DataUploads first: the other caches keep what they refer to, so they must know them before they list.
    void this.caches.dataUploads.start(signal);
    await this.caches.dataUploads.synced;
    const first = this.caches.dataUploads as unknown as WatchCache<KubeObject>;
    const rest = (Object.values(this.caches) as WatchCache<KubeObject>[]).filter((c) => c !== first);
    for (const c of rest) void c.start(signal);
    await Promise.all(rest.map((c) => c.synced));
  }

  /**
   * Reads, once per DataUpload, what it refers to that the caches left out because it arrived before the
   * DataUpload did: its source PVC and snapshot, the snapshot's content, and (for a WaitForFirstConsumer class,
   * whose topology the backupPod follows) the PVC's volume. Velero reads these live on every expose. A missing
   * object is left to plan() to report.
   */
  private async loadReferences(du: DataUpload): Promise<void> {
    const uid = du.metadata.uid ?? `${du.metadata.namespace}/${du.metadata.name}`;
    if (this.referencesLoaded.has(uid)) return;
    const c = this.caches;
    const api = this.options.api;
    const load = async <T extends KubeObject>(
      cache: WatchCache<T>,
      resource: ResourceRef,
      name: string | undefined,
      namespace?: string,
    ): Promise<void> => {
      if (!name || cache.get(name, resource.namespaced ? namespace : undefined)) return;
      // Not older than what the watch has shown: the API server answers from its watch cache, not with a quorum
      // read of etcd (in a burst of a thousand DataUploads, three thousand of those slowed etcd and everyone else).
      // If its cache lags too far (504), the plain read.
      const resourceVersion = cache.resourceVersion();
      try {
        try {
          cache.upsert(await api.get<T>(resource, name, namespace, { resourceVersion }));
        } catch (err) {
          if (!(err instanceof KubeApiError && err.code === 504 && resourceVersion)) throw err;
          cache.upsert(await api.get<T>(resource, name, namespace));
        }
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    };
    const ns = du.spec.sourceNamespace;
    const snapshot = du.spec.csiSnapshot?.volumeSnapshot;
    await Promise.all([
      load(c.persistentVolumeClaims, Resources.persistentVolumeClaims, du.spec.sourcePVC, ns),
      load(c.volumeSnapshots, Resources.volumeSnapshots, snapshot, ns),
    ]);
    const bound = snapshot ? c.volumeSnapshots.get(snapshot, ns)?.status?.boundVolumeSnapshotContentName : undefined;
    const storageClass = c.storageClasses.get(du.spec.csiSnapshot?.storageClass ?? '');
    const volume =
      storageClass?.volumeBindingMode === 'WaitForFirstConsumer'
        ? c.persistentVolumeClaims.get(du.spec.sourcePVC, ns)?.spec?.volumeName
        : undefined;
    await Promise.all([
      load(c.volumeSnapshotContents, Resources.volumeSnapshotContents, bound),
      load(c.persistentVolumes, Resources.persistentVolumes, volume),
    ]);
    this.referencesLoaded.add(uid);
  }

  /** True once every cache has listed. */
  hasSynced(): boolean {
    return (Object.values(this.caches) as WatchCache<KubeObject>[]).every((c) => c.hasSynced());
  }

  /** Stops the caches' watches. */
  stopCaches(): void {
    for (const c of Object.values(this.caches) as WatchCache<KubeObject>[]) c.stop();
  }

  /**
   * Runs the workers until `signal` aborts (leadership lost or shutdown). Enqueues every DataUpload first, so a
   * new leader picks up where the old one stopped, whatever events it missed.
   */
  async runWorkers(signal: AbortSignal): Promise<void> {
    const metrics = this.options.metrics;
    metrics?.registerController(CONTROLLER_NAME, this.options.workers);
    this.resync();
    const timer = setInterval(() => this.resync(), this.options.resyncMs ?? 60_000);
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    // The workers keep running until drain() shuts the queue down; this method returns when leading ends.
    const workers = this.queue.run({
      workers: this.options.workers,
      handler: async (key) => {
        const started = performance.now();
        metrics?.addActiveWorkers(CONTROLLER_NAME, 1);
        try {
          const outcome = await this.reconciler.reconcile(key);
          metrics?.observeReconcile(CONTROLLER_NAME, outcome, (performance.now() - started) / 1000);
        } catch (err) {
          metrics?.observeReconcile(CONTROLLER_NAME, 'error', (performance.now() - started) / 1000);
          throw err;
        } finally {
          metrics?.addActiveWorkers(CONTROLLER_NAME, -1);
        }
      },
    });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    clearInterval(timer);
    workers.catch((err: unknown) => this.options.logger.error({ err }, 'work queue stopped with an error'));
  }

  /** Stops taking keys and waits for in-flight reconciles. Resolves true when everything finished in time. */
  async drain(deadlineMs: number): Promise<boolean> {
    const drained = await this.queue.shutDownWithDrain(deadlineMs);
    this.lifecycleEvents.releaseAll();
    return drained;
  }

  /** Gives the longest-waiting New DataUpload its chance at a freed slot of the expose window. */
  private wakeWindowWaiter(): void {
    const next = this.windowWaiters.values().next();
    if (next.done === true) return;
    this.windowWaiters.delete(next.value);
    this.queue.add(next.value);
  }

  /** The work-queue lane of a key: 1 once a DataUpload is past New, 0 for a New one. */
  private priorityOf(key: string): number {
    const [namespace, name] = splitKey(key);
    const du = this.overlay.read(Resources.dataUploads, namespace, name, this.caches.dataUploads.get(name, namespace));
    return du && phaseOf(du) !== Phase.New ? 1 : 0;
  }

  /** Enqueues every DataUpload that is not finished or still holds our finalizer. */
  resync(): void {
    for (const du of this.caches.dataUploads.list()) {
      if (!isTerminal(du) || du.metadata.finalizers?.includes(DATAUPLOAD_FINALIZER))
        this.enqueue(du.metadata.namespace, du.metadata.name);
    }
    // What no DataUpload refers to any more (its DataUpload ended and was deleted) leaves the caches.
    const c = this.caches;
    c.persistentVolumeClaims.prune(this.relevant.persistentVolumeClaims);
    c.persistentVolumes.prune(this.relevant.persistentVolumes);
    c.volumeSnapshots.prune(this.relevant.volumeSnapshots);
    c.volumeSnapshotContents.prune(this.relevant.volumeSnapshotContents);
    const live = new Set(c.dataUploads.list().map((du) => du.metadata.uid));
    for (const uid of this.referencesLoaded) if (!live.has(uid)) this.referencesLoaded.delete(uid);
  }

  private enqueue(namespace: string | undefined, name: string | undefined): void {
    if (namespace === this.options.namespace && name) this.queue.add(`${namespace}/${name}`);
  }

  /** Maps every cache event to the DataUploads it concerns. Handlers only enqueue. */
  private routeEvents(): void {
    const ns = this.options.namespace;
    const observe = <T extends KubeObject>(resource: ResourceRef, cache: WatchCache<T>, route: (obj: T) => void) =>
      cache.onEvent((e) => {
        this.overlay.observe(resource, e.type, e.object);
        route(e.object);
      });
    const own = (obj: KubeObject) => {
      if (obj.metadata.namespace === ns && this.caches.dataUploads.get(obj.metadata.name!, ns)) {
        this.enqueue(ns, obj.metadata.name);
      }
    };
    // DataUploads whose source PVC or snapshot this is: an index lookup, not a scan of every DataUpload.
    const bySource = (index: string, namespace: string | undefined, name: string | undefined) => {
      for (const du of this.caches.dataUploads.byIndex(index, sourceKey(namespace, name)))
        this.enqueue(du.metadata.namespace, du.metadata.name);
    };
    const c = this.caches;
    c.dataUploads.onEvent((e) => {
      if (e.type === 'deleted') this.reconciler.noteDeleted(e.object, this.now());
      // Only a New DataUpload waits for a slot; one accepted by any path (or gone) waits no more.
      if (e.type === 'deleted' || phaseOf(e.object) !== Phase.New) {
        this.windowWaiters.delete(`${e.object.metadata.namespace}/${e.object.metadata.name}`);
      }
      // A DataUpload leaving Accepted (Prepared, ended, deleted) frees a slot of the expose window.
      const wasExposing = phaseOf(e.old ?? e.object) === Phase.Accepted;
      if (wasExposing && (e.type === 'deleted' || phaseOf(e.object) !== Phase.Accepted)) this.wakeWindowWaiter();
    });
    observe(Resources.dataUploads, c.dataUploads, (du) => this.enqueue(du.metadata.namespace, du.metadata.name));
    observe(Resources.pods, c.pods, own);
    c.pods.onEvent((e) => {
      // A backupPod's DataUpload stops holding a slot of the window once the pod is EXPOSE_WINDOW_POD_MS old.
      if (e.type !== 'added' || this.windowWaiters.size === 0) return;
      setTimeout(() => this.wakeWindowWaiter(), EXPOSE_WINDOW_POD_MS).unref();
    });
    observe(Resources.persistentVolumeClaims, c.persistentVolumeClaims, (pvc) => {
      own(pvc);
      bySource(Index.sourcePvc, pvc.metadata.namespace, pvc.metadata.name);
    });
    observe(Resources.persistentVolumes, c.persistentVolumes, (pv) => {
      const claim = pv.spec?.claimRef;
      if (claim?.namespace === ns) this.enqueue(ns, claim.name);
    });
    observe(Resources.volumeSnapshots, c.volumeSnapshots, (vs) => {
      own(vs);
      bySource(Index.sourceSnapshot, vs.metadata.namespace, vs.metadata.name);
    });
    observe(Resources.volumeSnapshotContents, c.volumeSnapshotContents, (vsc) => {
      if (c.dataUploads.get(vsc.metadata.name!, ns)) this.enqueue(ns, vsc.metadata.name);
      const ref = vsc.spec.volumeSnapshotRef;
      bySource(Index.sourceSnapshot, ref.namespace, ref.name);
    });
    observe(Resources.nodes, c.nodes, () => undefined);
    const byUser = (copy: KubeObject) => {
      for (const uid of copyUsers(copy)) {
        for (const du of c.dataUploads.byIndex(Index.uid, uid)) this.enqueue(du.metadata.namespace, du.metadata.name);
      }
    };
    if (c.secretCopies) observe(Resources.secrets, c.secretCopies, byUser);
    if (c.configMapCopies) observe(Resources.configMaps, c.configMapCopies, byUser);
  }
}
