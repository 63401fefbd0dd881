/**
 * A fake CSI storage layer for the test control plane: the parts of the snapshot-controller, csi-snapshotter and
 * external-provisioner that an operator can observe, driven by list+watch caches and the pure plan in
 * fake-csi-plan.ts. Runs as its own process (fake-csi-main.ts) so it survives, and keeps retrying across, API
 * server restarts.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import {
  FAKE_CSI_COMPONENT,
  planClaim,
  planOrphanContent,
  planReleasedVolume,
  planSnapshot,
  type Action,
  type FailureBackoff,
  type Pv,
  type Pvc,
  type SnapshotClass,
  type SnapshotContent,
  type StorageClass,
  type View,
  type VolumeSnapshot,
} from './fake-csi-plan.js';
import { Informer, keyOf, type CacheChange, type CachedObject } from './informer.js';
import { hasStatus, type RestClient } from './rest.js';
import { errorMessage, waitFor } from './wait.js';

/** What the fake CSI layer needs. */
export interface FakeCsiOptions {
  readonly client: RestClient;
  /** Directory with the VolumeSnapshot CRD YAML files to install. */
  readonly crdDir: string;
  readonly log: (message: string) => void;
  readonly clock?: () => Date;
  /** Resync period for backoff timers; changes trigger a pass sooner. */
  readonly tickMs?: number;
}

/** Backoff of one claim's ProvisioningFailed reports, and the Event that counts them. */
interface FailureState extends FailureBackoff {
  readonly eventName: string;
  readonly count: number;
  readonly delayMs: number;
  /** `namespace/name` of the claim, to plan it again when the backoff is due. */
  readonly claimKey: string;
}

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** An action already done is not repeated for this long, giving the watch time to show its effect. */
const REPEAT_AFTER_MS = 3_000;
/** Every object is planned again this often, whatever changed (a safety net, like an informer's resync). */
const FULL_RESYNC_MS = 30_000;
const CONCURRENCY = 8;
const SNAPSHOT_PATH = '/apis/snapshot.storage.k8s.io/v1';

/**
 * The objects the next pass plans, by cache key: the ones that changed, the ones whose plan reads a changed
 * object, and the ones whose last plan still had actions (not yet visible in the caches, or not due yet).
 */
class Dirty {
  all: boolean;
  readonly snapshots = new Set<string>();
  readonly contents = new Set<string>();
  readonly claims = new Set<string>();
  readonly volumes = new Set<string>();
  allClaims = false;

  constructor(all = false) {
    this.all = all;
  }

  get empty(): boolean {
    return (
      !this.all &&
      !this.allClaims &&
      this.snapshots.size + this.contents.size + this.claims.size + this.volumes.size === 0
    );
  }

  /** Adds everything of `other`. */
  merge(other: Dirty): void {
    this.all ||= other.all;
    this.allClaims ||= other.allClaims;
    for (const key of other.snapshots) this.snapshots.add(key);
    for (const key of other.contents) this.contents.add(key);
    for (const key of other.claims) this.claims.add(key);
    for (const key of other.volumes) this.volumes.add(key);
  }

  /** Hands the current set to a pass and starts a new, empty one. */
  take(): Dirty {
    const taken = new Dirty();
    taken.all = this.all;
    taken.allClaims = this.allClaims;
    for (const [from, to] of [
      [this.snapshots, taken.snapshots],
      [this.contents, taken.contents],
      [this.claims, taken.claims],
      [this.volumes, taken.volumes],
    ] as const) {
      for (const key of from) to.add(key);
      from.clear();
    }
    this.all = false;
    this.allClaims = false;
    return taken;
  }
}

/** `namespace/name`, the informer's key of a namespaced object. */
function nsKey(namespace: string | undefined, name: string | undefined): string {
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}

/**
 * The fake CSI layer: install the snapshot CRDs, then reconcile until stopped. A pass plans only what changed and
 * what depends on it (secondary indexes find those), so with tens of thousands of settled objects in the cluster a
 * pass costs what the change costs, not what the cluster holds; the per-object plan is the same as a full one.
 */
export class FakeCsi {
  private readonly clock: () => Date;
  private readonly storageClasses: Informer<StorageClass & CachedObject>;
  private readonly snapshotClasses: Informer<SnapshotClass & CachedObject>;
  private readonly pvcs: Informer<Pvc & CachedObject>;
  private readonly pvs: Informer<Pv & CachedObject>;
  private readonly snapshots: Informer<VolumeSnapshot & CachedObject>;
  private readonly contents: Informer<SnapshotContent & CachedObject>;
  /** Only whether they exist matters (a class may require one for provisioning). */
  private readonly secrets: Informer<CachedObject>;
  private readonly configMaps: Informer<CachedObject>;
  private readonly failures = new Map<string, FailureState>();
  private readonly done = new Map<string, number>();
  private readonly knownSizes = new Map<string, number>();
  /** Changed since the last pass, or read something that did: plan at the next pass, which starts soon. */
  private readonly dirty = new Dirty(true);
  /** Planned last time with actions left: plan again at the next pass, whenever that is (a change or the tick). */
  private readonly pending = new Dirty();
  private lastFullPass = 0;
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: FakeCsiOptions) {
    this.clock = opts.clock ?? (() => new Date());
    const informer = <T extends CachedObject>(path: string, onChange: (change: CacheChange<T>) => void): Informer<T> =>
      new Informer<T>({
        client: opts.client,
        path,
        log: opts.log,
        onChange: (change) => {
          if (change === undefined) this.dirty.all = true;
          else onChange(change);
          this.wake?.();
        },
      });
    const everything = () => (this.dirty.all = true);
    const everyClaim = () => (this.dirty.allClaims = true);
    this.storageClasses = informer('/apis/storage.k8s.io/v1/storageclasses', everything);
    this.snapshotClasses = informer(`${SNAPSHOT_PATH}/volumesnapshotclasses`, everything);
    this.pvcs = informer('/api/v1/persistentvolumeclaims', (c) => this.claimChanged(c));
    this.pvs = informer('/api/v1/persistentvolumes', (c) => this.volumeChanged(c));
    this.snapshots = informer(`${SNAPSHOT_PATH}/volumesnapshots`, (c) => this.snapshotChanged(c));
    this.contents = informer(`${SNAPSHOT_PATH}/volumesnapshotcontents`, (c) => this.contentChanged(c));
    this.secrets = informer('/api/v1/secrets', everyClaim);
    this.configMaps = informer('/api/v1/configmaps', everyClaim);
    // Who reads whom (see the planners in fake-csi-plan.ts), as indexes from the object read to its readers.
    this.snapshots.addIndex('claim', (vs) => {
      const claim = vs.spec.source.persistentVolumeClaimName;
      return claim ? [nsKey(vs.metadata.namespace, claim)] : [];
    });
    this.snapshots.addIndex('content', (vs) => {
      const content = vs.spec.source.volumeSnapshotContentName;
      return content ? [content] : [];
    });
    this.contents.addIndex('snapshot', (c) => {
      const ref = c.spec.volumeSnapshotRef;
      return ref.name && ref.namespace ? [nsKey(ref.namespace, ref.name)] : [];
    });
    this.contents.addIndex('sourceHandle', (c) => (c.spec.source.snapshotHandle ? [c.spec.source.snapshotHandle] : []));
    this.pvcs.addIndex('snapshot', (pvc) => {
      const source = pvc.spec.dataSourceRef ?? pvc.spec.dataSource;
      if (!source || source.kind !== 'VolumeSnapshot') return [];
      return [nsKey(pvc.spec.dataSourceRef?.namespace ?? pvc.metadata.namespace, source.name)];
    });
  }

  /** Installs the CRDs and fills the caches; resolves when the layer is serving. */
  async start(): Promise<void> {
    await installCrds(this.opts.client, this.opts.crdDir, this.opts.log);
    const all = this.informers();
    for (const i of all) i.start();
    await waitFor(async () => Promise.resolve(all.every((i) => i.hasSynced)), {
      description: 'the fake CSI caches to sync',
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    void this.loop();
  }

  /** Stops the watches and the reconcile loop. */
  stop(): void {
    this.stopped = true;
    for (const i of this.informers()) i.stop();
    this.wake?.();
  }

  private informers(): Informer<CachedObject>[] {
    return [
      this.storageClasses,
      this.snapshotClasses,
      this.pvcs,
      this.pvs,
      this.snapshots,
      this.contents,
      this.secrets,
      this.configMaps,
    ] as Informer<CachedObject>[];
  }

  /** A claim is read by itself and by the dynamic snapshots of it. */
  private claimChanged(c: CacheChange<Pvc & CachedObject>): void {
    const key = nsKey(c.object.metadata.namespace, c.object.metadata.name);
    this.dirty.claims.add(key);
    for (const vs of this.snapshots.byIndex('claim', key)) this.dirty.snapshots.add(keyOf(vs));
    if (c.type === 'DELETED') this.failures.delete(c.object.metadata.uid);
  }

  /** A PV is read by itself, by its claim (`pvc-<uid>`) and by the snapshots of that claim (its volume handle). */
  private volumeChanged(c: CacheChange<Pv & CachedObject>): void {
    this.dirty.volumes.add(c.object.metadata.name);
    for (const pv of [c.object, c.previous]) {
      const claim = (pv?.spec as { claimRef?: { namespace?: string; name?: string } } | undefined)?.claimRef;
      if (!claim?.name) continue;
      const key = nsKey(claim.namespace, claim.name);
      this.dirty.claims.add(key);
      for (const vs of this.snapshots.byIndex('claim', key)) this.dirty.snapshots.add(keyOf(vs));
    }
  }

  /** A snapshot is read by itself, by the contents that refer to it, and by the claims restored from it. */
  private snapshotChanged(c: CacheChange<VolumeSnapshot & CachedObject>): void {
    const key = keyOf(c.object);
    this.dirty.snapshots.add(key);
    for (const vsc of this.contents.byIndex('snapshot', key)) this.dirty.contents.add(vsc.metadata.name);
    for (const pvc of this.pvcs.byIndex('snapshot', key)) this.dirty.claims.add(keyOf(pvc));
  }

  /**
   * A content is read by itself, by the snapshot it refers to, by a snapshot that names it, and (through the
   * remembered size of its handle) by the pre-provisioned contents' snapshots on the same handle.
   */
  private contentChanged(c: CacheChange<SnapshotContent & CachedObject>): void {
    this.dirty.contents.add(c.object.metadata.name);
    for (const content of [c.object, c.previous]) {
      const ref = content?.spec.volumeSnapshotRef;
      if (ref?.name && ref.namespace) this.dirty.snapshots.add(nsKey(ref.namespace, ref.name));
    }
    for (const vs of this.snapshots.byIndex('content', c.object.metadata.name)) this.dirty.snapshots.add(keyOf(vs));
    const handle = c.object.status?.snapshotHandle;
    const size = c.object.status?.restoreSize;
    if (handle && size !== undefined && this.knownSizes.get(handle) !== size) {
      this.knownSizes.set(handle, size);
      for (const copy of this.contents.byIndex('sourceHandle', handle)) {
        const ref = copy.spec.volumeSnapshotRef;
        if (ref.name && ref.namespace) this.dirty.snapshots.add(nsKey(ref.namespace, ref.name));
        for (const vs of this.snapshots.byIndex('content', copy.metadata.name)) this.dirty.snapshots.add(keyOf(vs));
      }
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.reconcile();
      } catch (err) {
        this.opts.log(`reconcile pass failed: ${errorMessage(err)}`);
      }
      await this.idle();
    }
  }

  /**
   * Waits for a cache change (plus a short debounce to batch bursts) or the resync tick. Changes that arrived
   * during the last pass start the next one at once.
   */
  private async idle(): Promise<void> {
    if (this.dirty.empty) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.tickMs ?? 250);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    await sleep(20);
  }

  private async reconcile(): Promise<void> {
    const now = this.clock();
    if (now.getTime() - this.lastFullPass >= FULL_RESYNC_MS) this.dirty.all = true;
    const units = this.dirty.take();
    units.merge(this.pending.take());
    if (units.all) {
      this.lastFullPass = now.getTime();
      this.rememberSizes();
      this.forgetVanishedClaims();
    }
    this.forgetOldActions(now);
    for (const failure of this.failures.values()) units.claims.add(failure.claimKey);
    const input = { view: this.view(), failures: this.failures, now };
    const actions: Action[] = [];
    const plan = <T>(items: Iterable<T>, planOne: (item: T) => Action[], pending: (item: T) => void) => {
      for (const item of items) {
        const planned = planOne(item);
        // Not settled yet: plan it again next pass, whether its actions run now or are not due yet.
        if (planned.length > 0) pending(item);
        actions.push(...planned);
      }
    };
    const pick = <T extends CachedObject>(inf: Informer<T>, all: boolean, keys: Set<string>) =>
      all ? inf.list() : [...keys].flatMap((k) => inf.getByKey(k) ?? []);
    plan(
      pick(this.snapshots, units.all, units.snapshots),
      (vs) => planSnapshot(vs, input),
      (vs) => this.pending.snapshots.add(keyOf(vs)),
    );
    plan(
      pick(this.contents, units.all, units.contents),
      (vsc) => planOrphanContent(vsc, input.view),
      (vsc) => this.pending.contents.add(vsc.metadata.name),
    );
    plan(
      pick(this.pvcs, units.all || units.allClaims, units.claims),
      (pvc) => planClaim(pvc, input),
      (pvc) => this.pending.claims.add(keyOf(pvc)),
    );
    plan(
      pick(this.pvs, units.all, units.volumes),
      (pv) => planReleasedVolume(pv),
      (pv) => this.pending.volumes.add(pv.metadata.name),
    );
    await runLimited(
      actions.filter((a) => this.isDue(a, now)),
      CONCURRENCY,
      (a) => this.execute(a, now),
    );
  }

  private isDue(action: Action, now: Date): boolean {
    const at = this.done.get(action.key);
    return at === undefined || now.getTime() - at > REPEAT_AFTER_MS;
  }

  private async execute(action: Action, now: Date): Promise<void> {
    try {
      await this.perform(action, now);
      this.done.set(action.key, now.getTime());
    } catch (err) {
      this.opts.log(`${action.type} ${action.key} failed: ${errorMessage(err)}`);
    }
  }

  private async perform(action: Action, now: Date): Promise<void> {
    const client = this.opts.client;
    switch (action.type) {
      case 'create':
        await ignoring(409, client.call({ method: 'POST', path: action.path, body: action.body }));
        return this.opts.log(`${action.key}: ${action.why}`);
      case 'patch':
        await ignoring(404, client.call({ method: 'PATCH', path: action.path, body: action.body }));
        return this.opts.log(`patch ${action.path}: ${action.why}`);
      case 'delete':
        await ignoring(404, client.call({ method: 'DELETE', path: action.path }));
        return this.opts.log(`${action.key}: ${action.why}`);
      case 'deleteOrphanContent':
        return this.deleteOrphanContent(action.content, action.why);
      case 'provisioningFailed':
        return this.reportProvisioningFailure(action.pvc, action.message, now);
    }
  }

  /**
   * The cache may lag behind the API, so both facts are checked live before deleting: the snapshot is really gone,
   * and the content still says Delete (an operator may have just set it to Retain to take its handle over, as
   * Velero's exposer does). The delete carries the content's resourceVersion as a precondition, so a Retain that
   * lands between the read and the delete wins; a real snapshot controller never deletes a Retain content.
   */
  private async deleteOrphanContent(content: SnapshotContent, why: string): Promise<void> {
    const ref = content.spec.volumeSnapshotRef;
    const path = `${SNAPSHOT_PATH}/namespaces/${ref.namespace}/volumesnapshots/${ref.name}`;
    const res = await this.opts.client.send<VolumeSnapshot>({ path });
    if (res.status === 200 && res.body.metadata.uid === ref.uid) return;
    if (res.status !== 200 && res.status !== 404) throw new Error(`GET ${path}: ${res.status}`);
    const contentPath = `${SNAPSHOT_PATH}/volumesnapshotcontents/${content.metadata.name}`;
    const live = await this.opts.client.send<SnapshotContent>({ path: contentPath });
    if (live.status === 404) return;
    if (live.status !== 200) throw new Error(`GET ${contentPath}: ${live.status}`);
    const fresh = live.body;
    if (fresh.metadata.uid !== content.metadata.uid || fresh.metadata.deletionTimestamp) return;
    if (fresh.spec.deletionPolicy !== 'Delete') return;
    const deleted = await this.opts.client.send({
      method: 'DELETE',
      path: contentPath,
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: fresh.metadata.uid, resourceVersion: fresh.metadata.resourceVersion },
      },
    });
    // 409: it changed since the read (e.g. set to Retain); the next pass decides again from the new state.
    if (deleted.status === 404 || deleted.status === 409) return;
    if (deleted.status < 200 || deleted.status >= 300) throw new Error(`DELETE ${contentPath}: ${deleted.status}`);
    this.opts.log(`delete vsc ${content.metadata.name}: ${why}`);
  }

  /**
   * Emits a Warning `ProvisioningFailed` Event on the claim; repeats bump the count of the same Event (like
   * client-go's event correlator) and back off exponentially.
   */
  private async reportProvisioningFailure(pvc: Pvc, message: string, now: Date): Promise<void> {
    const previous = this.failures.get(pvc.metadata.uid);
    const ns = pvc.metadata.namespace ?? 'default';
    const stamp = now.toISOString();
    let eventName = previous?.eventName;
    let count = (previous?.count ?? 0) + 1;
    const bumped =
      eventName !== undefined &&
      (await this.opts.client.send({
        method: 'PATCH',
        path: `/api/v1/namespaces/${ns}/events/${eventName}`,
        body: { count, lastTimestamp: stamp, message },
      }));
    if (!bumped || bumped.status === 404) {
      eventName = `${pvc.metadata.name}.${randomBytes(8).toString('hex')}`;
      count = 1;
      await this.opts.client.call({
        method: 'POST',
        path: `/api/v1/namespaces/${ns}/events`,
        body: provisioningFailedEvent({ pvc, name: eventName, message, stamp }),
      });
    } else if (bumped.status >= 300) {
      throw new Error(`PATCH event ${eventName}: ${bumped.status}`);
    }
    const delayMs = Math.min((previous?.delayMs ?? FIRST_RETRY_MS / 2) * 2, MAX_RETRY_MS);
    this.failures.set(pvc.metadata.uid, {
      eventName: eventName!,
      count,
      delayMs,
      nextAt: now.getTime() + delayMs,
      claimKey: nsKey(ns, pvc.metadata.name),
    });
    if (count === 1) this.opts.log(`ProvisioningFailed ${ns}/${pvc.metadata.name}: ${message}`);
  }

  /**
   * Sizes of snapshots made here, kept after their contents are gone, for pre-provisioned copies of them. Content
   * changes record theirs as they arrive; this covers a (re-)list.
   */
  private rememberSizes(): void {
    for (const c of this.contents.list()) {
      const handle = c.status?.snapshotHandle;
      if (handle && c.status?.restoreSize !== undefined) this.knownSizes.set(handle, c.status.restoreSize);
    }
  }

  /** Failure state of claims that are gone (a deleted claim's is dropped at once; this covers a re-list). */
  private forgetVanishedClaims(): void {
    const live = new Set(this.pvcs.list().map((p) => p.metadata.uid));
    for (const uid of this.failures.keys()) if (!live.has(uid)) this.failures.delete(uid);
  }

  private forgetOldActions(now: Date): void {
    const cutoff = now.getTime() - 10 * REPEAT_AFTER_MS;
    for (const [key, at] of this.done) if (at < cutoff) this.done.delete(key);
  }

  private view(): View {
    return {
      storageClass: (name) => this.storageClasses.get(undefined, name),
      snapshotClass: (name) => this.snapshotClasses.get(undefined, name),
      snapshotClasses: () => this.snapshotClasses.list(),
      pvc: (ns, name) => this.pvcs.get(ns, name),
      pvcs: () => this.pvcs.list(),
      pv: (name) => this.pvs.get(undefined, name),
      pvs: () => this.pvs.list(),
      snapshot: (ns, name) => this.snapshots.get(ns, name),
      snapshots: () => this.snapshots.list(),
      content: (name) => this.contents.get(undefined, name),
      contents: () => this.contents.list(),
      sizeOfHandle: (handle) => this.knownSizes.get(handle),
      hasSecret: (ns, name) => this.secrets.get(ns, name) !== undefined,
      hasConfigMap: (ns, name) => this.configMaps.get(ns, name) !== undefined,
    };
  }
}

function provisioningFailedEvent(o: { pvc: Pvc; name: string; message: string; stamp: string }): object {
  const { pvc } = o;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: o.name, namespace: pvc.metadata.namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      namespace: pvc.metadata.namespace,
      name: pvc.metadata.name,
      uid: pvc.metadata.uid,
      resourceVersion: pvc.metadata.resourceVersion,
    },
    type: 'Warning',
    reason: 'ProvisioningFailed',
    message: o.message,
    source: { component: FAKE_CSI_COMPONENT },
    firstTimestamp: o.stamp,
    lastTimestamp: o.stamp,
    count: 1,
    reportingComponent: FAKE_CSI_COMPONENT,
    reportingInstance: 'fake-csi',
  };
}

async function ignoring(status: number, call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (!hasStatus(err, status)) throw err;
  }
}

async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Applies every CRD in `dir` (server-side apply, so re-runs are no-ops) and waits until all are Established. */
export async function installCrds(client: RestClient, dir: string, log: (m: string) => void): Promise<void> {
  const crds = readCrds(dir);
  for (const crd of crds) {
    await waitFor(
      () =>
        client.call({
          method: 'PATCH',
          path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=fake-csi&force=true`,
          contentType: 'application/apply-patch+yaml',
          body: JSON.stringify(crd),
        }),
      { description: `CRD ${crd.metadata.name} to be applied`, timeoutMs: 60_000 },
    );
  }
  for (const crd of crds) {
    await waitFor(
      async () => {
        const live = await client.call<{ status?: { conditions?: { type: string; status: string }[] } }>({
          path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
        });
        return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { description: `CRD ${crd.metadata.name} to be Established`, timeoutMs: 60_000, intervalMs: 100 },
    );
  }
  log(`installed ${crds.length} CRDs from ${dir}`);
}

function readCrds(dir: string): { metadata: { name: string } }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJSON() as unknown))
    .filter((d): d is { kind: string; metadata: { name: string } } => isCrd(d));
}

function isCrd(doc: unknown): doc is { kind: string; metadata: { name: string } } {
  return typeof doc === 'object' && doc !== null && (doc as { kind?: string }).kind === 'CustomResourceDefinition';
}
