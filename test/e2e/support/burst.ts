/**
 * Bulk helpers for end-to-end tests that work with many DataUploads at once: sources and DataUploads created over
 * one keep-alive REST client (a kubectl process per object would dominate the timing), a seeded random source, and
 * one listing pass that finds everything exposing left behind for a whole set of DataUploads.
 */
import type { RestClient } from '../../cluster/rest.js';
import { waitFor } from '../../cluster/wait.js';
import { VELERO_NS } from './operator.js';

const SNAPSHOT_API = '/apis/snapshot.storage.k8s.io/v1';
const DU_API = '/apis/velero.io/v2alpha1';

/** A source volume and its snapshot, and the DataUpload that will move it. */
export interface BurstSource {
  namespace: string;
  pvc: string;
  snapshot: string;
  storageClass: string;
  /** Name of the DataUpload in `velero`. */
  name: string;
}

/** A small seeded PRNG (mulberry32), so a failing random run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Creates `count` PVCs and VolumeSnapshots of them in `namespace` (names `<prefix>-<i>`) and waits until every
 * snapshot is ready to use.
 */
export async function createSources(
  client: RestClient,
  input: {
    namespace: string;
    count: number;
    storageClass: string;
    snapshotClass: string;
    duPrefix: string;
    prefix?: string;
  },
): Promise<BurstSource[]> {
  const prefix = input.prefix ?? 'src';
  const sources: BurstSource[] = Array.from({ length: input.count }, (_, i) => ({
    namespace: input.namespace,
    pvc: `${prefix}-${i}`,
    snapshot: `${prefix}-${i}-snap`,
    storageClass: input.storageClass,
    name: `${input.duPrefix}-${i}`,
  }));
  await inParallel(sources, 16, async (s) => {
    await client.call({
      method: 'POST',
      path: `/api/v1/namespaces/${s.namespace}/persistentvolumeclaims`,
      body: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: s.pvc },
        spec: {
          storageClassName: s.storageClass,
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    await client.call({
      method: 'POST',
      path: `${SNAPSHOT_API}/namespaces/${s.namespace}/volumesnapshots`,
      body: {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshot',
        metadata: { name: s.snapshot },
        spec: { volumeSnapshotClassName: input.snapshotClass, source: { persistentVolumeClaimName: s.pvc } },
      },
    });
  });
  await waitFor(
    async () => {
      const list = await client.call<{ items: { status?: { readyToUse?: boolean } }[] }>({
        path: `${SNAPSHOT_API}/namespaces/${input.namespace}/volumesnapshots`,
      });
      return list.items.filter((vs) => vs.status?.readyToUse === true).length >= input.count;
    },
    { description: `${input.count} snapshots ready in ${input.namespace}`, timeoutMs: 120_000, intervalMs: 250 },
  );
  return sources;
}

/** The DataUpload Velero's server creates for a source. */
export function dataUploadBody(s: BurstSource, extra: Record<string, unknown> = {}): object {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: { name: s.name, namespace: VELERO_NS, labels: { 'velero.io/backup-name': 'e2e-burst' } },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: { volumeSnapshot: s.snapshot, storageClass: s.storageClass, snapshotClass: 'e2e-vsc' },
      sourcePVC: s.pvc,
      sourceNamespace: s.namespace,
      backupStorageLocation: 'default',
      operationTimeout: '10m',
      ...extra,
    },
  };
}

/** Creates a DataUpload. */
export async function createDataUpload(
  client: RestClient,
  s: BurstSource,
  extra?: Record<string, unknown>,
): Promise<void> {
  await client.call({
    method: 'POST',
    path: `${DU_API}/namespaces/${VELERO_NS}/datauploads`,
    body: dataUploadBody(s, extra),
  });
}

/** A DataUpload as read from the API, or undefined when it is gone. */
export async function getDataUpload(client: RestClient, name: string): Promise<Record<string, any> | undefined> {
  const res = await client.send<Record<string, any>>({ path: `${DU_API}/namespaces/${VELERO_NS}/datauploads/${name}` });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET dataupload ${name}: ${res.status}`);
  return res.body;
}

/** Every DataUpload in `velero`, by name. */
export async function listDataUploads(client: RestClient): Promise<Map<string, Record<string, any>>> {
  const list = await client.call<{ items: Record<string, any>[] }>({
    path: `${DU_API}/namespaces/${VELERO_NS}/datauploads`,
  });
  return new Map(list.items.map((du) => [du.metadata.name as string, du]));
}

/** Sets spec.cancel as the Velero server does: a merge patch without a resourceVersion. */
export async function cancelViaApi(client: RestClient, name: string): Promise<void> {
  const res = await client.send({
    method: 'PATCH',
    path: `${DU_API}/namespaces/${VELERO_NS}/datauploads/${name}`,
    body: { spec: { cancel: true } },
  });
  if (res.status !== 200 && res.status !== 404) throw new Error(`cancel ${name}: ${res.status}`);
}

/** Deletes a DataUpload (the finalizer holds it until cleanup is done). */
export async function deleteViaApi(client: RestClient, name: string): Promise<void> {
  const res = await client.send({ method: 'DELETE', path: `${DU_API}/namespaces/${VELERO_NS}/datauploads/${name}` });
  if (res.status !== 200 && res.status !== 202 && res.status !== 404) throw new Error(`delete ${name}: ${res.status}`);
}

/**
 * Everything exposing could have left behind for these DataUploads (named `name`, in `namespace`, `velero` by
 * default) and their sources: backupPods, backupPVCs and backup snapshots, the source snapshots, every
 * VolumeSnapshotContent that refers to either (including a Retain source content whose snapshot is gone), and PVs
 * bound to a backupPVC; with `finalizers`, also finalizers left on the DataUploads. One list per resource type.
 */
export async function leftovers(
  client: RestClient,
  sources: readonly Pick<BurstSource, 'name' | 'namespace' | 'snapshot'>[],
  options: { namespace?: string; finalizers?: boolean } = {},
): Promise<string[]> {
  const ns = options.namespace ?? VELERO_NS;
  const names = new Set(sources.map((s) => s.name));
  const sourceSnaps = new Set(sources.map((s) => `${s.namespace}/${s.snapshot}`));
  type Item = { metadata: { name: string; namespace?: string; finalizers?: string[] }; spec?: Record<string, any> };
  const list = async (path: string) => (await client.call<{ items: Item[] }>({ path })).items;
  const found: string[] = [];
  for (const pod of await list(`/api/v1/namespaces/${ns}/pods`)) {
    if (names.has(pod.metadata.name)) found.push(`pod ${ns}/${pod.metadata.name}`);
  }
  for (const pvc of await list(`/api/v1/namespaces/${ns}/persistentvolumeclaims`)) {
    if (names.has(pvc.metadata.name)) found.push(`pvc ${ns}/${pvc.metadata.name}`);
  }
  for (const vs of await list(`${SNAPSHOT_API}/volumesnapshots`)) {
    const key = `${vs.metadata.namespace}/${vs.metadata.name}`;
    if ((vs.metadata.namespace === ns && names.has(vs.metadata.name)) || sourceSnaps.has(key))
      found.push(`volumesnapshot ${key}`);
  }
  for (const vsc of await list(`${SNAPSHOT_API}/volumesnapshotcontents`)) {
    const ref = (vsc.spec?.volumeSnapshotRef ?? {}) as { name?: string; namespace?: string };
    const key = `${ref.namespace}/${ref.name}`;
    if ((ref.namespace === ns && names.has(ref.name ?? '')) || sourceSnaps.has(key))
      found.push(`volumesnapshotcontent ${vsc.metadata.name} (${vsc.spec?.deletionPolicy}, for ${key})`);
  }
  for (const pv of await list('/api/v1/persistentvolumes')) {
    const claim = (pv.spec?.claimRef ?? {}) as { name?: string; namespace?: string };
    if (claim.namespace === ns && names.has(claim.name ?? '')) found.push(`persistentvolume ${pv.metadata.name}`);
  }
  if (options.finalizers) {
    for (const du of await list(`${DU_API}/namespaces/${ns}/datauploads`)) {
      if (names.has(du.metadata.name) && (du.metadata.finalizers ?? []).length > 0)
        found.push(`finalizers of dataupload ${du.metadata.name}: ${du.metadata.finalizers!.join(', ')}`);
    }
  }
  return found;
}
