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
  plan,
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
import { Informer, type CachedObject } from './informer.js';
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
}

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** An action already done is not repeated for this long, giving the watch time to show its effect. */
const REPEAT_AFTER_MS = 3_000;
const CONCURRENCY = 8;
const SNAPSHOT_PATH = '/apis/snapshot.storage.k8s.io/v1';

/** The fake CSI layer: install the snapshot CRDs, then reconcile until stopped. */
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
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: FakeCsiOptions) {
    this.clock = opts.clock ?? (() => new Date());
    const informer = <T extends CachedObject>(path: string): Informer<T> =>
      new Informer<T>({ client: opts.client, path, log: opts.log, onChange: () => this.wake?.() });
    this.storageClasses = informer('/apis/storage.k8s.io/v1/storageclasses');
    this.snapshotClasses = informer(`${SNAPSHOT_PATH}/volumesnapshotclasses`);
    this.pvcs = informer('/api/v1/persistentvolumeclaims');
    this.pvs = informer('/api/v1/persistentvolumes');
    this.snapshots = informer(`${SNAPSHOT_PATH}/volumesnapshots`);
    this.contents = informer(`${SNAPSHOT_PATH}/volumesnapshotcontents`);
    this.secrets = informer('/api/v1/secrets');
    this.configMaps = informer('/api/v1/configmaps');
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
    ];
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

  /** Waits for a cache change (plus a short debounce to batch bursts) or the resync tick. */
  private async idle(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.opts.tickMs ?? 250);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
    await sleep(20);
  }

  private async reconcile(): Promise<void> {
    const now = this.clock();
    this.rememberSizes();
    this.forgetVanishedClaims();
    const actions = plan({ view: this.view(), failures: this.failures, now }).filter((a) => this.isDue(a, now));
    await runLimited(actions, CONCURRENCY, (a) => this.execute(a, now));
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
    this.failures.set(pvc.metadata.uid, { eventName: eventName!, count, delayMs, nextAt: now.getTime() + delayMs });
    if (count === 1) this.opts.log(`ProvisioningFailed ${ns}/${pvc.metadata.name}: ${message}`);
  }

  /** Sizes of snapshots made here, kept after their contents are gone, for pre-provisioned copies of them. */
  private rememberSizes(): void {
    for (const c of this.contents.list()) {
      const handle = c.status?.snapshotHandle;
      if (handle && c.status?.restoreSize !== undefined) this.knownSizes.set(handle, c.status.restoreSize);
    }
  }

  private forgetVanishedClaims(): void {
    const live = new Set(this.pvcs.list().map((p) => p.metadata.uid));
    for (const uid of this.failures.keys()) if (!live.has(uid)) this.failures.delete(uid);
    const cutoff = this.clock().getTime() - 10 * REPEAT_AFTER_MS;
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
