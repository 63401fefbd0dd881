/**
 * Velero's own node-agent (v1.18.3, built from its Go module by the harness) alone on the bundled control plane:
 * no operator process runs, our Deployment is scaled to zero. One `velero node-agent server` per kwok node.
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
  relabelNamespace,
  startNodeAgents,
  uninstallVelero,
  type NodeAgents,
  type VeleroInstall,
} from '../cluster/velero.js';
import { waitFor } from '../cluster/wait.js';
import {
  assertNothingLeft,
  cancelDataUpload,
  createNodeAgentConfigMap,
  createSource,
  dataUploadManifest,
  ensureStorageClasses,
  eventually,
  getJson,
  installOperatorManifests,
  VELERO_NS,
  waitForPhase,
} from './support/operator.js';

const cluster = connectCluster();
const logDir = mkdtempSync(join(tmpdir(), 'duo-velero-smoke-'));
const CONFIG_MAP = 'velero-smoke-node-agent';
/** Every backupPod lands here, so the data path slot of this node (one per node in Velero) can be held. */
const BACKUP_NODE = 'kwok-node-1';
const namespaces: string[] = [];
const uploads: string[] = [];
let install: VeleroInstall | undefined;
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
  uploads.push(u.name);
  await createSource(cluster, { namespace: ns, storageClass: 'e2e-src', snapshot: u.snapshot });
  return u;
}

/** The phases one DataUpload goes through, with the time each was first seen, from a list+watch. */
class PhaseRecorder {
  readonly seen: { phase: string; at: number }[] = [];
  private readonly client = adminRestClient(cluster);
  private readonly informer: Informer<CachedObject & { status?: { phase?: string } }>;

  constructor(private readonly name: string) {
    this.informer = new Informer({
      client: this.client,
      path: `/apis/velero.io/v2alpha1/namespaces/${VELERO_NS}/datauploads`,
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
    const phase = this.informer.get(VELERO_NS, this.name)?.status?.phase;
    if (phase && phase !== this.seen.at(-1)?.phase) this.seen.push({ phase, at: Date.now() });
  }
}

async function submit(u: Upload): Promise<void> {
  await applyManifest(
    cluster,
    dataUploadManifest({ name: u.name, sourceNamespace: u.ns, snapshot: u.snapshot, storageClass: 'e2e-src' }),
  );
}

/** Velero takes its finalizer off a DataUpload once it is terminal (a reconcile after the one that ended it). */
async function finalizerRemoved(name: string): Promise<void> {
  await eventually(`the finalizer of DataUpload ${name} to be removed`, async () => {
    const du = await getJson(cluster, ['-n', VELERO_NS, 'dataupload', name]);
    return (du?.metadata.finalizers ?? []).length === 0;
  });
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

before(async () => {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  await createNodeAgentConfigMap(cluster, CONFIG_MAP, {
    loadAffinity: [{ nodeSelector: { matchLabels: { 'kubernetes.io/hostname': BACKUP_NODE } } }],
  });
  install = await installVelero(cluster);
  agents = await startNodeAgents(cluster, { logDir, configMap: CONFIG_MAP, prepareTimeout: '2m' });
});

after(async () => {
  await agents?.stop();
  if (install) await uninstallVelero(cluster, install);
  await cluster.kubectl(['-n', VELERO_NS, 'delete', 'configmap', CONFIG_MAP, '--ignore-not-found']);
  if (uploads.length > 0) {
    await cluster.kubectl(['-n', VELERO_NS, 'delete', 'datauploads', '--ignore-not-found', '--wait=false', ...uploads]);
  }
  await deleteNamespaces(cluster, ...namespaces);
  for (const a of agents?.agents ?? []) {
    for (const p of a.problems()) console.log(`# ${a.node} ${p.level}: ${p.msg}`);
  }
  console.log(`# node-agent logs in ${logDir}`);
});

describe("Velero's node-agent alone", () => {
  test("under our namespace's PodSecurity (baseline) Velero's backupPod is refused; the DataUpload fails and Velero cleans up", async () => {
    const u = await newUpload('velero-baseline');
    await submit(u);
    const du = await waitForPhase(cluster, u.name, ['Failed'], 60_000);
    // The backupPod inherits the node-agent DaemonSet's hostPath volumes, which "baseline" forbids.
    assert.match(du.status.message, /violates PodSecurity "baseline:latest": hostPath volumes/);
    await assertNothingLeft(cluster, { duName: u.name, sourceNamespace: u.ns, snapshot: u.snapshot });
    await finalizerRemoved(u.name);
  });

  describe("with Velero's own PodSecurity labels (privileged)", () => {
    let restoreLabels: (() => Promise<void>) | undefined;
    let held: Upload;

    before(async () => {
      restoreLabels = await relabelNamespace(cluster, install!.veleroPodSecurityLabels);
    });

    after(async () => {
      await restoreLabels?.();
    });

    test('a DataUpload is accepted, exposed and marked Prepared on the backupPod node, whose node-agent takes it on', async () => {
      held = await newUpload('velero-first');
      const phases = new PhaseRecorder(held.name);
      try {
        await phases.synced();
        const created = Date.now();
        await submit(held);
        const du = await waitForPhase(cluster, held.name, ['InProgress'], 60_000).catch((err: unknown) => {
          throw new Error(`${String(err)}\nnode-agent logs:\n${agentLogsAbout(held.name)}`);
        });
        const prepared = phases.at('Prepared');
        assert.deepEqual(phases.phases().slice(-3), ['Accepted', 'Prepared', 'InProgress']);
        assert.ok(prepared !== undefined);
        console.log(`# New -> Prepared in ${prepared - created} ms with Velero alone`);
        assert.match(du.status.acceptedByNode, /^kwok-node-/);
        assert.equal(du.status.node, BACKUP_NODE);
        assert.equal(du.status.nodeOS, 'linux');
        const pod = await getJson(cluster, ['-n', VELERO_NS, 'pod', held.name]);
        assert.equal(pod?.spec.nodeName, BACKUP_NODE);
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
      await waitForPhase(cluster, u.name, ['Prepared'], 60_000);
      // Velero runs one data path per node; the first upload holds it, so this one stays Prepared.
      await agents!.on(BACKUP_NODE).waitForLog(new RegExp(`concurrent limited.*dataupload=velero/${u.name}`));
      await cancelDataUpload(cluster, u.name);
      const du = await waitForPhase(cluster, u.name, ['Canceled'], 30_000);
      assert.ok(du.status.completionTimestamp);
      await assertNothingLeft(cluster, { duName: u.name, sourceNamespace: u.ns, snapshot: u.snapshot });
      await finalizerRemoved(u.name);
    });

    test('a cancel at InProgress waits for the data mover; once it reports canceled, Velero cleans up', async () => {
      await cancelDataUpload(cluster, held.name);
      await waitForPhase(cluster, held.name, ['Canceling'], 30_000);
      await actAsDataMoverCanceled(held.name);
      const du = await waitForPhase(cluster, held.name, ['Canceled'], 90_000);
      assert.ok(du.status.completionTimestamp);
      await assertNothingLeft(cluster, { duName: held.name, sourceNamespace: held.ns, snapshot: held.snapshot });
      await finalizerRemoved(held.name);
    });
  });
});

/**
 * What Velero's `data-mover backup` does inside the backupPod when its DataUpload is canceled: it records
 * `Data-Path-Started`, `Data-Path-Canceled` and `Data-Path-Stopped` Events on the DataUpload and exits with a
 * termination message ending in "data path is canceled". kwok runs no container, so the test writes the Events and
 * the pod's final status itself.
 */
async function actAsDataMoverCanceled(name: string): Promise<void> {
  const event = (reason: string, message: string) => ({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${name}.`, namespace: VELERO_NS },
    involvedObject: { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', namespace: VELERO_NS, name },
    reason,
    message,
    type: 'Normal',
    source: { component: 'velero-smoke-data-mover' },
  });
  for (const [reason, message] of [
    ['Data-Path-Started', `Data path for ${name} started`],
    ['Data-Path-Canceled', `Data path for data upload ${name} canceled`],
    ['Data-Path-Stopped', `Data path for ${name} stopped`],
  ] as const) {
    await kubectlOk(cluster, ['create', '-f', '-'], JSON.stringify(event(reason, message)));
  }
  const pod = await getJson(cluster, ['-n', VELERO_NS, 'pod', name]);
  const container: string = pod?.spec.containers[0].name;
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const status = {
    status: {
      phase: 'Failed',
      containerStatuses: [
        {
          name: container,
          image: pod?.spec.containers[0].image,
          imageID: '',
          ready: false,
          restartCount: 0,
          state: {
            terminated: {
              exitCode: 1,
              reason: 'Error',
              message: `Failed to run data path service for DataUpload ${name}: data path is canceled`,
              startedAt: now,
              finishedAt: now,
            },
          },
        },
      ],
    },
  };
  await kubectlOk(cluster, [
    '-n',
    VELERO_NS,
    'patch',
    'pod',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify(status),
  ]);
}
