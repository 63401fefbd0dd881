/**
 * backupPVC.<class>.secretNames / configMapNames (Velero 1.18.3) on the real control plane: the backup class's
 * driver (the fake CSI) provisions only when the Secret and ConfigMap exist in the backup PVC's namespace. Without
 * the opt-in permissions a DataUpload that needs copies fails at once, naming the overlay; with them, copies are
 * made, shared by concurrent DataUploads, refused on a name collision, and never left behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { adminRestClient, connectCluster, createTestNamespace } from '../cluster/index.js';
import { applyManifest, deleteNamespaces, kubectlOk } from '../cluster/testing.js';
import {
  cancelViaApi,
  createDataUpload,
  createSources,
  deleteViaApi,
  getDataUpload,
  leftovers,
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
  REPO,
  VELERO_NS,
} from './support/operator.js';

const cluster = connectCluster();
const client = adminRestClient(cluster);
const workDir = mkdtempSync(join(tmpdir(), 'duo-copies-'));
const namespaces: string[] = [];
const CONFIG = 'e2e-copies-config';
const SOURCE_CLASS = 'e2e-src-enc';
const COPY_LABEL = 'velero.io/backup-pvc-secret';
let kubeconfig = '';
let operator: OperatorProcess | undefined;
let seq = 0;

async function startOperator(): Promise<void> {
  await operator?.stop('SIGTERM');
  operator = OperatorProcess.start({
    kubeconfig,
    logDir: workDir,
    name: `copies-${++seq}`,
    args: ['--node-agent-configmap', CONFIG, '--prepare-timeout', '10m', '--leader-elect=false'],
  });
  await operator.waitForLog('caches synced');
}

/** A source namespace holding the Secret and ConfigMap the backup class needs, and `count` ready sources. */
async function sourcesWithSecrets(prefix: string, count: number, token = 's3cr3t'): Promise<BurstSource[]> {
  const ns = await createTestNamespace(cluster, prefix);
  namespaces.push(ns);
  await applyManifest(
    cluster,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'kms-token', namespace: ns },
          stringData: { token },
        },
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'vault-config', namespace: ns },
          data: { vault: 'x' },
        },
      ],
    }),
  );
  return createSources(client, {
    namespace: ns,
    count,
    storageClass: SOURCE_CLASS,
    snapshotClass: 'e2e-vsc',
    duPrefix: `${prefix}-${process.pid % 1000}`,
  });
}

/** The copies in velero, by kind/name, with their user labels. */
async function copies(): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const kind of ['secrets', 'configmaps']) {
    const list = await client.call<{ items: { metadata: { name: string; labels?: Record<string, string> } }[] }>({
      path: `/api/v1/namespaces/${VELERO_NS}/${kind}?labelSelector=${encodeURIComponent(COPY_LABEL)}`,
    });
    for (const item of list.items) {
      const users = Object.keys(item.metadata.labels ?? {}).filter((k) => k.startsWith('used-by.'));
      found.set(`${kind}/${item.metadata.name}`, users);
    }
  }
  return found;
}

async function waitPhase(name: string, phases: string[], timeoutMs = 60_000): Promise<Record<string, any>> {
  return eventually(
    `${name} in ${phases.join('|')}`,
    async () => {
      const du = await getDataUpload(client, name);
      return du && phases.includes(du.status?.phase) ? du : undefined;
    },
    timeoutMs,
  );
}

async function assertClean(sources: BurstSource[]): Promise<void> {
  await eventually(
    'nothing left, no copies',
    async () => {
      const left = [...(await leftovers(client, sources)), ...[...(await copies()).keys()].map((k) => `copy ${k}`)];
      if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
      return true;
    },
    60_000,
  );
}

before(async () => {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  const sc = (name: string, parameters: Record<string, string> = {}) => ({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name },
    provisioner: 'fake.csi.local',
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    parameters,
  });
  await applyManifest(
    cluster,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        sc(SOURCE_CLASS),
        sc('e2e-enc', {
          'csi.storage.k8s.io/provisioner-secret-name': 'kms-token',
          'csi.storage.k8s.io/provisioner-secret-namespace': '${pvc.namespace}',
          'fake.csi.local/requires-configmap': 'vault-config',
        }),
      ],
    }),
  );
  await createNodeAgentConfigMap(cluster, CONFIG, {
    backupPVC: {
      [SOURCE_CLASS]: { storageClass: 'e2e-enc', secretNames: ['kms-token'], configMapNames: ['vault-config'] },
    },
  });
  kubeconfig = await operatorKubeconfig(cluster, workDir);
});

after(async () => {
  const code = await operator?.stop('SIGTERM');
  // Leave config/default's RBAC as the other files expect it: no Secret access at all.
  await kubectlOk(
    cluster,
    ['delete', '--ignore-not-found', '-f', '-'],
    await kubectlOk(cluster, ['kustomize', join(REPO, 'config/components/backup-pvc-copies')]).catch(() => ''),
  );
  client.close();
  await deleteNamespaces(cluster, ...namespaces);
  assert.equal(code, 0, `the operator exits 0 (log: ${operator?.logFile})`);
});

describe('Secret and ConfigMap copies for the backup PVC', { timeout: 300_000 }, () => {
  test('without the opt-in permission: Failed at once, naming the permission and the overlay, nothing made', async () => {
    await startOperator();
    const [s] = await sourcesWithSecrets('copies-denied', 1);
    const started = Date.now();
    await createDataUpload(client, s!);
    const du = await waitPhase(s!.name, ['Failed'], 20_000);
    assert.ok(Date.now() - started < 10_000, 'within seconds');
    assert.match(
      du.status.message,
      /^backupPVC\["e2e-src-enc"\]\.secretNames needs copies of Secrets, but the operator may not list secrets in namespace "velero"/,
    );
    assert.match(du.status.message, /kubectl apply -k config\/secret-copies/);
    assert.match(await describeEvents(cluster, s!.name), /Warning\s+MissingPermission\s+/);
    await assertClean([s!]);
    await deleteViaApi(client, s!.name);
  });

  test('with config/secret-copies: copied before the PVC, the PVC provisions, cancel deletes the copies', async () => {
    await kubectlOk(cluster, ['apply', '--server-side', '--force-conflicts', '-k', join(REPO, 'config/secret-copies')]);
    await startOperator();
    const [s] = await sourcesWithSecrets('copies-ok', 1);
    await createDataUpload(client, s!);
    await waitPhase(s!.name, ['Prepared']);
    const made = await copies();
    assert.deepEqual([...made.keys()].sort(), ['configmaps/vault-config', 'secrets/kms-token']);
    for (const users of made.values()) assert.equal(users.length, 1);
    await cancelViaApi(client, s!.name);
    await waitPhase(s!.name, ['Canceled']);
    await assertClean([s!]);
    await deleteViaApi(client, s!.name);
  });

  test('concurrent DataUploads share one copy; another namespace with other content collides; the last user deletes it', async () => {
    const [a, b] = await sourcesWithSecrets('copies-shared', 2);
    await Promise.all([createDataUpload(client, a!), createDataUpload(client, b!)]);
    await Promise.all([waitPhase(a!.name, ['Prepared']), waitPhase(b!.name, ['Prepared'])]);
    assert.equal((await copies()).get('secrets/kms-token')?.length, 2, 'one copy, two users (Velero fails the second)');

    const [other] = await sourcesWithSecrets('copies-other', 1, 'a-different-token');
    await createDataUpload(client, other!);
    const failed = await waitPhase(other!.name, ['Failed'], 20_000);
    assert.match(
      failed.status.message,
      /^copy Secret into velero\/kms-token failed \(409 Collision\): Secret velero\/kms-token is a copy with other content/,
    );

    await cancelViaApi(client, a!.name);
    await waitPhase(a!.name, ['Canceled']);
    await eventually('a releases its use', async () => (await copies()).get('secrets/kms-token')?.length === 1);
    assert.equal((await getDataUpload(client, b!.name))?.status?.phase, 'Prepared', 'b keeps its copy');
    await cancelViaApi(client, b!.name);
    await assertClean([a!, b!, other!]);
    await Promise.all([a!, b!, other!].map((s) => deleteViaApi(client, s.name)));
  });

  test('a Secret the config names that does not exist fails at once with the API server words', async () => {
    const ns = await createTestNamespace(cluster, 'copies-missing');
    namespaces.push(ns);
    const [s] = await createSources(client, {
      namespace: ns,
      count: 1,
      storageClass: SOURCE_CLASS,
      snapshotClass: 'e2e-vsc',
      duPrefix: `copies-missing-${process.pid % 1000}`,
    });
    await createDataUpload(client, s!);
    const du = await waitPhase(s!.name, ['Failed'], 20_000);
    assert.equal(
      du.status.message,
      'copy Secret into velero/kms-token failed (404 NotFound): secrets "kms-token" not found',
    );
    await assertClean([s!]);
    await deleteViaApi(client, s!.name);
  });

  test('canceled or deleted at random moments while exposing, no copy is left behind', async () => {
    const random = seededRandom(Number(process.env.DUO_LEAK_SEED ?? Date.now() % 1_000_000));
    const sources = await sourcesWithSecrets('copies-burst', 12);
    await Promise.all(sources.map((s) => createDataUpload(client, s)));
    await Promise.all(
      sources.map(async (s) => {
        await new Promise((r) => setTimeout(r, Math.floor(random() * 1500)));
        if (random() < 0.5) await cancelViaApi(client, s.name);
        else await deleteViaApi(client, s.name);
      }),
    );
    await assertClean(sources);
    await Promise.all(sources.map((s) => deleteViaApi(client, s.name)));
  });
});
