/**
 * Smoke tests of the bundled control plane: what the operator's e2e tests rely on really happens (scheduling,
 * kwok pods, PodSecurity, RBAC, fake CSI snapshots and provisioning failures).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FAKE_CSI_COMPONENT, FAKE_CSI_DRIVER } from '../cluster/fake-csi-plan.js';
import { adminRestClient, connectCluster, createTestNamespace } from '../cluster/index.js';
import { kubeconfigYaml } from '../cluster/pki.js';
import { RestClient } from '../cluster/rest.js';
import { applyManifest, deleteNamespaces, kubectlOk } from '../cluster/testing.js';
import { waitFor } from '../cluster/wait.js';

const cluster = connectCluster();
const api = adminRestClient(cluster);
const namespaces: string[] = [];
const clusterScoped: string[] = [];

after(async () => {
  await deleteNamespaces(cluster, ...namespaces);
  if (clusterScoped.length > 0)
    await cluster.kubectl(['delete', '--ignore-not-found', '--wait=false', ...clusterScoped]);
  api.close();
});

async function namespace(prefix: string, labels?: Record<string, string>): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix, labels);
  namespaces.push(ns);
  return ns;
}

function list(...items: object[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

function pod(ns: string, name: string, spec: object = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: { containers: [{ name: 'main', image: 'registry.invalid/nothing:1' }], ...spec },
  };
}

function claim(ns: string, name: string, o: { storageClass: string; mode?: string; dataSource?: object }): object {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: ns },
    spec: {
      storageClassName: o.storageClass,
      accessModes: [o.mode ?? 'ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...(o.dataSource ? { dataSource: o.dataSource } : {}),
    },
  };
}

function storageClass(name: string, parameters: Record<string, string> = {}): object {
  clusterScoped.push(`storageclass/${name}`);
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name },
    provisioner: FAKE_CSI_DRIVER,
    parameters,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
}

/** GETs an object until `predicate` holds, and returns it. */
function waitForObject<T>(path: string, predicate: (obj: T) => boolean, description: string): Promise<T> {
  return waitFor(
    async () => {
      const obj = await api.call<T>({ path });
      return predicate(obj) ? obj : undefined;
    },
    { description, timeoutMs: 60_000, intervalMs: 250 },
  );
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

test('kubectl lists the three kwok nodes as Ready', async () => {
  const out = await kubectlOk(cluster, ['get', 'nodes', '-o', 'json']);
  const nodes = (JSON.parse(out) as { items: { metadata: { name: string }; status: { conditions: Condition[] } }[] })
    .items;
  const ready = nodes
    .filter((n) => n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((n) => n.metadata.name)
    .sort();
  assert.deepEqual(ready, ['kwok-node-0', 'kwok-node-1', 'kwok-node-2']);
});

test('a pod is scheduled onto a kwok node and reaches Running', async () => {
  const ns = await namespace('pod-runs');
  await applyManifest(cluster, list(pod(ns, 'web')));
  const running = await waitForObject<{ spec: { nodeName?: string }; status: { phase?: string; podIP?: string } }>(
    `/api/v1/namespaces/${ns}/pods/web`,
    (p) => p.status.phase === 'Running',
    'pod web to be Running',
  );
  assert.match(running.spec.nodeName ?? '', /^kwok-node-[0-2]$/);
  assert.match(running.status.podIP ?? '', /^203\.0\.113\./);
});

test('a PVC restored from a VolumeSnapshot of a fake-class PVC binds', async () => {
  const ns = await namespace('snapshot-restore');
  const sc = `${ns}-fake`;
  const vsc = `${ns}-snap`;
  clusterScoped.push(`volumesnapshotclass/${vsc}`);
  await applyManifest(
    cluster,
    list(
      storageClass(sc),
      {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshotClass',
        metadata: { name: vsc },
        driver: FAKE_CSI_DRIVER,
        deletionPolicy: 'Delete',
      },
      claim(ns, 'source', { storageClass: sc }),
      {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshot',
        metadata: { name: 'snap', namespace: ns },
        spec: { volumeSnapshotClassName: vsc, source: { persistentVolumeClaimName: 'source' } },
      },
      claim(ns, 'restored', {
        storageClass: sc,
        dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap' },
      }),
    ),
  );
  const snapshot = await waitForObject<{ status?: { readyToUse?: boolean; restoreSize?: string } }>(
    `/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots/snap`,
    (vs) => vs.status?.readyToUse === true,
    'the snapshot to be ready',
  );
  assert.equal(snapshot.status?.restoreSize, '1Gi');
  const restored = await waitForObject<{ spec: { volumeName?: string }; status: { phase?: string } }>(
    `/api/v1/namespaces/${ns}/persistentvolumeclaims/restored`,
    (pvc) => pvc.status.phase === 'Bound',
    'the restored claim to be Bound',
  );
  const pv = await api.call<{ metadata: { annotations: Record<string, string> }; spec: { csi: { driver: string } } }>({
    path: `/api/v1/persistentvolumes/${restored.spec.volumeName}`,
  });
  assert.equal(pv.spec.csi.driver, FAKE_CSI_DRIVER);
  assert.equal(pv.metadata.annotations['pv.kubernetes.io/provisioned-by'], FAKE_CSI_DRIVER);
});

test("a pod whose nodeSelector matches no node shows the scheduler's Unschedulable message", async () => {
  const ns = await namespace('unschedulable');
  await applyManifest(cluster, list(pod(ns, 'nowhere', { nodeSelector: { 'example.com/no-such-label': 'x' } })));
  const stuck = await waitForObject<{ status: { phase?: string; conditions?: Condition[] } }>(
    `/api/v1/namespaces/${ns}/pods/nowhere`,
    (p) => p.status.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False') ?? false,
    'PodScheduled=False',
  );
  const scheduled = stuck.status.conditions!.find((c) => c.type === 'PodScheduled')!;
  assert.equal(scheduled.reason, 'Unschedulable');
  assert.match(
    scheduled.message ?? '',
    /0\/3 nodes are available: 3 node\(s\) didn't match Pod's node affinity\/selector/,
  );
  assert.equal(stuck.status.phase, 'Pending');
});

test('a namespace enforcing the restricted pod security level rejects a privileged root pod', async () => {
  const ns = await namespace('restricted', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  const privileged = pod(ns, 'root', {
    containers: [
      {
        name: 'main',
        image: 'registry.invalid/nothing:1',
        securityContext: { privileged: true, runAsUser: 0 },
      },
    ],
  });
  const refused = await cluster.kubectl(['apply', '-f', '-'], { input: list(privileged) });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /violates PodSecurity "restricted:latest"/);
  assert.match(refused.stderr, /privileged/);

  const compliant = pod(ns, 'nonroot', {
    securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name: 'main',
        image: 'registry.invalid/nothing:1',
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      },
    ],
  });
  await applyManifest(cluster, list(compliant));
});

test('a token bound to a get-pods Role is refused list secrets and allowed to get a pod', async () => {
  const ns = await namespace('rbac');
  await applyManifest(
    cluster,
    list(
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'limited', namespace: ns } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'get-pods', namespace: ns },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'limited-get-pods', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'get-pods' },
        subjects: [{ kind: 'ServiceAccount', name: 'limited', namespace: ns }],
      },
      pod(ns, 'target'),
    ),
  );
  const token = (await kubectlOk(cluster, ['create', 'token', 'limited', '-n', ns, '--duration=10m'])).trim();
  const limited = new RestClient({ server: cluster.server, caFile: cluster.caFile, token });
  const dir = await mkdtemp(join(tmpdir(), 'duo-rbac-'));
  try {
    await waitFor(async () => (await limited.send({ path: `/api/v1/namespaces/${ns}/pods/target` })).status === 200, {
      description: 'the RoleBinding to take effect',
      timeoutMs: 15_000,
    });
    const secrets = await limited.send<{ reason: string; message: string }>({
      path: `/api/v1/namespaces/${ns}/secrets`,
    });
    assert.equal(secrets.status, 403);
    assert.equal(secrets.body.reason, 'Forbidden');
    assert.match(secrets.body.message, new RegExp(`serviceaccount:${ns}:limited" cannot list resource "secrets"`));
    assert.equal((await limited.send({ path: `/api/v1/namespaces/${ns}/pods` })).status, 403, 'list is not get');

    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      kubeconfigYaml({ server: cluster.server, caFile: cluster.caFile, user: 'limited', token }),
    );
    const viaKubectl = await cluster.kubectl(['get', 'secrets', '-n', ns], { kubeconfig });
    assert.notEqual(viaKubectl.code, 0);
    assert.match(viaKubectl.stderr, /Forbidden/);
    const allowed = await cluster.kubectl(['get', 'pod', 'target', '-n', ns, '-o', 'name'], { kubeconfig });
    assert.equal(allowed.stdout.trim(), 'pod/target', allowed.stderr);
  } finally {
    limited.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a StorageClass refusing ReadOnlyMany leaves a ROX claim Pending with a ProvisioningFailed warning', async () => {
  const ns = await namespace('refuse-rox');
  const sc = `${ns}-no-rox`;
  await applyManifest(
    cluster,
    list(
      storageClass(sc, { [`${FAKE_CSI_DRIVER}/refuse-access-modes`]: 'ReadOnlyMany' }),
      claim(ns, 'data', { storageClass: sc, mode: 'ReadOnlyMany' }),
    ),
  );
  interface CoreEvent {
    type: string;
    reason: string;
    message: string;
    count: number;
    source: { component: string };
  }
  const query = `fieldSelector=${encodeURIComponent('involvedObject.name=data,reason=ProvisioningFailed')}`;
  // The first report comes at once; the repeat (about a second later) must bump the same Event's count.
  const events = await waitForObject<{ items: CoreEvent[] }>(
    `/api/v1/namespaces/${ns}/events?${query}`,
    (l) => l.items.some((e) => e.count >= 2),
    'a repeated ProvisioningFailed event',
  );
  assert.equal(events.items.length, 1);
  const event = events.items[0]!;
  assert.equal(event.type, 'Warning');
  assert.equal(event.source.component, FAKE_CSI_COMPONENT);
  assert.equal(
    event.message,
    `failed to provision volume with StorageClass "${sc}": rpc error: code = InvalidArgument desc = access mode ReadOnlyMany is not supported`,
  );
  const pvc = await api.call<{ status: { phase: string } }>({
    path: `/api/v1/namespaces/${ns}/persistentvolumeclaims/data`,
  });
  assert.equal(pvc.status.phase, 'Pending');
});
