/**
 * The DataUpload controller on the real control plane, with the operator running as a separate process under
 * its own ServiceAccount (the RBAC of config/default is what it gets).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCluster, createTestNamespace } from '../cluster/index.js';
import { applyManifest, deleteNamespaces, kubectlOk } from '../cluster/testing.js';
import {
  assertNothingLeft,
  cancelDataUpload,
  createNodeAgentConfigMap,
  createSource,
  dataUploadManifest,
  describeEvents,
  E2E_NODE_AGENT_CONFIG,
  ensureStorageClasses,
  eventually,
  getJson,
  installOperatorManifests,
  OperatorProcess,
  operatorKubeconfig,
  REPO,
  VELERO_NS,
  waitForPhase,
} from './support/operator.js';

const cluster = connectCluster();
const workDir = mkdtempSync(join(tmpdir(), 'duo-controller-'));
const namespaces: string[] = [];
let kubeconfig = '';
let seq = 0;

async function sourceNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix);
  namespaces.push(ns);
  return ns;
}

function duName(prefix: string): string {
  return `${prefix}-${process.pid % 1000}-${++seq}`;
}

/** A source volume with a snapshot in its own namespace, and the name its DataUpload will have. */
interface Upload {
  ns: string;
  name: string;
  snapshot: string;
  storageClass: string;
}

async function newSource(
  prefix: string,
  storageClass: string,
  options: { snapshotClass?: string; waitReady?: boolean } = {},
): Promise<Upload> {
  const ns = await sourceNamespace(prefix);
  const upload = { ns, name: duName(prefix), snapshot: 'snap', storageClass };
  await createSource(cluster, { namespace: ns, storageClass, snapshot: upload.snapshot, ...options });
  return upload;
}

/** Creates the DataUpload, as the Velero server would. */
async function submit(u: Upload, extra: { cancel?: boolean } = {}): Promise<void> {
  await applyManifest(
    cluster,
    dataUploadManifest({
      name: u.name,
      sourceNamespace: u.ns,
      snapshot: u.snapshot,
      storageClass: u.storageClass,
      ...extra,
    }),
  );
}

async function upload(prefix: string, storageClass: string, extra: { cancel?: boolean } = {}): Promise<Upload> {
  const u = await newSource(prefix, storageClass);
  await submit(u, extra);
  return u;
}

function cancel(name: string): Promise<void> {
  return cancelDataUpload(cluster, name);
}

/** `dataupload-operator diagnose <target>` with the admin kubeconfig; resolves with stdout. */
function runDiagnose(target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(REPO, 'bin/dataupload-operator.js'), 'diagnose', '--kubeconfig', cluster.kubeconfig, target],
      (err, stdout, stderr) => (err ? reject(new Error(`diagnose failed: ${stderr}`)) : resolve(stdout)),
    );
  });
}

function nothingLeft(u: Upload): Promise<void> {
  return assertNothingLeft(cluster, { duName: u.name, sourceNamespace: u.ns, snapshot: u.snapshot });
}

before(async () => {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  await createNodeAgentConfigMap(cluster, 'e2e-node-agent-config', E2E_NODE_AGENT_CONFIG);
  kubeconfig = await operatorKubeconfig(cluster, workDir);
});

after(async () => {
  await deleteNamespaces(cluster, ...namespaces);
});

describe('the operator, running as its own ServiceAccount', () => {
  let operator: OperatorProcess;

  before(() => {
    operator = OperatorProcess.start({
      kubeconfig,
      logDir: workDir,
      name: 'shared',
      args: ['--node-agent-configmap', 'e2e-node-agent-config', '--prepare-timeout', '12s', '--leader-elect=false'],
    });
  });

  after(async () => {
    const code = await operator.stop('SIGTERM');
    assert.equal(code, 0, `the operator exits 0 after SIGTERM (log: ${operator.logFile})`);
  });

  test('a DataUpload reaches Prepared with the backupPVC and backupPod its storage class config asks for', async () => {
    const u = await upload('happy', 'e2e-src');
    const name = u.name;

    const du = await waitForPhase(cluster, name, ['Prepared'], 60_000);
    assert.equal(du.status.acceptedByNode, 'e2e-node');
    assert.match(du.status.node, /^kwok-node-/);
    assert.deepEqual(du.metadata.finalizers, ['velero.io/data-upload-download-finalizer']);
    assert.equal(du.metadata.labels['velero.io/expose-on-going'], 'true');

    const pvc = await getJson(cluster, ['-n', VELERO_NS, 'pvc', name]);
    assert.equal(pvc!.spec.storageClassName, 'e2e-rox');
    assert.deepEqual(pvc!.spec.accessModes, ['ReadOnlyMany']);
    assert.equal(pvc!.spec.dataSource.name, name);
    const pod = await getJson(cluster, ['-n', VELERO_NS, 'pod', name]);
    const volume = pod!.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === name);
    assert.equal(volume.persistentVolumeClaim.readOnly, true);
    assert.equal(pod!.spec.containers[0].volumeMounts[0].readOnly, true);
    assert.equal(pod!.metadata.labels['velero.io/data-upload'], name);

    // Re-homed: the source snapshot and its content are gone, the backup content holds the handle.
    assert.equal(await getJson(cluster, ['-n', u.ns, 'volumesnapshot', u.snapshot]), undefined);
    const backupVsc = await getJson(cluster, ['volumesnapshotcontent', name]);
    assert.equal(backupVsc!.spec.deletionPolicy, 'Delete');
    assert.ok(backupVsc!.spec.source.snapshotHandle);

    const table = await kubectlOk(cluster, ['-n', VELERO_NS, 'get', 'datauploads', name]);
    assert.match(table, /STATUS\s+STARTED\s+BYTES DONE\s+TOTAL BYTES\s+STORAGE LOCATION\s+AGE\s+NODE/);
    assert.match(table, new RegExp(`${name}\\s+Prepared\\s+.*default\\s+\\S+\\s+kwok-node-`));
    // Prepared promptly: one Event summarises acceptance and exposing (lifecycle-events.ts), instead of three.
    const events = await eventually('the Prepared Event', async () => {
      const text = await describeEvents(cluster, name);
      return /Normal\s+Prepared/.test(text) ? text : undefined;
    });
    assert.match(
      events,
      /Normal\s+Prepared\s+.*backup pod velero\/\S+ is running on node kwok-node-\d+; snapshot \S+ exposed as backup PVC velero\/\S+ \(storage class e2e-rox, ReadOnlyMany\); accepted by e2e-node \d+s after creation, exposed \d+s later, running \d+s after that/,
    );
    assert.doesNotMatch(events, /Normal\s+(Accepted|Exposed)\s/);

    const writes = await eventually('the writes log line', () =>
      Promise.resolve(
        operator.logLines().find((l) => l.name === name && typeof l.writes === 'number' && l.phase === 'Prepared'),
      ),
    );
    assert.equal(writes.writes, 10, 'finalizer, accept, VS, VSC, retain, 2 deletes, PVC, pod, Prepared');
  });

  for (const [title, storageClass, causePattern, reason] of [
    [
      'a backupPVC whose storage class does not exist',
      'e2e-src-missing',
      /backup PVC Pending: storageclass\.storage\.k8s\.io "e2e-does-not-exist" not found/,
      'BackupPVCNotBound',
    ],
    ['a backupPVC whose driver refuses ReadOnlyMany', 'e2e-src-refuse', /ReadOnlyMany/, 'BackupPVCNotBound'],
  ] as const) {
    test(`${title} fails at the prepare timeout with Warning Events naming the cause, and leaves nothing`, async () => {
      const u = await upload('timeout', storageClass);
      const name = u.name;

      const du = await waitForPhase(cluster, name, ['Failed'], 60_000);
      assert.match(du.status.message, /^timeout on preparing data upload: /);
      assert.match(du.status.message, causePattern);
      assert.ok(du.status.completionTimestamp, 'completionTimestamp is set, unlike Velero');
      assert.equal(du.metadata.labels?.['velero.io/expose-on-going'], undefined);

      const events = await describeEvents(cluster, name);
      assert.match(events, new RegExp(`Warning\\s+${reason}`));
      assert.match(events, /Warning\s+PrepareTimeout/);
      assert.match(events, causePattern);
      await nothingLeft(u);
      await eventually('the finalizer to be removed', async () => {
        const now = await getJson(cluster, ['-n', VELERO_NS, 'dataupload', name]);
        return now && !(now.metadata.finalizers ?? []).length;
      });
    });
  }

  test('spec.cancel on a New DataUpload cancels it before anything is created', async () => {
    const u = await upload('cancel-new', 'e2e-src', { cancel: true });
    const name = u.name;
    const du = await waitForPhase(cluster, name, ['Canceled']);
    assert.equal(du.status.acceptedByNode, undefined, 'never accepted');
    assert.ok(du.status.startTimestamp && du.status.completionTimestamp);
    assert.equal(await getJson(cluster, ['-n', VELERO_NS, 'volumesnapshot', name]), undefined);
    await nothingLeft(u);
  });

  test('spec.cancel on an Accepted DataUpload cancels it and leaves nothing', async () => {
    const u = await newSource('cancel-acc', 'e2e-src', { snapshotClass: 'e2e-vsc-never', waitReady: false });
    await submit(u);
    const name = u.name;
    await waitForPhase(cluster, name, ['Accepted']);
    await cancel(name);
    await waitForPhase(cluster, name, ['Canceled']);
    await nothingLeft(u);
  });

  test('spec.cancel on a Prepared DataUpload cancels it and deletes every backup object', async () => {
    const u = await upload('cancel-prep', 'e2e-src');
    const name = u.name;
    await waitForPhase(cluster, name, ['Prepared']);
    await cancel(name);
    await waitForPhase(cluster, name, ['Canceled']);
    await nothingLeft(u);
    // Normal Events are recorded once the controller is idle (lifecycle-events.ts): a moment after the phase.
    await eventually('the Canceled Event', async () => /Normal\s+Canceled/.test(await describeEvents(cluster, name)));
  });

  test('deleting a Prepared DataUpload cancels it, cleans up, and lets it go', async () => {
    const u = await upload('delete', 'e2e-src');
    const name = u.name;
    await waitForPhase(cluster, name, ['Prepared']);
    await kubectlOk(cluster, ['-n', VELERO_NS, 'delete', 'dataupload', name, '--wait=false']);
    await eventually(
      'the DataUpload to be gone',
      async () => !(await getJson(cluster, ['-n', VELERO_NS, 'dataupload', name])),
    );
    await nothingLeft(u);
  });

  test('a backup pod that fails cancels the DataUpload at once, with diagnostics', async () => {
    const u = await upload('podfail', 'e2e-src-missing');
    const name = u.name;
    // The PVC never binds, so the pod stays Pending and unscheduled; then it fails, as a kubelet could report.
    await eventually('the backup pod', () => getJson(cluster, ['-n', VELERO_NS, 'pod', name]));

    // Meanwhile `diagnose` explains the live DataUpload the way the Events will.
    const report = await eventually('a diagnose report naming the unbound PVC', async () => {
      const out = await runDiagnose(`${VELERO_NS}/${name}`);
      return out.includes('storageclass.storage.k8s.io "e2e-does-not-exist" not found') ? out : undefined;
    });
    assert.match(report, new RegExp(`^DataUpload ${VELERO_NS}/${name}, phase Accepted`));
    assert.match(report, new RegExp(`PVC ${VELERO_NS}/${name}, phase Pending`));
    assert.match(report, /cause: backup PVC Pending: storageclass\.storage\.k8s\.io "e2e-does-not-exist" not found/);

    await kubectlOk(cluster, [
      '-n',
      VELERO_NS,
      'patch',
      'pod',
      name,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Failed","message":"injected by the test"}}',
    ]);
    const du = await waitForPhase(cluster, name, ['Canceled'], 10_000);
    assert.match(
      du.status.message,
      new RegExp(`^found a du ${VELERO_NS}/${name} with expose error: Pod is in abnormal state \\[Failed\\]`),
    );
    const events = await describeEvents(cluster, name);
    assert.match(events, /Warning\s+BackupPodUnrecoverable/);
    assert.match(events, /Warning\s+BackupPVCNotBound/);
    await nothingLeft(u);
  });

  test('a DataUpload without csiSnapshot fails at once with a message naming the field', async () => {
    const name = duName('invalid');
    await applyManifest(
      cluster,
      dataUploadManifest({
        name,
        sourceNamespace: 'nowhere',
        snapshot: 'x',
        storageClass: 'e2e-src',
        spec: { csiSnapshot: null },
      }),
    );
    const du = await waitForPhase(cluster, name, ['Failed'], 15_000);
    assert.equal(du.status.message, 'spec.csiSnapshot: required when spec.snapshotType is "CSI"');
    assert.match(await describeEvents(cluster, name), /Warning\s+InvalidSpec/);
  });

  test('DataUploads of another data mover are never touched', async () => {
    const name = duName('other');
    await applyManifest(
      cluster,
      dataUploadManifest({
        name,
        sourceNamespace: 'nowhere',
        snapshot: 'x',
        storageClass: 'e2e-src',
        spec: { datamover: 'acme' },
      }),
    );
    await new Promise((r) => setTimeout(r, 2000));
    const du = await getJson(cluster, ['-n', VELERO_NS, 'dataupload', name]);
    assert.equal(du!.status, undefined);
    assert.equal(du!.metadata.finalizers, undefined);
  });
});

describe('an operator restarted in the middle of exposing', () => {
  // Both operators run with leader election, as deployed: the second must first take over the crashed one's Lease.
  test('resumes where it stopped and reaches Prepared with exactly one of each backup object', async () => {
    const u = await newSource('restart', 'e2e-src');
    const { name, ns } = u;
    // Both run with leader election, as deployed: the second must first take over the crashed one's Lease.
    // The first is slow (2 requests/s) so the crash lands between expose steps.
    const slow = OperatorProcess.start({
      kubeconfig,
      logDir: workDir,
      name: 'slow',
      args: ['--node-agent-configmap', 'e2e-node-agent-config', '--kube-api-qps', '2', '--kube-api-burst', '1'],
    });
    try {
      await submit(u);
      await eventually(
        'the backup VolumeSnapshot',
        () => getJson(cluster, ['-n', VELERO_NS, 'volumesnapshot', name]),
        60_000,
      );
    } finally {
      await slow.stop('SIGKILL');
    }
    const mid = await getJson(cluster, ['-n', VELERO_NS, 'dataupload', name]);
    assert.equal(mid!.status.phase, 'Accepted', 'the crash happened mid-expose');
    assert.equal(await getJson(cluster, ['-n', VELERO_NS, 'pod', name]), undefined);

    const second = OperatorProcess.start({
      kubeconfig,
      logDir: workDir,
      name: 'second',
      args: ['--node-agent-configmap', 'e2e-node-agent-config'],
    });
    try {
      await waitForPhase(cluster, name, ['Prepared'], 60_000);
      const contents = (await getJson<{ items: any[] }>(cluster, ['volumesnapshotcontents']))!.items.filter(
        (c) =>
          (c.spec.volumeSnapshotRef.namespace === VELERO_NS && c.spec.volumeSnapshotRef.name === name) ||
          (c.spec.volumeSnapshotRef.namespace === ns && c.spec.volumeSnapshotRef.name === u.snapshot),
      );
      assert.deepEqual(
        contents.map((c) => c.metadata.name),
        [name],
        'only the backup content remains',
      );
      assert.equal(await getJson(cluster, ['-n', ns, 'volumesnapshot', u.snapshot]), undefined);
      const pvcs = (await getJson<{ items: any[] }>(cluster, ['-n', VELERO_NS, 'pvc']))!.items.filter(
        (p) => p.metadata.name === name,
      );
      assert.equal(pvcs.length, 1);
      await cancel(name);
      await waitForPhase(cluster, name, ['Canceled']);
      await nothingLeft(u);
    } finally {
      assert.equal(await second.stop('SIGTERM'), 0);
    }
  });
});
