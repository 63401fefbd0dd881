/**
 * Velero's own node-agent (v1.18.3, built from its Go module by the harness) alone on the bundled control plane,
 * one `velero node-agent server` per kwok node, in a namespace of its own: no operator runs there, and the
 * DataUploads other test files leave in `velero` stay out of reach (a node-agent takes any Prepared DataUpload on
 * its node to InProgress, which would hold the node's single data path). The namespace carries our PodSecurity labels.
 *
 * This proves the harness (build, CRDs, `velero install` objects, one node-agent per node) and records how Velero
 * itself behaves on our fake CSI layer, as the reference the operator is compared against.
 *
 * kwok pods run no code, so Velero's data mover never runs inside the backupPod. Where Velero waits for it (a cancel
 * at InProgress), the test plays the data mover's part the way Velero's `data-mover backup` does it: Events with
 * the `Data-Path-` reasons on the DataUpload and a failed container whose termination message says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminRestClient, connectCluster, createTestNamespace } from '../cluster/index.js';
import { Informer, type CachedObject } from '../cluster/informer.js';
import { applyManifest, deleteNamespaces, kubectlOk } from '../cluster/testing.js';
import {
  installVelero,
  READY_LINE,
  startNodeAgents,
  uninstallVelero,
  VELERO_NAMESPACE,
  type NodeAgents,
  type VeleroInstall,
} from '../cluster/velero.js';
import { waitFor } from '../cluster/wait.js';
import { playDataMoverCanceled } from './support/interop.js';
import {
  createSource,
  dataUploadManifest,
  ensureStorageClasses,
  eventually,
  getJson,
  installOperatorManifests,
} from './support/operator.js';

const cluster = connectCluster();
const logDir = mkdtempSync(join(tmpdir(), 'duo-velero-smoke-'));
const CONFIG_MAP = 'velero-smoke-node-agent';
/** Every backupPod lands here, so the data path slot of this node (one per node in Velero) can be held. */
const BACKUP_NODE = 'kwok-node-1';
const namespaces: string[] = [];
/** Velero's namespace for this file. */
let veleroNs = '';
let installs: VeleroInstall[] = [];
let agents: NodeAgents | undefined;

/** A source volume with a ready snapshot in its own namespace, and its DataUpload's name. */
interface Upload {
  readonly ns: string;
  readonly name: string;
  readonly snapshot: string;
}

async function newUpload(prefix: string): Promise<Upload> {
  const ns = await createTestNamespace(cluster, prefix);
  namespaces.push(ns);
  const u = { ns, name: `${prefix}-${process.pid % 1000}`, snapshot: 'snap' };
  await createSource(cluster, { namespace: ns, storageClass: 'e2e-src', snapshot: u.snapshot });
  return u;
}

/** Creates the DataUpload as the Velero server would, in Velero's namespace. */
async function submit(u: Upload): Promise<void> {
  const du = JSON.parse(
    dataUploadManifest({ name: u.name, sourceNamespace: u.ns, snapshot: u.snapshot, storageClass: 'e2e-src' }),
  ) as { metadata: { namespace: string } };
  du.metadata.namespace = veleroNs;
  await applyManifest(cluster, JSON.stringify(du));
}

function getDataUpload(name: string): Promise<Record<string, any> | undefined> {
  return getJson(cluster, ['-n', veleroNs, 'dataupload', name]);
}

function waitForPhase(name: string, phases: string[], timeoutMs = 60_000): Promise<Record<string, any>> {
  return eventually(
    `DataUpload ${name} in ${phases.join('|')}`,
    async () => {
      const du = await getDataUpload(name);
      return du && phases.includes(du.status?.phase) ? du : undefined;
    },
    timeoutMs,
  );
}

/** Sets spec.cancel the way the Velero server does: a merge patch without resourceVersion. */
async function cancel(name: string): Promise<void> {
  await kubectlOk(cluster, [
    '-n',
    veleroNs,
    'patch',
    'dataupload',
    name,
    '--type=merge',
    '-p',
    '{"spec":{"cancel":true}}',
  ]);
}

/**
 * Waits until nothing exposing created is left: no backupPod, backupPVC or its PV, no backup or source
 * VolumeSnapshot or VolumeSnapshotContent (Velero moves the source snapshot into its namespace and deletes it at
 * the end), and no finalizer on the DataUpload (Velero takes it off one reconcile after the one that ended it).
 */
async function assertNothingLeft(u: Upload): Promise<void> {
  await eventually(`no objects left for DataUpload ${u.name}`, async () => {
    const left: string[] = [];
    for (const [kind, ns, name] of [
      ['pod', veleroNs, u.name],
      ['persistentvolumeclaim', veleroNs, u.name],
      ['volumesnapshot', veleroNs, u.name],
      ['volumesnapshot', u.ns, u.snapshot],
    ] as const) {
      if (await getJson(cluster, ['-n', ns, kind, name])) left.push(`${kind} ${ns}/${name}`);
    }
    for (const vsc of (await getJson<{ items: any[] }>(cluster, ['volumesnapshotcontents']))?.items ?? []) {
      const ref = vsc.spec?.volumeSnapshotRef ?? {};
      if (
        `${ref.namespace}/${ref.name}` === `${veleroNs}/${u.name}` ||
        `${ref.namespace}/${ref.name}` === `${u.ns}/${u.snapshot}`
      )
        left.push(`volumesnapshotcontent ${vsc.metadata.name} (${vsc.spec?.deletionPolicy})`);
    }
    for (const pv of (await getJson<{ items: any[] }>(cluster, ['persistentvolumes']))?.items ?? []) {
      const claim = pv.spec?.claimRef ?? {};
      if (claim.namespace === veleroNs && claim.name === u.name) left.push(`persistentvolume ${pv.metadata.name}`);
    }
    if (((await getDataUpload(u.name))?.metadata.finalizers ?? []).length > 0) left.push('the finalizer');
    if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
    return true;
  });
}

/** The phases one DataUpload goes through, with the time each was first seen, from a list+watch. */
class PhaseRecorder {
  readonly seen: { phase: string; at: number }[] = [];
  private readonly client = adminRestClient(cluster);
  private readonly informer: Informer<CachedObject & { status?: { phase?: string } }>;

  constructor(private readonly name: string) {
    this.informer = new Informer({
      client: this.client,
      path: `/apis/velero.io/v2alpha1/namespaces/${veleroNs}/datauploads`,
      onChange: () => this.record(),
      log: () => undefined,
    });
    this.informer.start();
  }

  /** Resolves once the first list is done: every later change is then seen. */
  async synced(): Promise<void> {
    await waitFor(() => Promise.resolve(this.informer.hasSynced), { description: 'the DataUpload watch' });
  }

  at(phase: string): number | undefined {
    return this.seen.find((s) => s.phase === phase)?.at;
  }

  phases(): string[] {
    return this.seen.map((s) => s.phase);
  }

  stop(): void {
    this.informer.stop();
    this.client.close();
  }

  private record(): void {
    const phase = this.informer.get(veleroNs, this.name)?.status?.phase;
    if (phase && phase !== this.seen.at(-1)?.phase) this.seen.push({ phase, at: Date.now() });
  }
}

/** The lines of every node-agent's log that name this DataUpload, for failure messages. */
function agentLogsAbout(name: string): string {
  return (agents?.agents ?? [])
    .flatMap((a) =>
      a
        .logLines()
        .filter((l) => l.includes(name))
        .map((l) => `${a.node}: ${l}`),
    )
    .slice(-40)
    .join('\n');
}

/** Our PodSecurity labels, as config/default puts them on `velero`. */
async function ourPodSecurityLabels(): Promise<Record<string, string>> {
  const ns = await getJson(cluster, ['namespace', VELERO_NAMESPACE]);
  const labels = Object.entries((ns?.metadata.labels ?? {}) as Record<string, string>);
  return Object.fromEntries(labels.filter(([key]) => key.startsWith('pod-security.kubernetes.io/')));
}

before(async () => {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  const labels = await ourPodSecurityLabels();
  assert.equal(labels['pod-security.kubernetes.io/enforce'], 'baseline');
  veleroNs = await createTestNamespace(cluster, 'velero-smoke', labels);
  namespaces.push(veleroNs);
  await applyManifest(
    cluster,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: CONFIG_MAP, namespace: veleroNs },
      data: {
        'node-agent-config.json': JSON.stringify({
          loadAffinity: [{ nodeSelector: { matchLabels: { 'kubernetes.io/hostname': BACKUP_NODE } } }],
        }),
      },
    }),
  );
  // Velero's stock install first: its DaemonSet mounts hostPath volumes.
  installs.push(await installVelero(cluster, { namespace: veleroNs }));
  agents = await startNodeAgents(cluster, {
    logDir,
    namespace: veleroNs,
    configMap: CONFIG_MAP,
    prepareTimeout: '2m',
  });
});

after(async () => {
  await agents?.stop();
  // After a failure a DataUpload may still carry Velero's finalizer, which would keep the namespace from going away.
  const left = await getJson<{ items: any[] }>(cluster, ['-n', veleroNs, 'datauploads']).catch(() => undefined);
  for (const du of left?.items ?? []) {
    if ((du.metadata.finalizers ?? []).length === 0) continue;
    const patch = '{"metadata":{"finalizers":null}}';
    await cluster.kubectl(['-n', veleroNs, 'patch', 'dataupload', du.metadata.name, '--type=merge', '-p', patch]);
  }
  for (const install of installs.reverse()) await uninstallVelero(cluster, install);
  installs = [];
  await deleteNamespaces(cluster, ...namespaces);
  for (const a of agents?.agents ?? []) {
    for (const p of a.problems()) console.log(`# ${a.node} ${p.level}: ${p.msg}`);
    for (const c of a.crashes()) console.log(`# crashed and started again: ${c}`);
  }
  console.log(`# node-agent logs in ${logDir}`);
});

describe("Velero's node-agent alone", () => {
  test("Velero's stock backupPod (hostPath volumes from the DaemonSet) is refused under our PodSecurity (baseline); the DataUpload fails and Velero cleans up", async () => {
    const u = await newUpload('velero-baseline');
    await submit(u);
    const du = await waitForPhase(u.name, ['Failed']);
    assert.match(du.status.message, /violates PodSecurity "baseline:latest": hostPath volumes/);
    await assertNothingLeft(u);
  });

  describe('installed with --node-agent-disable-host-path, under the same labels', () => {
    let held: Upload;

    before(async () => {
      installs.push(await installVelero(cluster, { namespace: veleroNs, nodeAgentHostPath: false }));
    });

    test('a DataUpload is accepted, exposed and marked Prepared on the backupPod node, whose node-agent takes it on', async () => {
      held = await newUpload('velero-first');
      const phases = new PhaseRecorder(held.name);
      try {
        await phases.synced();
        const created = Date.now();
        await submit(held);
        const du = await waitForPhase(held.name, ['InProgress']).catch((err: unknown) => {
          throw new Error(`${String(err)}\nnode-agent logs:\n${agentLogsAbout(held.name)}`);
        });
        const prepared = phases.at('Prepared');
        assert.deepEqual(phases.phases().slice(-3), ['Accepted', 'Prepared', 'InProgress']);
        assert.ok(prepared !== undefined);
        console.log(`# New -> Prepared in ${prepared - created} ms with Velero alone`);
        assert.match(du.status.acceptedByNode, /^kwok-node-/);
        assert.equal(du.status.node, BACKUP_NODE);
        assert.equal(du.status.nodeOS, 'linux');
        const pod = await getJson(cluster, ['-n', veleroNs, 'pod', held.name]);
        assert.equal(pod?.spec.nodeName, BACKUP_NODE);
        const volumes = pod?.spec.volumes as { name: string; hostPath?: object }[];
        assert.deepEqual(
          volumes.filter((v) => v.hostPath),
          [],
          'no hostPath volume inherited from the DaemonSet',
        );
        assert.ok(volumes.some((v) => v.name === du.metadata.uid) && volumes.some((v) => v.name === 'scratch'));
        const agent = agents!.on(BACKUP_NODE);
        await agent.waitForLog(/Data upload is marked as in progress/);
        // Both metrics listeners answer on this node-agent's own loopback ports (velerobin/main.go moved the second).
        assert.match(await (await fetch(agent.metricsUrl)).text(), /^# HELP /m);
        const crMetrics = await (await fetch(agent.controllerMetricsUrl)).text();
        assert.match(crMetrics, /^controller_runtime_max_concurrent_reconciles\{controller="dataupload"\} 1$/m);
      } finally {
        phases.stop();
      }
    });

    test('a second DataUpload for the busy node waits in Prepared, and a cancel there cleans up at once', async () => {
      const u = await newUpload('velero-second');
      await submit(u);
      await waitForPhase(u.name, ['Prepared']);
      // Velero runs one data path per node; the first upload holds it, so this one stays Prepared.
      await agents!.on(BACKUP_NODE).waitForLog(new RegExp(`concurrent limited.*dataupload=${veleroNs}/${u.name}`));
      await cancel(u.name);
      const du = await waitForPhase(u.name, ['Canceled'], 30_000);
      assert.ok(du.status.completionTimestamp);
      await assertNothingLeft(u);
    });

    test('a cancel at InProgress waits for the data mover; once it reports canceled, Velero cleans up', async () => {
      await cancel(held.name);
      await waitForPhase(held.name, ['Canceling'], 30_000);
      // What Velero's data mover does in the backupPod when its DataUpload is canceled (kwok runs no container).
      const client = adminRestClient(cluster);
      try {
        await playDataMoverCanceled(client, veleroNs, held.name, 'velero-smoke-data-mover');
      } finally {
        client.close();
      }
      const du = await waitForPhase(held.name, ['Canceled'], 90_000);
      assert.ok(du.status.completionTimestamp);
      await assertNothingLeft(held);
    });
  });

  test('a node-agent that dies on its own is recorded and started again, as its DaemonSet would be', async () => {
    assert.ok(agents, 'needs the node-agents');
    const agent = agents.agents[0]!;
    const before = agent.pid;
    const seen = agent.crashes().length;
    process.kill(before, 'SIGKILL');
    await waitFor(async () => Promise.resolve(agent.pid !== before && agent.isRunning()), {
      description: `${agent.node}'s node-agent to run again`,
      timeoutMs: 90_000,
    });
    await agent.waitForLog(READY_LINE, 60_000);
    assert.equal(agent.crashes().length, seen + 1);
    assert.match(agent.crashes().at(-1)!, new RegExp(`node-agent-${agent.node} \\(pid ${before}\\): exited`));
  });
});
