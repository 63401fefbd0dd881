/**
 * Never leak, never stall, on the real control plane: bursts of DataUploads canceled or deleted at random moments
 * while they are being exposed (one round with the operator killed and restarted in the middle) leave no pod, PVC,
 * PV, VolumeSnapshot or VolumeSnapshotContent and no finalizer; DataUploads the API server can never expose fail
 * within seconds with the API server's words. Set DUO_LEAK_SEED to replay a run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRestClient, connectCluster, createTestNamespace } from '../cluster/index.js';
import { applyManifest, deleteNamespaces } from '../cluster/testing.js';
import {
  cancelViaApi,
  createDataUpload,
  createSources,
  deleteViaApi,
  getDataUpload,
  leftovers,
  listDataUploads,
  seededRandom,
  type BurstSource,
} from './support/burst.js';
import {
  createNodeAgentConfigMap,
  describeEvents,
  ensureStorageClasses,
  eventually,
  installOperatorManifests,
  OperatorProcess,
  operatorKubeconfig,
} from './support/operator.js';

const cluster = connectCluster();
const client = adminRestClient(cluster);
const workDir = mkdtempSync(join(tmpdir(), 'duo-leaks-'));
const namespaces: string[] = [];
const seed = Number(process.env.DUO_LEAK_SEED ?? Date.now() % 1_000_000);
const random = seededRandom(seed);
const CONFIG = 'e2e-leaks-config';
const OPERATOR_ARGS = ['--node-agent-configmap', CONFIG, '--prepare-timeout', '10m', '--leader-elect=false'];
let kubeconfig = '';
let operator: OperatorProcess;
let operators = 0;

function startOperator(): OperatorProcess {
  return OperatorProcess.start({ kubeconfig, logDir: workDir, name: `leaks-${++operators}`, args: OPERATOR_ARGS });
}

async function sourceNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix);
  namespaces.push(ns);
  return ns;
}

/** Waits until every DataUpload is gone or terminal without our finalizer, then until nothing is left behind. */
async function assertAllSettledAndClean(sources: readonly BurstSource[], timeoutMs = 90_000): Promise<void> {
  await eventually(
    'every DataUpload gone, or terminal without a finalizer',
    async () => {
      const dus = await listDataUploads(client);
      const busy = sources
        .map((s) => dus.get(s.name))
        .filter(
          (du) =>
            du && (!/^(Canceled|Failed)$/.test(du.status?.phase ?? '') || (du.metadata.finalizers ?? []).length > 0),
        )
        .map(
          (du) =>
            `${du!.metadata.name}=${du!.status?.phase ?? 'New'}${du!.metadata.deletionTimestamp ? '(deleting)' : ''}`,
        );
      if (busy.length > 0) throw new Error(`still busy: ${busy.join(', ')}`);
      return true;
    },
    timeoutMs,
  );
  await eventually(
    'nothing left behind',
    async () => {
      const left = await leftovers(client, sources);
      if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
      return true;
    },
    60_000,
  );
}

before(async () => {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  await applyManifest(
    cluster,
    JSON.stringify({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'e2e-src-spc' },
      provisioner: 'fake.csi.local',
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
    }),
  );
  await createNodeAgentConfigMap(cluster, CONFIG, {
    backupPVC: {
      'e2e-src': { storageClass: 'e2e-rox', readOnly: true },
      // spc_t needs a privileged namespace; config/default enforces baseline, so PodSecurity refuses the pod.
      'e2e-src-spc': { readOnly: true, spcNoRelabeling: true },
    },
  });
  kubeconfig = await operatorKubeconfig(cluster, workDir);
  operator = startOperator();
  await operator.waitForLog('caches synced');
});

after(async () => {
  const code = await operator.stop('SIGTERM');
  client.close();
  await deleteNamespaces(cluster, ...namespaces);
  assert.equal(code, 0, `the operator exits 0 after SIGTERM (log: ${operator.logFile})`);
});

describe('bursts of DataUploads canceled or deleted at random moments while exposing', { timeout: 600_000 }, () => {
  for (const round of [1, 2, 3]) {
    const crash = round === 3;
    test(`round ${round}: 24 DataUploads${crash ? ', operator killed and restarted mid-burst' : ''} (seed ${seed})`, async (t) => {
      const ns = await sourceNamespace(`leaks-${round}`);
      const sources = await createSources(client, {
        namespace: ns,
        count: 24,
        storageClass: 'e2e-src',
        snapshotClass: 'e2e-vsc',
        duPrefix: `leak-${round}-${process.pid % 1000}`,
      });
      const landedIn: Record<string, number> = {};
      const started = Date.now();
      const fates = sources.map((s) => {
        const r = random();
        const fate = r < 0.45 ? 'cancel' : r < 0.9 ? 'delete' : 'prepared-then-cancel';
        // Exposing takes about 0.3–1 s from creation: spread the hits over New, Accepted and every expose step.
        return { s, fate, delayMs: Math.floor(random() * (crash ? 2500 : 1500)) };
      });
      await Promise.all(sources.map((s) => createDataUpload(client, s)));
      // A DataUpload deleted before any finalizer held it is only remembered in memory (a tombstone); if the
      // operator dies before handling it, or is down, its source snapshot stays, as it always does with Velero.
      // Those (and only those) are exempt from the leak check.
      const down = { to: Infinity };
      const unnoticed = new Set<string>();
      const crashed = crash
        ? (async () => {
            await new Promise((r) => setTimeout(r, 300 + Math.floor(random() * 400)));
            await operator.stop('SIGKILL');
            await new Promise((r) => setTimeout(r, 1000));
            operator = startOperator();
            await operator.waitForLog('caches synced');
            down.to = Date.now();
          })()
        : Promise.resolve();
      await Promise.all(
        fates.map(async ({ s, fate, delayMs }) => {
          if (fate === 'prepared-then-cancel') {
            await eventually(
              `${s.name} Prepared`,
              async () => (await getDataUpload(client, s.name))?.status?.phase === 'Prepared',
              60_000,
            );
            await cancelViaApi(client, s.name);
            landedIn.Prepared = (landedIn.Prepared ?? 0) + 1;
            return;
          }
          await new Promise((r) => setTimeout(r, delayMs));
          const du = await getDataUpload(client, s.name);
          const where = du?.status?.phase || 'New';
          landedIn[where] = (landedIn[where] ?? 0) + 1;
          if (fate === 'cancel') await cancelViaApi(client, s.name);
          else {
            await deleteViaApi(client, s.name);
            const unheld = !(du?.metadata.finalizers ?? []).length;
            // Noticed only in the killed operator's memory (a tombstone), or not at all while it was down.
            if (crash && unheld && down.to === Infinity) unnoticed.add(s.name);
          }
        }),
      );
      await crashed;
      await assertAllSettledAndClean(sources.filter((s) => !unnoticed.has(s.name)));
      if (unnoticed.size > 0)
        t.diagnostic(`deleted unheld while no operator ran (exempt): ${[...unnoticed].join(', ')}`);
      t.diagnostic(
        `cancels/deletes landed in ${JSON.stringify(landedIn)}; settled and clean ${((Date.now() - started) / 1000).toFixed(1)} s after the burst`,
      );
      // Whatever was canceled (not deleted) goes when its namespace-level test data is removed; delete them now so the
      // next round starts from an empty prepare queue.
      await Promise.all(sources.map((s) => deleteViaApi(client, s.name)));
      await eventually("the round's DataUploads gone", async () => {
        const dus = await listDataUploads(client);
        return sources.every((s) => !dus.has(s.name));
      });
    });
  }
});

describe('a DataUpload the API server can never expose fails at once and leaves nothing', () => {
  async function oneSource(prefix: string, storageClass: string, name: string): Promise<BurstSource> {
    const ns = await sourceNamespace(prefix);
    const [s] = await createSources(client, {
      namespace: ns,
      count: 1,
      storageClass,
      snapshotClass: 'e2e-vsc',
      duPrefix: 'unused',
    });
    return { ...s!, name };
  }

  test('a 100-character name, which cannot be the backup pod label value', async () => {
    const name = `long-${'n'.repeat(95)}`;
    const s = await oneSource('long-name', 'e2e-src', name);
    const started = Date.now();
    await createDataUpload(client, s);
    const du = await eventually(
      `${name} Failed`,
      async () => {
        const d = await getDataUpload(client, name);
        return d?.status?.phase === 'Failed' ? d : undefined;
      },
      20_000,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 10, `failed within seconds, not at the prepare timeout (${seconds} s)`);
    assert.match(
      du.status.message,
      /^metadata\.name: 100 characters is too long to expose; .*velero\.io\/data-upload=<name>.* at most 63 characters$/,
    );
    await assertAllSettledAndClean([s]);
    assert.match(await describeEvents(cluster, name), /Warning\s+InvalidSpec\s+.*metadata\.name: 100 characters/);
    await deleteViaApi(client, name);
  });

  test('a backup pod that PodSecurity admission forbids', async () => {
    const name = `spc-${process.pid % 1000}`;
    const s = await oneSource('forbidden-pod', 'e2e-src-spc', name);
    const started = Date.now();
    await createDataUpload(client, s);
    const du = await eventually(
      `${name} Failed`,
      async () => {
        const d = await getDataUpload(client, name);
        return d?.status?.phase === 'Failed' ? d : undefined;
      },
      20_000,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 10, `failed within seconds, not at the prepare timeout (${seconds} s)`);
    assert.match(
      du.status.message,
      new RegExp(
        `^create Pod velero/${name} rejected by the API server \\(403 Forbidden\\): pods "${name}" is forbidden: violates PodSecurity "baseline:latest": seLinuxOptions`,
      ),
    );
    // Exposing had re-homed the snapshot and made the PVC before the pod was refused: all of it is cleaned up.
    await assertAllSettledAndClean([s]);
    assert.match(await describeEvents(cluster, name), /Warning\s+ExposeRejected\s+.*violates PodSecurity/);
    await deleteViaApi(client, name);
  });
});
