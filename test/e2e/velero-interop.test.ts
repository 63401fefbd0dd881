/**
 * Our operator and Velero's own node-agent (v1.18.3, one `velero node-agent server` per kwok node) on the same
 * control plane.
 *
 * Beside each other, in a namespace of their own (`interop-*`, our PodSecurity labels, Velero installed with
 * `--node-agent-disable-host-path` as the README advises next to `config/default`, our Roles copied there):
 * - hand-off: DataUploads our operator exposed and marked Prepared are taken to InProgress by the node-agent on
 *   `status.node`, which logs no warning or error about them;
 * - a node-agent restarted while one of our DataUploads waits in Prepared (its data path slot busy) takes it on;
 * - coexistence: our operator (leader) and the node-agents race for a burst; each DataUpload is accepted once, all
 *   reach Prepared, each has exactly one backup VolumeSnapshot, VolumeSnapshotContent, PVC and Pod, and after a
 *   cancel of everything nothing is left, whoever accepted (ours usually wins every race, so a small wave created
 *   while ours is stopped makes sure the node-agents accepted some).
 *
 * Differential: Velero alone (its stock install, hostPath volumes and all, in a namespace with Velero's own
 * `privileged` labels) and our operator alone (same DaemonSet, same labels, in another namespace) expose the same
 * inputs under a matrix of node-agent configs. Every exposed object (backup VolumeSnapshot and VolumeSnapshotContent,
 * backupPVC, backupPod, the DataUpload as first seen Prepared, and the source snapshot objects, which both delete)
 * is normalised and compared field by field. Each difference must be explained by {@link ALLOWED_DIFFERENCES}, whose
 * entries README's "How it relates to Velero" lists too; anything else fails the test, and so does an entry that
 * explained nothing. Velero reads its config once at start, so each config is a restart of the node-agents and of our
 * operator. Configs with a `loadAffinity` get one DataUpload each: Velero 1.18.0 to 1.18.2 appended the OS
 * requirement to the shared config entry (velero#9735), so a second DataUpload under the same config would compare
 * against a corrupted affinity there (1.18.3 deep-copies it).
 *
 * kwok runs no container, so Velero's data mover never runs; where Velero waits for it (a cancel at InProgress) the
 * test plays its part, as test/e2e/velero-smoke.test.ts does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { adminRestClient, connectCluster, createTestNamespace } from '../cluster/index.js';
import { applyManifest, deleteNamespaces, kubectlOk } from '../cluster/testing.js';
import {
  installVelero,
  kwokNodeNames,
  relabelNamespace,
  startNodeAgents,
  uninstallVelero,
  VELERO_NAMESPACE,
  type NodeAgent,
  type NodeAgents,
  type VeleroInstall,
} from '../cluster/velero.js';
import { waitFor } from '../cluster/wait.js';
import { inParallel } from './support/burst.js';
import {
  ABSENT,
  diffObjects,
  explain,
  formatDifference,
  is,
  normalise,
  type AllowedDifference,
  type Difference,
} from './support/differential.js';
import {
  ACCEPTED_BY_ANNOTATION,
  cancelDataUpload,
  createDataUpload,
  createSource,
  DataUploadWatch,
  forceRemove,
  grantOperatorNamespace,
  leftovers,
  OPERATOR_NODE_NAME,
  playDataMoverCanceled,
  waitSnapshotsReady,
  type Source,
} from './support/interop.js';
import {
  ensureStorageClasses,
  getJson,
  installOperatorManifests,
  OperatorProcess,
  operatorKubeconfig,
  REPO,
} from './support/operator.js';

const cluster = connectCluster();
const client = adminRestClient(cluster);
const workDir = mkdtempSync(join(tmpdir(), 'duo-velero-interop-'));
const PID = process.pid % 1000;
const SNAPSHOT_API = '/apis/snapshot.storage.k8s.io/v1';
/** Source classes of the fake CSI driver, created by this file. */
const WFFC_CLASS = 'e2e-interop-wffc';
const RO_CLASS = 'e2e-interop-ro';
const MAP_CLASS = 'e2e-interop-map';
const ANN_CLASS = 'e2e-interop-ann';
const PRIORITY_CLASS = 'e2e-interop-low';
const CONFIG_MAP = 'interop-node-agent-config';
const namespaces: string[] = [];
const installs: VeleroInstall[] = [];
let kubeconfig = '';
let nodes: string[] = [];

/**
 * Every way the objects our operator exposes may differ from Velero 1.18.3's on the same input, and why. README's
 * "How it relates to Velero" lists the same ones (each entry's `readme` term must appear there).
 */
const ALLOWED_DIFFERENCES: readonly AllowedDifference[] = [
  {
    object: 'backupPod',
    path: 'spec.containers[<du-uid>].imagePullPolicy',
    velero: is('Never'),
    ours: is('IfNotPresent'),
    reason:
      "ours is the node-agent DaemonSet container's pull policy (default IfNotPresent); Velero forces Never, which " +
      'fails with ErrImageNeverPull (and cancels the DataUpload) on a node that has not pulled the image yet',
    readme: 'imagePullPolicy',
  },
  {
    object: 'backupPod',
    path: /^spec\.volumes\[host-(pods|plugins)\]$/,
    velero: (v) => typeof v === 'object' && v !== null && 'hostPath' in v,
    ours: is(ABSENT),
    reason:
      "the DaemonSet's hostPath volumes are not inherited: the data mover reads only the backupPVC, and hostPath " +
      "fails PodSecurity baseline (Velero's own backupPod is refused under config/default's labels)",
    readme: 'hostPath',
  },
  {
    object: 'backupPod',
    path: /^spec\.containers\[<du-uid>\]\.volumeMounts\[host-(pods|plugins)\]$/,
    velero: (v) => typeof v === 'object' && v !== null && 'mountPath' in v,
    ours: is(ABSENT),
    reason: 'the mounts of those hostPath volumes go with them',
    readme: 'hostPath',
  },
  {
    object: 'backupPod',
    path: /^spec\.affinity\.nodeAffinity\.requiredDuringSchedulingIgnoredDuringExecution\.nodeSelectorTerms\[0\]\.matchExpressions$/,
    kind: 'order',
    velero: () => true,
    ours: () => true,
    cases: ['loadaffinity'],
    intermittent: true,
    reason:
      "a loadAffinity's matchLabels become requirements sorted by key, so the same config gives the same pod; " +
      "Velero's order is Go's map order, random from one DataUpload to the next",
    readme: 'matchLabels',
  },
  {
    object: 'backupPod',
    path: /^spec\.containers\[<du-uid>\]\.resources\.(requests|limits)$/,
    velero: is(ABSENT),
    ours: (v) => typeof v === 'object' && v !== null,
    cases: ['podresources-partial'],
    reason:
      'each podResources value stands on its own; Velero parses all of them together and drops the whole ' +
      'section (BestEffort pod) when one is missing',
    readme: 'podResources',
  },
  {
    object: 'backupPod',
    path: 'status.qosClass',
    velero: is('BestEffort'),
    ours: is('Burstable'),
    cases: ['podresources-partial'],
    reason: 'follows from the partial podResources above',
    readme: 'podResources',
  },
  {
    object: 'backupVolumeSnapshotContent',
    path: /^spec\.volumeSnapshotRef\.(apiVersion|kind)$/,
    velero: is(ABSENT),
    ours: (v) => v === 'snapshot.storage.k8s.io/v1' || v === 'VolumeSnapshot',
    reason:
      "the reference also names the kind and apiVersion of what it refers to, as the external-snapshotter's own " +
      'contents do; the snapshot controller binds by namespace, name and uid either way',
    readme: 'volumeSnapshotRef',
  },
  {
    object: 'DataUpload',
    path: 'metadata.annotations',
    velero: is(ABSENT),
    ours: is({ [ACCEPTED_BY_ANNOTATION]: 'dataupload-operator' }),
    reason:
      'our acceptance mark: with Velero node-agents in the same cluster, it tells which DataUploads we exposed ' +
      '(and must clean up); Velero records only status.acceptedByNode',
    readme: ACCEPTED_BY_ANNOTATION,
  },
  {
    object: 'DataUpload',
    path: 'status.progress',
    velero: is({}),
    ours: is(ABSENT),
    reason:
      'Velero writes the whole object from its Go types, where an empty progress is {}; we patch only the fields we ' +
      'change, and a missing progress reads as zero',
    readme: 'status.progress',
  },
  {
    object: 'DataUpload',
    path: 'metadata.generation',
    velero: is(4),
    ours: is(3),
    reason:
      "follows from that: Velero's first write (the finalizer) also adds status.progress, and with no status " +
      'subresource any change outside metadata counts as a new generation; ours adds the finalizer alone',
    readme: 'generation',
  },
  {
    object: 'DataUpload',
    path: 'status.acceptedByNode',
    velero: is('<a node-agent NODE_NAME>'),
    ours: is('<operator NODE_NAME>'),
    reason:
      "Velero writes the accepting node-agent's node; ours is the node of the operator pod (its NODE_NAME), which " +
      'is not where the backupPod runs (status.node is)',
    readme: 'acceptedByNode',
  },
];

// ---------------------------------------------------------------------------------------------------------------

before(async () => {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  const sc = (name: string, mode = 'Immediate') => ({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name },
    provisioner: 'fake.csi.local',
    reclaimPolicy: 'Delete',
    volumeBindingMode: mode,
  });
  await applyManifest(
    cluster,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        sc(WFFC_CLASS, 'WaitForFirstConsumer'),
        sc(RO_CLASS),
        sc(MAP_CLASS),
        sc(ANN_CLASS),
        {
          apiVersion: 'scheduling.k8s.io/v1',
          kind: 'PriorityClass',
          metadata: { name: PRIORITY_CLASS },
          value: 100,
          description: 'backupPods of the interop differential',
        },
      ],
    }),
  );
  kubeconfig = await operatorKubeconfig(cluster, workDir);
  nodes = await kwokNodeNames(cluster);
  assert.ok(nodes.length >= 3, `three kwok nodes, found ${nodes.join(', ')}`);
});

after(async () => {
  for (const install of installs.reverse()) await uninstallVelero(cluster, install);
  await deleteNamespaces(cluster, ...namespaces);
  await cluster.kubectl([
    'delete',
    '--ignore-not-found',
    '--wait=false',
    `storageclass/${WFFC_CLASS}`,
    `storageclass/${RO_CLASS}`,
    `storageclass/${MAP_CLASS}`,
    `storageclass/${ANN_CLASS}`,
    `priorityclass/${PRIORITY_CLASS}`,
  ]);
  client.close();
  console.log(`# operator and node-agent logs in ${workDir}`);
});

/** Our PodSecurity labels, as config/default puts them on `velero`. */
async function ourPodSecurityLabels(): Promise<Record<string, string>> {
  const ns = await getJson(cluster, ['namespace', VELERO_NAMESPACE]);
  const labels = Object.entries((ns?.metadata.labels ?? {}) as Record<string, string>);
  return Object.fromEntries(labels.filter(([key]) => key.startsWith('pod-security.kubernetes.io/')));
}

/** The image of the `node-agent` DaemonSet in `namespace`, which both systems give the backupPod. */
async function daemonSetImage(namespace: string): Promise<string> {
  return kubectlOk(cluster, [
    '-n',
    namespace,
    'get',
    'daemonset/node-agent',
    '-o',
    'jsonpath={.spec.template.spec.containers[0].image}',
  ]);
}

/** Starts our operator for `namespace`, with its image and ServiceAccount from the DaemonSet there. */
async function startOperator(o: { namespace: string; name: string; args: string[] }): Promise<OperatorProcess> {
  const image = await daemonSetImage(o.namespace);
  const operator = OperatorProcess.start({
    kubeconfig,
    logDir: workDir,
    name: o.name,
    // The harness passes --backup-pod-image (velero/velero:v1.18.0); give it the DaemonSet's so both are the same.
    args: ['--namespace', o.namespace, '--backup-pod-image', image, '--prepare-timeout', '2m', ...o.args],
  });
  await operator.waitForLog('caches synced');
  return operator;
}

/** Warning-or-worse lines of the node-agents' logs that name one of `names`. */
function problemsAbout(agents: NodeAgents | undefined, names: readonly string[]): string[] {
  return (agents?.agents ?? []).flatMap((a) =>
    a
      .problems()
      .filter((p) => names.some((n) => p.line.includes(n)))
      .map((p) => `${a.node} ${p.level}: ${p.msg}`),
  );
}

/** A log pattern naming one DataUpload the way Velero's node-agent does (`dataupload=<ns>/<name>`). */
function about(namespace: string, name: string, what: string): RegExp {
  return new RegExp(`${what}.*dataupload=${namespace}/${name}(\\s|"|$)`);
}

// ---------------------------------------------------------------------------------------------------------------

describe('our operator beside one Velero node-agent per node', () => {
  let ns = '';
  let sourceNs = '';
  let watch: DataUploadWatch | undefined;
  let operator: OperatorProcess | undefined;
  let agents: NodeAgents | undefined;
  /** Every DataUpload of this namespace, for the cancel-all and the leftover check. */
  const uploads: { name: string; source: Source }[] = [];
  /** The hand-off DataUploads, one per node (index = node index). */
  const handOff: string[] = [];

  before(async () => {
    ns = await createTestNamespace(cluster, 'interop', await ourPodSecurityLabels());
    sourceNs = await createTestNamespace(cluster, 'interop-src');
    namespaces.push(ns, sourceNs);
    await grantOperatorNamespace(client, ns);
    installs.push(await installVelero(cluster, { namespace: ns, nodeAgentHostPath: false }));
    watch = new DataUploadWatch(client, ns);
    await watch.synced();
    operator = await startOperator({ namespace: ns, name: 'interop-leader', args: ['--leader-elect=true'] });
    await operator.waitForLog('became leader: reconciling');
  });

  after(async () => {
    await agents?.stop();
    await operator?.stop();
    watch?.stop();
    // After a failure a DataUpload may still carry a finalizer, which would keep the namespace from going away.
    const left = await getJson<{ items: any[] }>(cluster, ['-n', ns, 'datauploads']).catch(() => undefined);
    await forceRemove(
      client,
      ns,
      (left?.items ?? []).map((du: { metadata: { name: string } }) => du.metadata.name),
    ).catch(() => undefined);
    for (const a of agents?.agents ?? []) {
      for (const p of a.problems()) console.log(`# ${a.node} ${p.level}: ${p.msg}`);
      for (const c of a.crashes()) console.log(`# crashed and started again: ${c}`);
    }
  });

  /** Sources pinned one per node (a WaitForFirstConsumer class and a PV with node affinity), and their uploads. */
  async function pinnedUploads(
    prefix: string,
    onNodes: readonly string[],
  ): Promise<{ name: string; source: Source }[]> {
    const sources = await Promise.all(
      onNodes.map((node, i) =>
        createSource(client, { namespace: sourceNs, name: `${prefix}-${i}`, storageClass: WFFC_CLASS, node }),
      ),
    );
    await waitSnapshotsReady(client, sources);
    const created = sources.map((source, i) => ({ name: `${prefix}-${i}-${PID}`, source }));
    for (const u of created) await createDataUpload(client, ns, u.name, u.source);
    uploads.push(...created);
    return created;
  }

  /** Who accepted each DataUpload: exactly one acceptor each, ours with our mark, or a node-agent's node. */
  function acceptorsOf(names: readonly string[]): { ours: number; velero: number } {
    const split = { ours: 0, velero: 0 };
    for (const name of names) {
      const acceptors = watch!.acceptors(name);
      assert.equal(acceptors.length, 1, `${name} accepted once, seen: ${acceptors.join(', ')}`);
      const [acceptor] = acceptors as [string];
      const ours = acceptor === `${OPERATOR_NODE_NAME} (annotated by us)`;
      assert.ok(ours || nodes.includes(acceptor), `${name}: unexpected acceptor ${acceptor}`);
      split[ours ? 'ours' : 'velero']++;
    }
    return split;
  }

  /**
   * Exposed exactly once: one backupPod, backupPVC, backup VolumeSnapshot and VolumeSnapshotContent each, owned by
   * or bound to that DataUpload, and neither the source snapshot nor its content left.
   */
  async function assertExposedOnce(exposed: readonly { name: string; source: Source }[]): Promise<void> {
    type Meta = {
      metadata: { name: string; ownerReferences?: { uid: string }[]; labels?: Record<string, string> };
      spec: { volumeSnapshotRef?: { name: string; namespace: string } };
    };
    const list = async (path: string) => (await client.call<{ items: Meta[] }>({ path })).items;
    const pods = await list(`/api/v1/namespaces/${ns}/pods?labelSelector=velero.io%2Fdata-upload`);
    const pvcs = await list(`/api/v1/namespaces/${ns}/persistentvolumeclaims`);
    const snaps = await list(`${SNAPSHOT_API}/namespaces/${ns}/volumesnapshots`);
    const contents = await list(`${SNAPSHOT_API}/volumesnapshotcontents`);
    for (const { name, source } of exposed) {
      const uid = watch!.get(name)!.metadata.uid;
      const podsOf = pods.filter((p) => p.metadata.labels?.['velero.io/data-upload'] === name);
      assert.deepEqual(
        podsOf.map((p) => p.metadata.name),
        [name],
        `one backupPod for ${name}`,
      );
      assert.deepEqual(
        podsOf[0]!.metadata.ownerReferences?.map((r) => r.uid),
        [uid],
      );
      const pvcsOf = pvcs.filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === uid));
      assert.deepEqual(
        pvcsOf.map((p) => p.metadata.name),
        [name],
        `one backupPVC for ${name}`,
      );
      assert.equal(snaps.filter((v) => v.metadata.name === name).length, 1, `one backup VolumeSnapshot for ${name}`);
      const contentsOf = contents.filter(
        (c) => c.spec.volumeSnapshotRef?.namespace === ns && c.spec.volumeSnapshotRef.name === name,
      );
      assert.deepEqual(
        contentsOf.map((c) => c.metadata.name),
        [name],
        `one backup VolumeSnapshotContent for ${name}`,
      );
      const vs = await client.send({
        path: `${SNAPSHOT_API}/namespaces/${source.namespace}/volumesnapshots/${source.snapshot}`,
      });
      const vsc = await client.send({
        path: `${SNAPSHOT_API}/volumesnapshotcontents/snapcontent-${source.snapshotUid}`,
      });
      assert.deepEqual([vs.status, vsc.status], [404, 404], `source snapshot of ${name} and its content taken over`);
    }
  }

  test('hand-off: DataUploads our operator marked Prepared go to InProgress on the node-agent of status.node, with no warning or error about them in its log', async () => {
    const created = await pinnedUploads('handoff', nodes.slice(0, 3));
    const names = created.map((u) => u.name);
    handOff.push(...names);
    await watch!.waitForPhases(names, ['Prepared']);
    for (const u of created) {
      const du = watch!.get(u.name)!;
      assert.equal(du.metadata.annotations?.[ACCEPTED_BY_ANNOTATION], 'dataupload-operator', `${u.name} is ours`);
      assert.equal(du.status?.node, u.source.node, `${u.name} runs where its volume is`);
    }
    const started = Date.now();
    agents = await startNodeAgents(cluster, { logDir: workDir, namespace: ns, prepareTimeout: '2m' });
    await watch!.waitForPhases(names, ['InProgress'], { timeoutMs: 30_000 });
    console.log(
      `# ${names.length} Prepared DataUploads of ours InProgress ${Date.now() - started} ms after the node-agents started`,
    );
    for (const u of created) {
      const du = watch!.get(u.name)!;
      assert.equal(du.status?.node, u.source.node);
      assert.deepEqual(watch!.acceptors(u.name), [`${OPERATOR_NODE_NAME} (annotated by us)`]);
      assert.deepEqual(watch!.phases(u.name).slice(-3), ['Accepted', 'Prepared', 'InProgress']);
      await agents.on(u.source.node!).waitForLog(about(ns, u.name, 'Data upload is marked as in progress'));
    }
    assert.deepEqual(problemsAbout(agents, [...names, ns]), [], 'node-agent warnings or errors about our objects');
  });

  test('node-agents restarted while one of our DataUploads is Prepared take it on', async () => {
    assert.ok(agents && handOff.length === 3, 'needs the hand-off DataUploads holding every data path slot');
    const node = nodes[1]!;
    const agent: NodeAgent = agents.on(node);
    // Node-agents race for every New DataUpload; with them stopped, ours accepts and exposes this one.
    await Promise.all(agents.agents.map((a) => a.stop()));
    const [waiting] = await pinnedUploads('restart', [node]);
    const name = waiting!.name;
    await watch!.waitForPhases([name], ['Prepared']);
    assert.equal(watch!.get(name)?.metadata.annotations?.[ACCEPTED_BY_ANNOTATION], 'dataupload-operator');
    // Each restarted node-agent resumes the hand-off data path it held; the one on `node` finds ours Prepared.
    await Promise.all(agents.agents.map((a) => a.restart()));
    // After the restart it either sees the slot still held (the InProgress one is resumed) or takes ours at once.
    await waitFor(
      async () =>
        watch!.get(name)?.status?.phase === 'InProgress' ||
        (await agent.waitForLog(about(ns, name, 'concurrent limited'), 500).then(
          () => true,
          () => false,
        )),
      { description: `the restarted node-agent on ${node} to handle ${name}`, timeoutMs: 30_000 },
    );
    const holder = handOff[1]!;
    if (watch!.get(name)?.status?.phase !== 'InProgress') {
      console.log(`# after the restart ${name} waits in Prepared: ${handOff[1]} holds the data path of ${node}`);
      const resumed = watch!.get(holder)!;
      assert.equal(resumed.status?.phase, 'InProgress', 'the restarted node-agent resumed the data path it held');
      assert.notEqual(resumed.spec.cancel, true, 'and did not cancel it');
      // Free the slot the way a finished data path would: cancel it, and play the data mover's part.
      await cancelDataUpload(client, ns, holder);
      await watch!.waitForPhases([holder], ['Canceling'], { timeoutMs: 30_000 });
      await playDataMoverCanceled(client, ns, holder);
      await watch!.waitForPhases([holder], ['Canceled'], { timeoutMs: 60_000 });
    }
    await watch!.waitForPhases([name], ['InProgress'], { timeoutMs: 30_000 });
    assert.equal(watch!.get(name)?.status?.node, node);
    await agent.waitForLog(about(ns, name, 'Data upload is marked as in progress'));
    assert.deepEqual(problemsAbout(agents, [name]), [], 'node-agent warnings or errors about our DataUpload');
  });

  test('coexistence: our operator (leader) and the node-agents race for a burst; each DataUpload is accepted once and exposed once, all reach Prepared, and a cancel of everything leaves nothing, whoever accepted', async () => {
    assert.ok(agents, 'needs the node-agents');
    const count = 40;
    const sources = await Promise.all(
      Array.from({ length: count + 3 }, (_, i) =>
        createSource(client, { namespace: sourceNs, name: `burst-${i}`, storageClass: 'e2e-src' }),
      ),
    );
    await waitSnapshotsReady(client, sources);
    const all = sources.map((source, i) => ({ name: `burst-${i}-${PID}`, source }));
    const burst = all.slice(0, count);
    const wave = all.slice(count);
    uploads.push(...all);
    const started = Date.now();
    await inParallel(burst, 16, (u) => createDataUpload(client, ns, u.name, u.source));
    await watch!.waitForPhases(
      burst.map((u) => u.name),
      ['Prepared'],
      { ever: true, timeoutMs: 120_000 },
    );
    const elapsed = Date.now() - started;
    const split = acceptorsOf(burst.map((u) => u.name));
    console.log(
      `# burst of ${count}: all Prepared in ${elapsed} ms; accepted by ours ${split.ours}, by a node-agent ${split.velero}`,
    );
    const errors = problemsAbout(
      agents,
      burst.map((u) => u.name),
    ).filter((p) => !/ warning: /.test(p));
    assert.deepEqual(errors, [], 'node-agent errors about the burst');

    // Who wins is a race, which ours usually wins for all of them. So that the cancel below always meets
    // DataUploads of both acceptors, a few more are created while ours is stopped: the node-agents take those.
    await operator?.stop();
    for (const u of wave) await createDataUpload(client, ns, u.name, u.source);
    await watch!.waitForPhases(
      wave.map((u) => u.name),
      ['Prepared'],
      { ever: true, timeoutMs: 60_000 },
    );
    operator = await startOperator({ namespace: ns, name: 'interop-leader-again', args: ['--leader-elect=true'] });
    await operator.waitForLog('became leader: reconciling');
    assert.equal(acceptorsOf(wave.map((u) => u.name)).velero, wave.length, 'the node-agents accepted the wave');
    await assertExposedOnce(all);

    // Cancel everything in the namespace (the hand-off ones too); play the data mover for those InProgress.
    const everything = uploads.map((u) => u.name);
    await inParallel(everything, 16, (name) => cancelDataUpload(client, ns, name));
    const played = new Set<string>();
    await waitFor(
      async () => {
        for (const name of everything) {
          if (watch!.get(name)?.status?.phase === 'Canceling' && !played.has(name)) {
            played.add(name);
            await playDataMoverCanceled(client, ns, name);
          }
        }
        return everything.every((name) =>
          ['Canceled', 'Completed', 'Failed'].includes(watch!.get(name)?.status?.phase ?? ''),
        );
      },
      { description: `${everything.length} DataUploads canceled`, timeoutMs: 90_000, intervalMs: 250 },
    );
    for (const name of everything) assert.equal(watch!.get(name)?.status?.phase, 'Canceled', name);
    await waitFor(
      async () => {
        const left = await leftovers(client, ns, uploads);
        if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
        return true;
      },
      { description: 'nothing left after the cancel', timeoutMs: 60_000, intervalMs: 500 },
    );
    console.log(`# data mover played for ${played.size} DataUploads canceled at InProgress`);
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** One input of the differential: a source of `sourceClass` (pinned to `node` by its PV when set). */
interface Case {
  /** Names the DataUploads and the source; lowercase. */
  readonly id: string;
  readonly sourceClass: string;
  readonly node?: string;
  /** Where both backupPods must land, when the config decides it. */
  readonly expectNodes?: readonly string[];
}

/** One node-agent config (`undefined`: no ConfigMap at all) and the inputs exposed under it. */
interface Round {
  readonly name: string;
  readonly config?: object;
  readonly cases: readonly Case[];
}

const ROUNDS: readonly Round[] = [
  {
    name: 'no config',
    cases: [
      { id: 'none', sourceClass: 'e2e-src' },
      { id: 'topology', sourceClass: WFFC_CLASS, node: 'kwok-node-2', expectNodes: ['kwok-node-2'] },
    ],
  },
  {
    name: 'backupPVC: readOnly, storageClass mapping, annotations',
    config: {
      backupPVC: {
        [RO_CLASS]: { readOnly: true },
        [MAP_CLASS]: { storageClass: 'e2e-rox' },
        [ANN_CLASS]: { annotations: { 'example.com/backup-tier': 'gold', 'example.com/team': 'storage' } },
      },
    },
    cases: [
      { id: 'readonly', sourceClass: RO_CLASS },
      { id: 'storageclass', sourceClass: MAP_CLASS },
      { id: 'annotations', sourceClass: ANN_CLASS },
    ],
  },
  {
    name: 'loadAffinity without storageClass',
    config: {
      loadAffinity: [
        {
          nodeSelector: {
            matchLabels: { type: 'kwok', 'kubernetes.io/arch': 'amd64', 'kubernetes.io/os': 'linux' },
            matchExpressions: [
              { key: 'kubernetes.io/hostname', operator: 'In', values: ['kwok-node-0', 'kwok-node-1'] },
            ],
          },
        },
      ],
    },
    cases: [{ id: 'loadaffinity', sourceClass: 'e2e-src', expectNodes: ['kwok-node-0', 'kwok-node-1'] }],
  },
  {
    name: 'loadAffinity with storageClass (the backupPVC class after mapping)',
    config: {
      backupPVC: { [MAP_CLASS]: { storageClass: 'e2e-rox' } },
      loadAffinity: [
        { nodeSelector: { matchLabels: { 'kubernetes.io/hostname': 'kwok-node-0' } } },
        { storageClass: 'e2e-rox', nodeSelector: { matchLabels: { 'kubernetes.io/hostname': 'kwok-node-2' } } },
      ],
    },
    cases: [{ id: 'loadaffinity-sc', sourceClass: MAP_CLASS, expectNodes: ['kwok-node-2'] }],
  },
  {
    name: 'partial podResources',
    config: { podResources: { cpuRequest: '100m', memoryLimit: '256Mi' } },
    cases: [{ id: 'podresources-partial', sourceClass: 'e2e-src' }],
  },
  {
    name: 'full podResources, priorityClassName, podLabels and podAnnotations',
    config: {
      // All of CPU and memory. Not ephemeral storage: kwok nodes declare none, so no pod asking for it schedules.
      podResources: { cpuRequest: '100m', cpuLimit: '1', memoryRequest: '128Mi', memoryLimit: '1Gi' },
      priorityClassName: PRIORITY_CLASS,
      podLabels: { 'example.com/team': 'storage', 'app.kubernetes.io/name': 'data-mover' },
      podAnnotations: { 'example.com/owner': 'backup', 'sidecar.example.com/inject': 'false' },
    },
    cases: [{ id: 'podresources-full', sourceClass: 'e2e-src' }],
  },
];

/** The objects compared for one DataUpload, normalised. */
type Exposed = Record<
  | 'DataUpload'
  | 'backupVolumeSnapshot'
  | 'backupVolumeSnapshotContent'
  | 'backupPVC'
  | 'backupPod'
  | 'sourceVolumeSnapshot'
  | 'sourceVolumeSnapshotContent',
  any
>;

/** One system's namespaces and watch. */
interface SideEnv {
  readonly label: 'velero' | 'ours';
  ns: string;
  sourceNs: string;
  watch?: DataUploadWatch;
  sources: Map<string, Source>;
}

describe('differential: Velero alone and our operator alone, same inputs, every exposed object compared', () => {
  const velero: SideEnv = { label: 'velero', ns: '', sourceNs: '', sources: new Map() };
  const ours: SideEnv = { label: 'ours', ns: '', sourceNs: '', sources: new Map() };
  let agents: NodeAgents | undefined;
  let operator: OperatorProcess | undefined;
  const used = new Set<AllowedDifference>();
  let compared = 0;
  /** The normalised pair of the first case, for the self-check of the comparison. */
  let sample: { velero: Exposed; ours: Exposed } | undefined;
  const allCases = ROUNDS.flatMap((r) => r.cases);

  const duName = (side: SideEnv, c: Case) => `${c.id}-${side.label === 'velero' ? 'v' : 'o'}${PID}`;

  before(async () => {
    for (const side of [velero, ours]) {
      side.ns = await createTestNamespace(cluster, `interop-${side.label}`);
      side.sourceNs = await createTestNamespace(cluster, `interop-${side.label}-src`);
      namespaces.push(side.ns, side.sourceNs);
      // Velero's stock install (hostPath volumes on) and Velero's own PodSecurity labels (privileged), on both
      // sides: the same DaemonSet to inherit from, the same admission.
      const install = await installVelero(cluster, { namespace: side.ns });
      installs.push(install);
      await relabelNamespace(cluster, install.veleroPodSecurityLabels, side.ns);
      side.watch = new DataUploadWatch(client, side.ns);
    }
    assert.equal(
      (await getJson(cluster, ['namespace', velero.ns]))?.metadata.labels['pod-security.kubernetes.io/enforce'],
      'privileged',
    );
    await grantOperatorNamespace(client, ours.ns);
    // Every source up front, the same names on both sides.
    const created: Source[] = [];
    for (const side of [velero, ours]) {
      for (const c of allCases) {
        const source = await createSource(client, {
          namespace: side.sourceNs,
          name: c.id,
          storageClass: c.sourceClass,
          ...(c.node !== undefined && { node: c.node }),
        });
        side.sources.set(c.id, source);
        created.push(source);
      }
    }
    await waitSnapshotsReady(client, created);
    await Promise.all([velero.watch!.synced(), ours.watch!.synced()]);
  });

  after(async () => {
    await agents?.stop();
    await operator?.stop();
    velero.watch?.stop();
    ours.watch?.stop();
    await forceRemove(
      client,
      velero.ns,
      allCases.map((c) => duName(velero, c)),
    ).catch(() => undefined);
    await forceRemove(
      client,
      ours.ns,
      allCases.map((c) => duName(ours, c)),
    ).catch(() => undefined);
  });

  /** Writes the round's ConfigMap on both sides, then (re)starts Velero's node-agents and our operator. */
  async function startRound(round: Round): Promise<void> {
    await agents?.stop();
    await operator?.stop();
    for (const side of [velero, ours]) {
      if (round.config === undefined) {
        await cluster.kubectl(['-n', side.ns, 'delete', 'configmap', CONFIG_MAP, '--ignore-not-found']);
        continue;
      }
      await applyManifest(
        cluster,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: CONFIG_MAP, namespace: side.ns },
          data: { 'node-agent-config.json': JSON.stringify(round.config) },
        }),
      );
    }
    const withConfig = round.config === undefined ? {} : { configMap: CONFIG_MAP };
    [agents, operator] = await Promise.all([
      startNodeAgents(cluster, { logDir: workDir, namespace: velero.ns, prepareTimeout: '2m', ...withConfig }),
      startOperator({
        namespace: ours.ns,
        name: `interop-diff-${ROUNDS.indexOf(round)}`,
        args: ['--leader-elect=false', ...(round.config === undefined ? [] : ['--node-agent-configmap', CONFIG_MAP])],
      }),
    ]);
  }

  /** Reads what one side exposed for a case, normalised, and checks where its backupPod runs. */
  async function exposedBy(side: SideEnv, c: Case): Promise<Exposed> {
    const name = duName(side, c);
    const source = side.sources.get(c.id)!;
    const du = side.watch!.prepared(name)!;
    const get = async (path: string) => {
      const res = await client.send<any>({ path });
      if (res.status === 404) return null;
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
      return res.body;
    };
    const pod = await waitFor(
      async () => {
        const p = await get(`/api/v1/namespaces/${side.ns}/pods/${name}`);
        const ready = p?.status?.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True');
        return ready ? p : undefined;
      },
      { description: `backupPod ${side.ns}/${name} Ready`, timeoutMs: 30_000 },
    );
    const raw: Exposed = {
      DataUpload: du,
      backupVolumeSnapshot: await get(`${SNAPSHOT_API}/namespaces/${side.ns}/volumesnapshots/${name}`),
      backupVolumeSnapshotContent: await get(`${SNAPSHOT_API}/volumesnapshotcontents/${name}`),
      backupPVC: await get(`/api/v1/namespaces/${side.ns}/persistentvolumeclaims/${name}`),
      backupPod: pod,
      sourceVolumeSnapshot: await get(
        `${SNAPSHOT_API}/namespaces/${source.namespace}/volumesnapshots/${source.snapshot}`,
      ),
      sourceVolumeSnapshotContent: await get(
        `${SNAPSHOT_API}/volumesnapshotcontents/snapcontent-${source.snapshotUid}`,
      ),
    };
    const node = pod.spec.nodeName as string;
    assert.equal(du.status?.node, node, `${side.label}: status.node is the backupPod's node`);
    if (c.expectNodes)
      assert.ok(
        c.expectNodes.includes(node),
        `${side.label}: backupPod on ${node}, expected ${c.expectNodes.join(' or ')}`,
      );
    const uid = (o: any): string => o?.metadata?.uid ?? '';
    const tokens: Record<string, string> = {
      [name]: '<du>',
      [du.metadata.uid]: '<du-uid>',
      [side.ns]: '<velero-ns>',
      [side.sourceNs]: '<source-ns>',
      [source.snapshotUid]: '<source-vs-uid>',
      [source.pvcUid]: '<source-pvc-uid>',
      [uid(raw.backupVolumeSnapshot)]: '<backup-vs-uid>',
      [uid(raw.backupVolumeSnapshotContent)]: '<backup-vsc-uid>',
      [uid(raw.backupPVC)]: '<backup-pvc-uid>',
      [uid(pod)]: '<backup-pod-uid>',
      ...(source.pv !== undefined && { [source.pv]: '<source-pv>' }),
    };
    // kube-apiserver copies the node's topology labels onto a pod when it binds it (PodTopologyLabelsAdmission):
    // they follow where the scheduler put the pod, like spec.nodeName, and are checked against the node instead.
    const nodeLabels = (await client.call<any>({ path: `/api/v1/nodes/${node}` })).metadata.labels ?? {};
    for (const key of ['topology.kubernetes.io/zone', 'topology.kubernetes.io/region']) {
      const value = pod.metadata.labels?.[key];
      if (value === undefined) continue;
      assert.equal(value, nodeLabels[key], `${side.label}: the backupPod's ${key} label is its node's`);
      delete pod.metadata.labels[key];
    }
    // KCM's volume binder names the provisioner on a claim it waits for, unless the fake CSI layer (which, unlike
    // the external-provisioner, does not wait for that) has already bound it: a race of the harness, not of ours.
    for (const key of ['volume.beta.kubernetes.io/storage-provisioner', 'volume.kubernetes.io/storage-provisioner']) {
      const annotations = raw.backupPVC?.metadata?.annotations ?? {};
      if (annotations[key] === 'fake.csi.local') delete annotations[key];
    }
    const out = normalise(raw, { tokens });
    // Where the scheduler put the pod, and who accepted, are checked above and by the allow-list; not compared.
    out.backupPod.spec.nodeName = '<node>';
    out.DataUpload.status.node = '<node>';
    const acceptor = du.status?.acceptedByNode ?? '';
    out.DataUpload.status.acceptedByNode = nodes.includes(acceptor)
      ? '<a node-agent NODE_NAME>'
      : acceptor === OPERATOR_NODE_NAME
        ? '<operator NODE_NAME>'
        : acceptor;
    if (out.backupVolumeSnapshotContent?.status?.creationTime !== undefined) {
      out.backupVolumeSnapshotContent.status.creationTime = '<time>';
    }
    return out;
  }

  /** Compares one case; records which allow-list entries explained something; fails on anything unexplained. */
  function compare(caseName: string, v: Exposed, o: Exposed): { unexplained: Difference[]; report: string } {
    const differences = (Object.keys(v) as (keyof Exposed)[]).flatMap((kind) => diffObjects(kind, v[kind], o[kind]));
    const { explained, unexplained } = explain(differences, ALLOWED_DIFFERENCES, caseName);
    for (const { entry } of explained) used.add(entry);
    const lines = [
      ...unexplained.map((d) => `NOT ALLOWED  ${formatDifference(d)}`),
      ...explained.map(({ difference, entry }) => `allowed      ${formatDifference(difference)}  [${entry.readme}]`),
    ];
    return { unexplained, report: lines.join('\n') };
  }

  test('README\'s "How it relates to Velero" lists every allowed difference', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const start = readme.indexOf('## How it relates to Velero');
    assert.ok(start >= 0, 'README has the section');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const missing = ALLOWED_DIFFERENCES.filter((e) => !section.includes(e.readme)).map((e) => e.readme);
    assert.deepEqual(missing, [], 'allow-list terms missing from the README section');
  });

  for (const round of ROUNDS) {
    test(`config: ${round.name}`, async (t: TestContext) => {
      const started = Date.now();
      await startRound(round);
      const names = (side: SideEnv) => round.cases.map((c) => duName(side, c));
      try {
        for (const side of [velero, ours]) {
          for (const c of round.cases)
            await createDataUpload(client, side.ns, duName(side, c), side.sources.get(c.id)!);
        }
        await Promise.all(
          [velero, ours].map((side) => side.watch!.waitForPhases(names(side), ['Prepared'], { ever: true })),
        );
        for (const c of round.cases) {
          const caseName = c.id;
          await t.test(caseName, async () => {
            const [v, o] = await Promise.all([exposedBy(velero, c), exposedBy(ours, c)]);
            sample ??= { velero: v, ours: o };
            const { unexplained, report } = compare(caseName, v, o);
            compared++;
            if (report) console.log(report.replace(/^/gm, `# ${caseName}: `));
            assert.deepEqual(
              unexplained.map(formatDifference),
              [],
              `differences from Velero 1.18.3 that ALLOWED_DIFFERENCES does not explain (case ${caseName}):\n${report}`,
            );
          });
        }
      } finally {
        // Ours cleans up after a cancel; Velero's node-agents are stopped and what they made is removed by hand.
        await Promise.all(names(ours).map((n) => cancelDataUpload(client, ours.ns, n)));
        await ours.watch!.waitForPhases(names(ours), ['Canceled'], { timeoutMs: 30_000 });
        await agents?.stop();
        agents = undefined;
        await forceRemove(client, velero.ns, names(velero));
        console.log(`# round "${round.name}" took ${Date.now() - started} ms`);
      }
    });
  }

  test('nothing is left on either side', async () => {
    await operator?.stop();
    operator = undefined;
    for (const side of [velero, ours]) {
      const uploads = allCases.map((c) => ({ name: duName(side, c), source: side.sources.get(c.id)! }));
      await waitFor(
        async () => {
          const left = await leftovers(client, side.ns, uploads);
          if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
          return true;
        },
        { description: `nothing left in ${side.ns}`, timeoutMs: 60_000, intervalMs: 500 },
      );
    }
  });

  test('every allow-list entry explained a difference in this run (a stale entry fails)', () => {
    assert.equal(compared, allCases.length, 'every case was compared');
    const stale = ALLOWED_DIFFERENCES.filter((e) => !e.intermittent && !used.has(e)).map(
      (e) => `${e.object} ${String(e.path)} (${e.reason})`,
    );
    assert.deepEqual(stale, [], 'allow-list entries that explained nothing');
  });

  test('the comparison itself: a changed backupPod label is a difference nothing allows', () => {
    assert.ok(sample, 'a compared case');
    const mutated = structuredClone(sample.ours);
    mutated.backupPod.metadata.labels['velero.io/exposer-pod-group'] = 'mutated';
    const { unexplained } = compare('none', sample.velero, mutated);
    assert.deepEqual(unexplained.map(formatDifference), [
      'backupPod metadata.labels["velero.io/exposer-pod-group"]: Velero "snapshot-exposer", ours "mutated"',
    ]);
  });
});
