/**
 * The core of the expose benchmark (issue 12), runnable against any cluster of the harness: the CLI (run.ts)
 * starts its own, the e2e smoke test (test/e2e/bench-smoke.test.ts) uses the suite's.
 *
 * For each system in turn (ours, then the floor, then Velero's node-agents; see systems.ts):
 *   1. N fresh sources (PVC + ready VolumeSnapshot) in a new namespace; wait until the control plane is quiet.
 *   2. Start the system; wait until it is ready (caches synced and leading / watching / controllers started) and
 *      the control plane and the system are quiet again. Sample CPU (`/proc/<pid>/stat` utime+stime) of the
 *      system's processes, of each control-plane component and of this process, and the audit log's size.
 *   3. Create the N DataUploads from a parallel client (16 connections), recording each create call's time; a
 *      DataUpload watch (started before) records the first time each one is seen Prepared (or Failed/Canceled).
 *   4. At the last Prepared: sample CPU again, read peak RSS (`VmHWM`) of each process and the load average. One
 *      second later, count the system's writes appended to the audit log since step 2 (by ServiceAccount;
 *      Events and Leases apart).
 *   5. Stop the system by PID; delete what its run left (DataUploads, finalizers removed, backup pods, PVCs,
 *      snapshots, contents, the source namespace) and wait until nothing is left and the control plane is quiet.
 *
 * Makespan = first create call → last Prepared; New→Prepared = a DataUpload's create call → its first Prepared
 * event. Systems that use different ServiceAccounts are told apart in the audit log; the cluster must have been
 * started with `audit: true` for write counts (otherwise they are reported as missing).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { auditLogFile, isAudited } from '../cluster/control-plane.js';
import { adminRestClient, createTestNamespace, readProcesses, type ClusterInfo } from '../cluster/index.js';
import { hasStatus, type RestClient } from '../cluster/rest.js';
import { applyManifest, deleteNamespaces, type KubectlRunner } from '../cluster/testing.js';
import { installVelero, relabelNamespace, uninstallVelero, type VeleroInstall } from '../cluster/velero.js';
import { waitFor } from '../cluster/wait.js';
import { inParallel, leftovers, type BurstSource } from '../e2e/support/burst.js';
import { ensureStorageClasses, installOperatorManifests } from '../e2e/support/operator.js';
import {
  countWrites,
  cpuSeconds,
  fileSize,
  loadAverage,
  peakRssBytes,
  percentile,
  readLinesSince,
  type ProcessUsage,
  type SystemResult,
} from './measure.js';
import {
  BenchProcesses,
  FLOOR_SA,
  OPERATOR_SA,
  serviceAccountKubeconfig,
  startFloor,
  startOurs,
  startVelero,
  VELERO_NS,
  VELERO_SA,
  type Build,
  type RunningSystem,
} from './systems.js';

/** The systems, in the order they run. */
export const SYSTEMS = ['ours', 'floor', 'velero'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The cluster to run on: an admin kubeconfig, its server and CA, its run directory (audit log, PIDs). */
export type BenchCluster = ClusterInfo & KubectlRunner;

/** How to run. */
export interface BenchOptions {
  readonly count: number;
  readonly systems: readonly SystemName[];
  /** Where logs, kubeconfigs and the child-process state go. */
  readonly workDir: string;
  readonly build: Build;
  /** The Node binary for ours and the floor. */
  readonly node: string;
  readonly log: (line: string) => void;
  /** Extra flags for our operator (e.g. `--max-concurrent-exposes=64`), after the Deployment's. */
  readonly operatorArgs?: readonly string[];
  /** Control-plane CPU (cores) under which the cluster counts as quiet. Default 0.25. */
  readonly quietCores?: number;
  /** How long to wait for quiet before going on anyway. Default 120 s. */
  readonly quietTimeoutMs?: number;
  /** How many quiet seconds in a row count as quiet. Default 3. */
  readonly quietSeconds?: number;
}

const SNAPSHOT_API = '/apis/snapshot.storage.k8s.io/v1';
const DU_API = '/apis/velero.io/v2alpha1';
const STORAGE_CLASS = 'e2e-src';
const SNAPSHOT_CLASS = 'e2e-vsc';
export const CONFIG_MAP = 'bench-node-agent-config';
const LABEL_RUN = 'velero.io/backup-name';
const BACKUP_POD_SELECTOR = 'velero.io/exposer-pod-group=snapshot-exposer';

/** Runs every selected system in turn on the cluster; installs what it needs and removes it again. */
export async function runBenchmark(cluster: BenchCluster, opts: BenchOptions): Promise<SystemResult[]> {
  mkdirSync(opts.workDir, { recursive: true });
  const client = adminRestClient(cluster);
  const procs = new BenchProcesses(join(opts.workDir, 'processes'));
  const setup = await prepare(cluster, opts);
  const results: SystemResult[] = [];
  try {
    for (const system of SYSTEMS.filter((s) => opts.systems.includes(s))) {
      results.push(await runSystem({ cluster, client, procs, opts, setup, system }));
    }
    return results;
  } finally {
    await procs.close();
    await setup.teardown();
    client.close();
  }
}

interface Setup {
  readonly configFile: string;
  readonly kubeconfigs: Readonly<Record<SystemName, string | undefined>>;
  teardown(): Promise<void>;
}

/**
 * Our manifests (CRD, RBAC, the Deployment scaled to 0), the storage classes, an empty node-agent config, the
 * `velero` ServiceAccount the backup pods run as (what `velero install` creates), the floor's ServiceAccount with
 * the operator's Role and ClusterRole, and a kubeconfig per system.
 */
async function prepare(cluster: BenchCluster, opts: BenchOptions): Promise<Setup> {
  await installOperatorManifests(cluster);
  await ensureStorageClasses(cluster);
  const config = '{}';
  const configFile = join(opts.workDir, 'node-agent-config.json');
  writeFileSync(configFile, config);
  const hadVeleroSa = (await cluster.kubectl(['-n', VELERO_NS, 'get', 'serviceaccount', VELERO_SA])).code === 0;
  const objects = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: CONFIG_MAP, namespace: VELERO_NS },
      data: { 'node-agent-config.json': config },
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: FLOOR_SA, namespace: VELERO_NS } },
    binding('RoleBinding', 'Role'),
    binding('ClusterRoleBinding', 'ClusterRole'),
    ...(hadVeleroSa
      ? []
      : [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: VELERO_SA, namespace: VELERO_NS } }]),
  ];
  await applyManifest(cluster, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
  const dir = join(opts.workDir, 'kubeconfigs');
  mkdirSync(dir, { recursive: true });
  const kubeconfigs = {
    ours: await serviceAccountKubeconfig(cluster, OPERATOR_SA, dir),
    floor: await serviceAccountKubeconfig(cluster, FLOOR_SA, dir),
    velero: undefined,
  };
  return {
    configFile,
    kubeconfigs,
    async teardown() {
      const names = [
        `configmap/${CONFIG_MAP}`,
        `serviceaccount/${FLOOR_SA}`,
        `rolebinding/${FLOOR_SA}`,
        ...(hadVeleroSa ? [] : [`serviceaccount/${VELERO_SA}`]),
      ];
      await cluster.kubectl(['-n', VELERO_NS, 'delete', '--ignore-not-found', '--wait=false', ...names]);
      await cluster.kubectl(['delete', '--ignore-not-found', '--wait=false', `clusterrolebinding/${FLOOR_SA}`]);
    },
  };
}

function binding(kind: 'RoleBinding' | 'ClusterRoleBinding', roleKind: 'Role' | 'ClusterRole'): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind,
    metadata: { name: FLOOR_SA, ...(kind === 'RoleBinding' ? { namespace: VELERO_NS } : {}) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: OPERATOR_SA },
    subjects: [{ kind: 'ServiceAccount', name: FLOOR_SA, namespace: VELERO_NS }],
  };
}

interface SystemRun {
  cluster: BenchCluster;
  client: RestClient;
  procs: BenchProcesses;
  opts: BenchOptions;
  setup: Setup;
  system: SystemName;
}

async function runSystem(run: SystemRun): Promise<SystemResult> {
  const { cluster, client, opts, system } = run;
  const runName = `bench-${system}-${randomBytes(3).toString('hex')}`;
  const logDir = join(opts.workDir, runName);
  mkdirSync(logDir, { recursive: true });
  opts.log(`${system}: creating ${opts.count} sources`);
  const namespace = await createTestNamespace(cluster, runName);
  const sources = await createSources(client, { namespace, count: opts.count, runName });
  let velero: { install: VeleroInstall; restoreLabels: () => Promise<void>; kubeconfig: string } | undefined;
  let running: RunningSystem | undefined;
  try {
    if (system === 'velero') velero = await installVeleroForRun(cluster, logDir);
    await waitQuiet(cluster, [], opts, `${system}: quiet before start`);
    opts.log(`${system}: starting`);
    running = await startSystem(run, { namespace, runName, logDir, veleroKubeconfig: velero?.kubeconfig });
    await waitQuiet(cluster, running.processes, opts, `${system}: started; quiet before the burst`);
    const result = await burst({ ...run, running, sources, runName });
    await running.stop();
    running = undefined;
    return result;
  } finally {
    await running?.stop();
    opts.log(`${system}: cleaning up`);
    await cleanUp(client, cluster, { runName, sources, namespace }, opts);
    if (velero) {
      await velero.restoreLabels();
      await uninstallVelero(cluster, velero.install);
    }
    await waitQuiet(cluster, [], opts, `${system}: quiet after cleanup`);
  }
}

/**
 * Velero's CRDs, `velero` ServiceAccount (cluster-admin) and `node-agent` DaemonSet, and Velero's PodSecurity
 * labels on the namespace: its backupPods inherit the DaemonSet's hostPath volumes, which `baseline` refuses.
 */
async function installVeleroForRun(cluster: BenchCluster, dir: string) {
  const install = await installVelero(cluster);
  const restoreLabels = await relabelNamespace(cluster, install.veleroPodSecurityLabels);
  const kubeconfig = await serviceAccountKubeconfig(cluster, VELERO_SA, dir);
  return { install, restoreLabels, kubeconfig };
}

async function startSystem(
  run: SystemRun,
  o: { namespace: string; runName: string; logDir: string; veleroKubeconfig: string | undefined },
): Promise<RunningSystem> {
  const { opts, setup, procs } = run;
  const common = { procs, build: opts.build, node: opts.node, logDir: o.logDir };
  switch (run.system) {
    case 'ours':
      return startOurs({
        ...common,
        kubeconfig: setup.kubeconfigs.ours!,
        configMap: CONFIG_MAP,
        extraArgs: opts.operatorArgs,
      });
    case 'floor':
      return startFloor({
        ...common,
        kubeconfig: setup.kubeconfigs.floor!,
        sourceNamespace: o.namespace,
        labelSelector: `${LABEL_RUN}=${o.runName}`,
        configFile: setup.configFile,
      });
    case 'velero':
      return startVelero({ cluster: run.cluster, kubeconfig: o.veleroKubeconfig!, logDir: o.logDir });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sources and DataUploads

/** `count` PVCs and snapshots of them, created 16 at a time; resolves once every snapshot is ready. */
export async function createSources(
  client: RestClient,
  o: { namespace: string; count: number; runName: string; prefix?: string; timeoutMs?: number },
): Promise<BurstSource[]> {
  const prefix = o.prefix ?? 'src';
  const sources: BurstSource[] = Array.from({ length: o.count }, (_, i) => ({
    namespace: o.namespace,
    pvc: `${prefix}-${i}`,
    snapshot: `${prefix}-${i}-snap`,
    storageClass: STORAGE_CLASS,
    name: `${o.runName}-${i}`,
  }));
  await inParallel(sources, 16, async (s) => {
    await createOnce(client, `/api/v1/namespaces/${s.namespace}/persistentvolumeclaims`, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: s.pvc },
      spec: {
        storageClassName: STORAGE_CLASS,
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    });
    await createOnce(client, `${SNAPSHOT_API}/namespaces/${s.namespace}/volumesnapshots`, {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: { name: s.snapshot },
      spec: { volumeSnapshotClassName: SNAPSHOT_CLASS, source: { persistentVolumeClaimName: s.pvc } },
    });
  });
  await waitFor(
    async () => {
      const list = await client.call<{ items: { status?: { readyToUse?: boolean } }[] }>({
        path: `${SNAPSHOT_API}/namespaces/${o.namespace}/volumesnapshots`,
        timeoutMs: 60_000,
      });
      return list.items.filter((vs) => vs.status?.readyToUse === true).length >= o.count;
    },
    {
      description: `${o.count} snapshots ready in ${o.namespace}`,
      timeoutMs: o.timeoutMs ?? 120_000 + o.count * 500,
      intervalMs: 500,
    },
  );
  return sources;
}

/** POST, where an existing object (409) counts as created: a retried request may have landed already. */
async function createOnce(client: RestClient, path: string, body: object): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.call({ method: 'POST', path, body, timeoutMs: 60_000 });
      return;
    } catch (err) {
      if (hasStatus(err, 409)) return;
      if (attempt >= 5 || !(hasStatus(err, 0) || hasStatus(err, 429) || hasStatus(err, 500) || hasStatus(err, 503))) {
        throw err;
      }
      await sleep(200 * attempt);
    }
  }
}

/** The DataUpload Velero's server creates for a source, labelled with the run. */
function dataUploadBody(s: BurstSource, runName: string): object {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: { name: s.name, namespace: VELERO_NS, labels: { [LABEL_RUN]: runName } },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: { volumeSnapshot: s.snapshot, storageClass: s.storageClass, snapshotClass: SNAPSHOT_CLASS },
      sourcePVC: s.pvc,
      sourceNamespace: s.namespace,
      backupStorageLocation: 'default',
      operationTimeout: '10m',
    },
  };
}

interface DuEvent {
  type: string;
  object: { metadata: { name?: string; resourceVersion?: string }; status?: { phase?: string } };
}

/** The first time each DataUpload of a run is seen Prepared, or terminal without it, from one watch. */
class PhaseWatch {
  readonly prepared = new Map<string, number>();
  readonly ended = new Map<string, string>();
  private stopped = false;
  private current: { destroy(): void } | undefined;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: RestClient,
    private readonly runName: string,
  ) {}

  /** Lists (so the watch starts from a known version), then follows the watch in the background. */
  async start(): Promise<void> {
    const list = await this.client.call<{ metadata: { resourceVersion: string }; items: DuEvent['object'][] }>({
      path: `${DU_API}/namespaces/${VELERO_NS}/datauploads?labelSelector=${encodeURIComponent(this.selector())}`,
    });
    for (const du of list.items) this.observe(du);
    this.done = this.follow(list.metadata.resourceVersion);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.destroy();
    await this.done;
  }

  private selector(): string {
    return `${LABEL_RUN}=${this.runName}`;
  }

  private observe(du: DuEvent['object']): void {
    const name = du.metadata.name ?? '';
    const phase = du.status?.phase ?? '';
    if (phase === 'Prepared' && !this.prepared.has(name)) this.prepared.set(name, Date.now());
    if ((phase === 'Failed' || phase === 'Canceled') && !this.prepared.has(name)) this.ended.set(name, phase);
  }

  private async follow(fromVersion: string): Promise<void> {
    let rv = fromVersion;
    while (!this.stopped) {
      try {
        const query = `watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&resourceVersion=${rv}&labelSelector=${encodeURIComponent(this.selector())}`;
        const res = await this.client.openStream(`${DU_API}/namespaces/${VELERO_NS}/datauploads?${query}`, 3_700_000);
        this.current = res;
        if (this.stopped) res.destroy();
        await eachLine(res, (line) => {
          const event = JSON.parse(line) as DuEvent;
          if (event.type === 'ERROR') throw new Error(`DataUpload watch: ${line}`);
          rv = event.object.metadata.resourceVersion ?? rv;
          if (event.type === 'ADDED' || event.type === 'MODIFIED') this.observe(event.object);
        });
      } catch {
        if (this.stopped) return;
        await sleep(200);
      }
    }
  }
}

/**
 * Calls `onLine` for every non-empty line of a stream; resolves when the stream closes (also when it is destroyed,
 * which readline's iterator does not notice), rejects when `onLine` throws or the stream fails.
 */
function eachLine(stream: NodeJS.ReadableStream & { destroy(): void }, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let rest = '';
    let failed = false;
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      try {
        for (const line of lines) if (line.trim() !== '') onLine(line);
      } catch (err) {
        failed = true;
        stream.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    stream.on('error', (err: Error) => {
      failed = true;
      reject(err);
    });
    stream.on('close', () => resolve());
  });
}

interface BurstInput extends SystemRun {
  running: RunningSystem;
  sources: BurstSource[];
  runName: string;
}

async function burst(b: BurstInput): Promise<SystemResult> {
  const { cluster, client, opts, running, sources, system } = b;
  const count = sources.length;
  const watch = new PhaseWatch(client, b.runName);
  await watch.start();
  const audit = auditLogFile(cluster.runDir);
  const auditOffset = fileSize(audit);
  const controlPlane = controlPlaneProcesses(cluster);
  const before = cpuOf(running.processes);
  const cpBefore = cpuOf(controlPlane);
  const benchBefore = process.cpuUsage();
  const loadStart = loadAverage();
  const created = new Map<string, number>();
  opts.log(`${system}: creating ${count} DataUploads`);
  const creator = adminRestClient(cluster);
  try {
    await inParallel(sources, 16, async (s) => {
      created.set(s.name, Date.now());
      await createOnce(creator, `${DU_API}/namespaces/${VELERO_NS}/datauploads`, dataUploadBody(s, b.runName));
    });
  } finally {
    creator.close();
  }
  const first = Math.min(...created.values());
  await waitAllSettled(watch, count, opts, system);
  const last = Math.max(...watch.prepared.values());
  const after = cpuOf(running.processes);
  const cpAfter = cpuOf(controlPlane);
  const benchUsage = process.cpuUsage(benchBefore);
  const loadEnd = loadAverage();
  const processes: ProcessUsage[] = running.processes.map((p) => ({
    name: p.name,
    pid: p.pid,
    cpuSeconds: (after.get(p.pid) ?? NaN) - (before.get(p.pid) ?? NaN),
    peakRssBytes: peakRssBytes(p.pid) ?? NaN,
  }));
  await watch.stop();
  // Events are recorded a moment after the write they describe; give the last ones a second to land.
  await sleep(1_000);
  const writes = countAuditedWrites(
    isAudited(cluster.runDir),
    audit,
    auditOffset,
    running.identities,
    watch.prepared.size,
  );
  const latencies = [...watch.prepared].map(([name, at]) => (at - (created.get(name) ?? NaN)) / 1000);
  const cpu = processes.reduce((sum, p) => sum + p.cpuSeconds, 0);
  const makespan = (last - first) / 1000;
  const prepared = watch.prepared.size;
  const result: SystemResult = {
    system,
    count,
    prepared,
    failed: watch.ended.size,
    makespanSeconds: makespan,
    perSecond: prepared / makespan,
    p50Seconds: percentile(latencies, 50),
    p99Seconds: percentile(latencies, 99),
    ...(writes ? { writes } : {}),
    cpuSeconds: cpu,
    cpuSecondsPerDataUpload: cpu / Math.max(1, prepared),
    peakRssBytes: processes.reduce((sum, p) => sum + p.peakRssBytes, 0),
    processes,
    controlPlaneCpuSeconds: Object.fromEntries(
      controlPlane.map((p) => [p.name, (cpAfter.get(p.pid) ?? NaN) - (cpBefore.get(p.pid) ?? NaN)]),
    ),
    benchCpuSeconds: (benchUsage.user + benchUsage.system) / 1e6,
    loadAverageStart: loadStart,
    loadAverageEnd: loadEnd,
  };
  opts.log(`${system}: ${prepared}/${count} Prepared in ${makespan.toFixed(2)} s`);
  return result;
}

/** Waits until every DataUpload is Prepared or ended; gives up when nothing moved for two minutes. */
async function waitAllSettled(watch: PhaseWatch, count: number, opts: BenchOptions, system: string): Promise<void> {
  let lastProgress = Date.now();
  let lastSeen = -1;
  let lastReport = Date.now();
  for (;;) {
    const settled = watch.prepared.size + watch.ended.size;
    if (settled >= count) break;
    if (settled !== lastSeen) {
      lastSeen = settled;
      lastProgress = Date.now();
    }
    if (Date.now() - lastProgress > 120_000) {
      throw new Error(`${system}: no DataUpload became Prepared for 120 s (${watch.prepared.size}/${count} Prepared)`);
    }
    if (Date.now() - lastReport > 30_000) {
      lastReport = Date.now();
      opts.log(`${system}: ${watch.prepared.size}/${count} Prepared`);
    }
    await sleep(50);
  }
  if (watch.ended.size > 0) {
    opts.log(
      `${system}: ${watch.ended.size} DataUploads ended without Prepared: ${[...watch.ended].slice(0, 5).join(', ')}`,
    );
  }
}

function countAuditedWrites(
  audited: boolean,
  audit: string,
  offset: number,
  identities: readonly string[],
  prepared: number,
): SystemResult['writes'] {
  if (!audited) return undefined;
  const counts = countWrites(readLinesSince(audit, offset), new Set(identities));
  const per = Math.max(1, prepared);
  return { ...counts, perDataUpload: counts.objects / per, eventsPerDataUpload: counts.events / per };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes and quiet

interface NamedPid {
  name: string;
  pid: number;
}

/** The control plane's components (not the watchdog), from the cluster's process list. */
function controlPlaneProcesses(cluster: BenchCluster): NamedPid[] {
  return readProcesses(cluster.runDir)
    .filter((p) => p.name !== 'watchdog')
    .map((p) => ({ name: p.name, pid: p.pid }));
}

function cpuOf(processes: readonly NamedPid[]): Map<number, number> {
  return new Map(processes.map((p) => [p.pid, cpuSeconds(p.pid) ?? NaN]));
}

/**
 * Waits until the control plane plus `extra` processes used less than `quietCores` CPU over each of `quietSeconds`
 * consecutive seconds (at most `quietTimeoutMs`; then it goes on with a note).
 */
async function waitQuiet(
  cluster: BenchCluster,
  extra: readonly NamedPid[],
  opts: BenchOptions,
  what: string,
): Promise<void> {
  const limit = opts.quietCores ?? 0.25;
  const timeoutMs = opts.quietTimeoutMs ?? 120_000;
  const needed = opts.quietSeconds ?? 3;
  const processes = [...controlPlaneProcesses(cluster), ...extra];
  const total = () => [...cpuOf(processes).values()].reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const started = Date.now();
  let quietSeconds = 0;
  let previous = total();
  let used = 0;
  while (quietSeconds < needed) {
    if (Date.now() - started > timeoutMs) {
      opts.log(`${what}: not quiet after ${timeoutMs / 1000} s (last second: ${used.toFixed(2)} cores); going on`);
      return;
    }
    await sleep(1_000);
    const now = total();
    used = now - previous;
    previous = now;
    quietSeconds = used < limit ? quietSeconds + 1 : 0;
  }
  opts.log(`${what} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

// ---------------------------------------------------------------------------------------------------------------
// Cleanup

/**
 * Deletes what a run left, with the system stopped: DataUploads (finalizers removed), backup pods (no grace),
 * backup PVCs and snapshots, every content that refers to a backup or source snapshot, and the source namespace;
 * waits until none of it is left (PVs included) and the namespace is gone.
 */
export async function cleanUp(
  client: RestClient,
  cluster: BenchCluster,
  run: { runName: string; sources: readonly BurstSource[]; namespace: string },
  opts: Pick<BenchOptions, 'log'>,
): Promise<void> {
  const names = new Set(run.sources.map((s) => s.name));
  type Item = { metadata: { name: string; finalizers?: string[] }; spec?: Record<string, any> };
  const list = async (path: string) => (await client.call<{ items: Item[] }>({ path, timeoutMs: 60_000 })).items;
  const send = async (method: 'PATCH' | 'DELETE', path: string, body?: object) => {
    const res = await client.send({ method, path, body, timeoutMs: 60_000 });
    if (res.status >= 300 && res.status !== 404) throw new Error(`${method} ${path}: ${res.status}`);
  };
  const selector = encodeURIComponent(`${LABEL_RUN}=${run.runName}`);
  const dus = await list(`${DU_API}/namespaces/${VELERO_NS}/datauploads?labelSelector=${selector}`);
  await inParallel(dus, 16, async (du) => {
    const path = `${DU_API}/namespaces/${VELERO_NS}/datauploads/${du.metadata.name}`;
    if ((du.metadata.finalizers ?? []).length > 0) await send('PATCH', path, { metadata: { finalizers: null } });
    await send('DELETE', path);
  });
  const pods = await list(
    `/api/v1/namespaces/${VELERO_NS}/pods?labelSelector=${encodeURIComponent(BACKUP_POD_SELECTOR)}`,
  );
  await inParallel(
    pods.filter((p) => names.has(p.metadata.name)),
    16,
    (p) => send('DELETE', `/api/v1/namespaces/${VELERO_NS}/pods/${p.metadata.name}?gracePeriodSeconds=0`),
  );
  const pvcs = await list(`/api/v1/namespaces/${VELERO_NS}/persistentvolumeclaims`);
  await inParallel(
    pvcs.filter((p) => names.has(p.metadata.name)),
    16,
    (p) => send('DELETE', `/api/v1/namespaces/${VELERO_NS}/persistentvolumeclaims/${p.metadata.name}`),
  );
  const snapshots = await list(`${SNAPSHOT_API}/namespaces/${VELERO_NS}/volumesnapshots`);
  await inParallel(
    snapshots.filter((s) => names.has(s.metadata.name)),
    16,
    (s) => send('DELETE', `${SNAPSHOT_API}/namespaces/${VELERO_NS}/volumesnapshots/${s.metadata.name}`),
  );
  const sourceSnapshots = new Set(run.sources.map((s) => s.snapshot));
  const contents = await list(`${SNAPSHOT_API}/volumesnapshotcontents`);
  await inParallel(
    contents.filter((c) => {
      const ref = (c.spec?.volumeSnapshotRef ?? {}) as { name?: string; namespace?: string };
      return (
        (ref.namespace === VELERO_NS && names.has(ref.name ?? '')) ||
        (ref.namespace === run.namespace && sourceSnapshots.has(ref.name ?? ''))
      );
    }),
    16,
    (c) => send('DELETE', `${SNAPSHOT_API}/volumesnapshotcontents/${c.metadata.name}`),
  );
  // The sources by collection first: the namespace controller alone takes several seconds more to get to them.
  await send('DELETE', `${SNAPSHOT_API}/namespaces/${run.namespace}/volumesnapshots`);
  await send('DELETE', `/api/v1/namespaces/${run.namespace}/persistentvolumeclaims`);
  await deleteNamespaces(cluster, run.namespace);
  let remaining: string[] = [];
  await waitFor(
    async () => {
      remaining = await leftovers(client, run.sources);
      const volumes = await list('/api/v1/persistentvolumes');
      for (const pv of volumes) {
        if ((pv.spec?.claimRef as { namespace?: string } | undefined)?.namespace === run.namespace) {
          remaining.push(`persistentvolume ${pv.metadata.name} (source)`);
        }
      }
      const ns = await client.send({ path: `/api/v1/namespaces/${run.namespace}` });
      if (ns.status !== 404) remaining.push(`namespace ${run.namespace}`);
      return remaining.length === 0;
    },
    {
      description: `the run ${run.runName} to be cleaned up`,
      timeoutMs: 300_000 + run.sources.length * 300,
      intervalMs: run.sources.length > 200 ? 2_000 : 500,
    },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; left: ${remaining.slice(0, 10).join(', ')} (${remaining.length} in all)`);
  });
  opts.log(`${run.runName}: cleaned up`);
}
