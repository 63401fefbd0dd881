/**
 * `--big`: a realistic cache load before any system runs. Fills other namespaces with PVCs and VolumeSnapshots of
 * them that no DataUpload refers to (by default 20 namespaces × 500 = 10,000 of each), and waits until the fake
 * CSI driver has bound every claim (a PV each) and made every snapshot ready (a content each): 40,000 objects that
 * every controller watching PVCs, PVs, snapshots or contents cluster-wide has to list and keep.
 */
import { adminRestClient } from '../cluster/index.js';
import type { RestClient } from '../cluster/rest.js';
import { waitFor } from '../cluster/wait.js';
import { inParallel } from '../e2e/support/burst.js';
import { ensureStorageClasses } from '../e2e/support/operator.js';
import { createSources, type BenchCluster } from './bench.js';

/** How big, and how long it took. */
export interface FillResult {
  namespaces: number;
  perNamespace: number;
  /** Creating the PVCs and snapshots, and waiting until every one is bound or ready. */
  seconds: number;
}

/** Fills `namespaces` × `perNamespace` PVCs and ready snapshots; resolves once all are bound and ready. */
export async function fillCluster(
  cluster: BenchCluster,
  o: { namespaces: number; perNamespace: number; log: (line: string) => void },
): Promise<FillResult> {
  await ensureStorageClasses(cluster);
  const started = Date.now();
  const client = adminRestClient(cluster);
  try {
    const names = Array.from({ length: o.namespaces }, (_, i) => `bench-fill-${i}`);
    await inParallel(names, 4, async (namespace) => {
      await ensureNamespace(client, namespace);
      await createSources(client, {
        namespace,
        count: o.perNamespace,
        runName: namespace,
        prefix: 'fill',
        timeoutMs: 1_200_000,
      });
      o.log(`fill: ${namespace} ready (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    });
    await waitFor(
      async () => {
        for (const namespace of names) {
          const pvcs = await client.call<{ items: { status?: { phase?: string } }[] }>({
            path: `/api/v1/namespaces/${namespace}/persistentvolumeclaims`,
            timeoutMs: 60_000,
          });
          if (pvcs.items.filter((p) => p.status?.phase === 'Bound').length < o.perNamespace) return false;
        }
        return true;
      },
      { description: 'every fill PVC to be Bound', timeoutMs: 1_800_000, intervalMs: 2_000 },
    );
    return { namespaces: o.namespaces, perNamespace: o.perNamespace, seconds: (Date.now() - started) / 1000 };
  } finally {
    client.close();
  }
}

async function ensureNamespace(client: RestClient, name: string): Promise<void> {
  const res = await client.send({
    method: 'POST',
    path: '/api/v1/namespaces',
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'bench.dataupload.io/fill': 'true' } } },
  });
  if (res.status !== 201 && res.status !== 409) throw new Error(`create namespace ${name}: ${res.status}`);
}
