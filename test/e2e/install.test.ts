/**
 * Installing with `kubectl apply -k config/default` on the bundled control plane (RBAC and PodSecurity enforced),
 * as a cluster admin would, and checking what the operator's ServiceAccount may and may not do.
 *
 * kwok marks the Deployment's pods Running without running any code; the e2e operator itself runs as a local
 * process with this ServiceAccount's token (see the controller tests and the demo).
 *
 * The installation is left in place at the end: applying is idempotent, and other e2e files (the controller's)
 * apply config/default too and need the velero namespace, so deleting it here would race them. Only the
 * namespaces this file creates are removed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  connectCluster,
  createTestNamespace,
  type ClusterInfo,
  type Cluster,
  type KubectlResult,
} from '../cluster/index.js';
import { RestClient } from '../cluster/rest.js';
import { waitFor } from '../cluster/wait.js';
import {
  REPO_ROOT,
  findManifest,
  podFromDeployment,
  renderKustomization,
  type Manifest,
} from '../install/manifests.js';

const CONFIG_DEFAULT = join(REPO_ROOT, 'config/default');
const OPERATOR_SA = 'system:serviceaccount:velero:dataupload-operator';
const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};

type Connected = ClusterInfo & { kubectl: Cluster['kubectl'] };
let cluster: Connected;
let deployment: Manifest;
let firstApply: KubectlResult;
const createdNamespaces: string[] = [];

/** kubectl that fails the test with its stderr when it exits non-zero. */
async function kubectlOk(args: string[], input?: string): Promise<string> {
  const res = await cluster.kubectl(args, input === undefined ? undefined : { input });
  assert.equal(res.code, 0, `kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

async function testNamespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = await createTestNamespace(cluster, prefix, labels);
  createdNamespaces.push(name);
  return name;
}

/** A server-side dry-run create: the request passes authentication, admission (PodSecurity) and validation. */
function dryRunCreate(manifest: object): Promise<KubectlResult> {
  return cluster.kubectl(['create', '--dry-run=server', '-o', 'name', '-f', '-'], {
    input: JSON.stringify(manifest),
  });
}

before(async () => {
  cluster = connectCluster();
  deployment = findManifest(await renderKustomization('config/default'), 'Deployment', 'dataupload-operator');
  firstApply = await cluster.kubectl(['apply', '-k', CONFIG_DEFAULT]);
  assert.equal(firstApply.code, 0, `kubectl apply -k config/default failed: ${firstApply.stderr}`);
  await kubectlOk(['wait', '--for=condition=Established', 'crd/datauploads.velero.io', '--timeout=60s']);
});

after(async () => {
  // kwok "runs" the Deployment's pods without code; scale it down again, as the controller tests do.
  await cluster.kubectl(['scale', 'deployment/dataupload-operator', '-n', 'velero', '--replicas=0']);
  if (createdNamespaces.length > 0) {
    await cluster.kubectl(['delete', 'namespace', ...createdNamespaces, '--wait=false', '--ignore-not-found']);
  }
});

describe('kubectl apply -k config/default', { timeout: 180_000 }, () => {
  test('installs the CRD, RBAC, the Deployment and the ConfigMap', () => {
    for (const object of [
      'namespace/velero',
      'customresourcedefinition.apiextensions.k8s.io/datauploads.velero.io',
      'serviceaccount/dataupload-operator',
      'role.rbac.authorization.k8s.io/dataupload-operator',
      'role.rbac.authorization.k8s.io/dataupload-operator-leader-election',
      'clusterrole.rbac.authorization.k8s.io/dataupload-operator',
      'rolebinding.rbac.authorization.k8s.io/dataupload-operator',
      'clusterrolebinding.rbac.authorization.k8s.io/dataupload-operator',
      'configmap/node-agent-config',
      'deployment.apps/dataupload-operator',
    ]) {
      assert.match(firstApply.stdout, new RegExp(`^${object.replace(/\./g, '\\.')} `, 'm'), object);
    }
  });

  test('is idempotent: applying again creates nothing', async () => {
    const again = await kubectlOk(['apply', '-k', CONFIG_DEFAULT]);
    assert.doesNotMatch(again, / created$/m);
  });

  test('gives the velero namespace PodSecurity enforce baseline, warn and audit restricted', async () => {
    const labels = JSON.parse(await kubectlOk(['get', 'namespace', 'velero', '-o', 'jsonpath={.metadata.labels}']));
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'baseline');
    assert.equal(labels['pod-security.kubernetes.io/warn'], 'restricted');
    assert.equal(labels['pod-security.kubernetes.io/audit'], 'restricted');
  });

  test('the Deployment gets two pods admitted and scheduled (kwok runs them without code)', async () => {
    const selector = 'app.kubernetes.io/name=dataupload-operator,app.kubernetes.io/component=controller';
    const phases = await waitFor(
      async () => {
        const out = await kubectlOk([
          'get',
          'pods',
          '-n',
          'velero',
          '-l',
          selector,
          '-o',
          'jsonpath={.items[*].status.phase}',
        ]);
        const list = out.split(/\s+/).filter((p) => p !== '');
        return list.length >= 2 && list.every((p) => p === 'Running') ? list : undefined;
      },
      { description: 'two Running operator pods in velero', timeoutMs: 90_000, intervalMs: 500 },
    );
    assert.ok(phases.length >= 2);
  });
});

describe('PodSecurity', { timeout: 120_000 }, () => {
  test('the operator pod from the manifests is admitted in a namespace that enforces restricted', async () => {
    const ns = await testNamespace('install-restricted', RESTRICTED);
    await kubectlOk(['create', 'serviceaccount', 'dataupload-operator', '-n', ns]);
    const res = await dryRunCreate(podFromDeployment(deployment, ns, 'dataupload-operator-dry-run'));
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), 'pod/dataupload-operator-dry-run');
    assert.doesNotMatch(res.stderr, /violate/);
  });

  test('the same namespace refuses that pod once it runs as root', async () => {
    const ns = await testNamespace('install-restricted-root', RESTRICTED);
    await kubectlOk(['create', 'serviceaccount', 'dataupload-operator', '-n', ns]);
    const pod = podFromDeployment(deployment, ns, 'dataupload-operator-as-root') as Manifest & {
      spec: { securityContext: Record<string, unknown> };
    };
    pod.spec.securityContext = { ...pod.spec.securityContext, runAsNonRoot: false, runAsUser: 0 };
    const res = await dryRunCreate(pod);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /violates PodSecurity "restricted:latest".*runAsNonRoot/);
  });

  test('a root backupPod is admitted in velero, with a warning that it is not restricted', async () => {
    const res = await dryRunCreate(backupPodLike({ runAsUser: 0 }));
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /would violate PodSecurity "restricted:latest"/);
  });

  test('a backupPod with the spc_t SELinux type (spcNoRelabeling) is refused in velero', async () => {
    const res = await dryRunCreate(backupPodLike({ runAsUser: 0, seLinuxOptions: { type: 'spc_t' } }));
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /violates PodSecurity "baseline:latest".*seLinuxOptions/);
  });
});

/** A pod shaped like Velero's backupPod (root, the backupPVC mounted), for admission checks only. */
function backupPodLike(securityContext: Record<string, unknown>): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'backup-pod-dry-run', namespace: 'velero' },
    spec: {
      securityContext,
      containers: [
        {
          name: 'backup-pod-dry-run',
          image: 'velero/velero:v1.18.0',
          command: ['/velero-helper', 'pause'],
          volumeMounts: [{ name: 'backup-pvc', mountPath: '/backup-pvc' }],
        },
      ],
      volumes: [{ name: 'backup-pvc', persistentVolumeClaim: { claimName: 'backup-pvc-dry-run', readOnly: true } }],
    },
  };
}

describe('RBAC of the operator ServiceAccount', { timeout: 120_000 }, () => {
  /** What `kubectl auth can-i` answers for the operator: `yes` or `no`. */
  async function canI(args: string[]): Promise<string> {
    const res = await cluster.kubectl(['auth', 'can-i', ...args, '--as', OPERATOR_SA]);
    return res.stdout.trim();
  }

  const cases: { can: boolean; what: string; args: string[] }[] = [
    { can: false, what: 'get secrets in velero', args: ['get', 'secrets', '-n', 'velero'] },
    { can: false, what: 'list secrets in any namespace', args: ['list', 'secrets', '--all-namespaces'] },
    { can: false, what: 'get secrets in kube-system', args: ['get', 'secrets', '-n', 'kube-system'] },
    { can: false, what: 'create pods outside velero', args: ['create', 'pods', '-n', 'default'] },
    { can: false, what: 'delete pods outside velero', args: ['delete', 'pods', '-n', 'default'] },
    { can: false, what: 'delete nodes', args: ['delete', 'nodes'] },
    { can: false, what: 'delete persistentvolumes', args: ['delete', 'persistentvolumes'] },
    { can: false, what: 'delete PVCs outside velero', args: ['delete', 'persistentvolumeclaims', '-n', 'default'] },
    {
      can: false,
      what: 'update datauploads outside velero',
      args: ['update', 'datauploads.velero.io', '-n', 'default'],
    },
    { can: false, what: 'create rolebindings in velero', args: ['create', 'rolebindings', '-n', 'velero'] },
    { can: false, what: 'update its own Role', args: ['update', 'roles', '-n', 'velero'] },
    { can: true, what: 'create pods in velero', args: ['create', 'pods', '-n', 'velero'] },
    { can: true, what: 'watch datauploads in velero', args: ['watch', 'datauploads.velero.io', '-n', 'velero'] },
    { can: true, what: 'update datauploads in velero', args: ['update', 'datauploads.velero.io', '-n', 'velero'] },
    {
      can: true,
      what: 'delete volumesnapshots in another namespace',
      args: ['delete', 'volumesnapshots.snapshot.storage.k8s.io', '-n', 'default'],
    },
    { can: true, what: 'patch persistentvolumes', args: ['patch', 'persistentvolumes'] },
    { can: true, what: 'update its Lease in velero', args: ['update', 'leases.coordination.k8s.io', '-n', 'velero'] },
  ];
  for (const c of cases) {
    test(`the operator ${c.can ? 'can' : 'cannot'} ${c.what}`, async () => {
      assert.equal(await canI(c.args), c.can ? 'yes' : 'no');
    });
  }

  test('a token of the ServiceAccount is refused listing secrets (403) but may list datauploads', async () => {
    const token = (
      await kubectlOk(['create', 'token', 'dataupload-operator', '-n', 'velero', '--duration=10m'])
    ).trim();
    const client = new RestClient({ server: cluster.server, caFile: cluster.caFile, token });
    try {
      for (const path of ['/api/v1/namespaces/velero/secrets', '/api/v1/secrets', '/api/v1/namespaces/default/pods']) {
        const res = await client.send<{ reason?: string }>({ path });
        assert.equal(res.status, 403, path);
        assert.equal(res.body.reason, 'Forbidden', path);
      }
      // A CRD's storage answers 429 until its watch cache is ready; RBAC answers before that, hence the wait.
      const path = '/apis/velero.io/v2alpha1/namespaces/velero/datauploads';
      const status = await waitFor(
        async () => {
          const res = await client.send({ path });
          return res.status === 429 ? undefined : res.status;
        },
        { description: `GET ${path} to answer something other than 429`, timeoutMs: 30_000 },
      );
      assert.equal(status, 200);
    } finally {
      client.close();
    }
  });
});
