/**
 * Benchmark: how fast the operator takes a burst of DataUploads from New to Prepared on the bundled control
 * plane, with 1 worker (Velero's controller runs one) and with 4, in the same run so the ratio is meaningful.
 * Also counts API writes per DataUpload. Not part of `npm test`: run `npm run bench [-- --count 40]`.
 *
 * Each round: fresh source PVCs and snapshots (exposing consumes them), start the operator, create all
 * DataUploads at once, time until every one is Prepared, then cancel them and wait until nothing is left.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBinaries } from '../cluster/control-plane.js';
import { createTestNamespace, startCluster } from '../cluster/index.js';
import type { Cluster } from '../cluster/index.js';
import { applyManifest, deleteNamespaces } from '../cluster/testing.js';
import {
  cancelDataUpload,
  createNodeAgentConfigMap,
  dataUploadManifest,
  E2E_NODE_AGENT_CONFIG,
  ensureStorageClasses,
  eventually,
  getJson,
  installOperatorManifests,
  OperatorProcess,
  operatorKubeconfig,
  VELERO_NS,
} from '../e2e/support/operator.js';

interface RoundResult {
  workers: number;
  count: number;
  seconds: number;
  writesPerDataUpload: number;
}

async function createSources(cluster: Cluster, ns: string, count: number): Promise<void> {
  const items = [];
  for (let i = 0; i < count; i++) {
    items.push(
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: `data-${i}`, namespace: ns },
        spec: {
          storageClassName: 'e2e-src',
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
        },
      },
      {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshot',
        metadata: { name: `snap-${i}`, namespace: ns },
        spec: { volumeSnapshotClassName: 'e2e-vsc', source: { persistentVolumeClaimName: `data-${i}` } },
      },
    );
  }
  await applyManifest(cluster, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  await eventually(
    `${count} snapshots ready in ${ns}`,
    async () => {
      const list = await getJson<{ items: any[] }>(cluster, ['-n', ns, 'volumesnapshots']);
      return list!.items.filter((vs) => vs.status?.readyToUse === true).length === count;
    },
    180_000,
  );
}

async function round(cluster: Cluster, kubeconfig: string, workers: number, count: number): Promise<RoundResult> {
  const ns = await createTestNamespace(cluster, `bench-w${workers}`);
  await createSources(cluster, ns, count);
  const operator = OperatorProcess.start({
    kubeconfig,
    name: `bench-w${workers}`,
    args: [
      '--node-agent-configmap',
      'bench-node-agent-config',
      '--leader-elect=false',
      '--workers',
      String(workers),
      '--log-level',
      'info',
    ],
  });
  try {
    await eventually('operator ready', () =>
      Promise.resolve(operator.logLines().some((l) => l.msg === 'caches synced')),
    );
    const names = Array.from({ length: count }, (_, i) => `bench-w${workers}-${i}`);
    const manifests = names.map((name, i) =>
      JSON.parse(dataUploadManifest({ name, sourceNamespace: ns, snapshot: `snap-${i}`, storageClass: 'e2e-src' })),
    );
    manifests.forEach((m, i) => (m.spec.sourcePVC = `data-${i}`));
    const started = performance.now();
    await applyManifest(cluster, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }));
    await eventually(
      `${count} DataUploads Prepared`,
      async () => {
        const list = await getJson<{ items: any[] }>(cluster, ['-n', VELERO_NS, 'datauploads']);
        const prepared = list!.items.filter(
          (du) => names.includes(du.metadata.name) && du.status?.phase === 'Prepared',
        );
        return prepared.length === count;
      },
      600_000,
    );
    const seconds = (performance.now() - started) / 1000;
    const writes = operator
      .logLines()
      .filter((l) => typeof l.writes === 'number' && l.phase === 'Prepared' && names.includes(String(l.name)))
      .map((l) => Number(l.writes));
    for (const name of names) {
      await cancelDataUpload(cluster, name);
    }
    await eventually(
      'cleanup',
      async () => {
        const pods = await getJson<{ items: any[] }>(cluster, ['-n', VELERO_NS, 'pods']);
        return !pods!.items.some((p) => names.includes(p.metadata.name));
      },
      300_000,
    );
    return {
      workers,
      count,
      seconds,
      writesPerDataUpload: writes.reduce((a, b) => a + b, 0) / Math.max(1, writes.length),
    };
  } finally {
    await operator.stop('SIGTERM');
    await deleteNamespaces(cluster, ns);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: 'string', default: '30' } } });
  const count = Number(values.count);
  await buildBinaries();
  const cluster = await startCluster();
  try {
    await installOperatorManifests(cluster);
    await ensureStorageClasses(cluster);
    // No prepareQueueLength: Prepared DataUploads hold their place in that queue until a data mover takes them,
    // and there is no data mover here, so a limit would cap the burst.
    await createNodeAgentConfigMap(cluster, 'bench-node-agent-config', { backupPVC: E2E_NODE_AGENT_CONFIG.backupPVC });
    const kubeconfig = await operatorKubeconfig(cluster, mkdtempSync(join(tmpdir(), 'duo-bench-')));
    const one = await round(cluster, kubeconfig, 1, count);
    const four = await round(cluster, kubeconfig, 4, count);
    for (const r of [one, four]) {
      console.log(
        `workers=${r.workers}: ${r.count} DataUploads New→Prepared in ${r.seconds.toFixed(2)} s ` +
          `(${(r.count / r.seconds).toFixed(1)}/s), ${r.writesPerDataUpload.toFixed(1)} API writes each`,
      );
    }
    console.log(`speed-up of 4 workers over 1 (same run): ${(one.seconds / four.seconds).toFixed(2)}x`);
  } finally {
    await cluster.stop();
  }
}

await main();
