/**
 * Boots and tears down the processes of one control plane. The public API (index.ts) wraps this.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  apiServerCommand,
  controllerManagerCommand,
  etcdCommand,
  kwokCommand,
  schedulerCommand,
  type CommandLine,
  type Layout,
} from './components.js';
import { FAKE_CSI_DRIVER } from './fake-csi-plan.js';
import { createPki, writeKubeconfig, type IdentityKey } from './pki.js';
import { kwokStagesFile, REPO_ROOT } from './paths.js';
import { freeLoopbackPorts } from './ports.js';
import { isRunning, processError, signalIfRunning, spawnLogged, stopProcess, type ProcessRecord } from './processes.js';
import { hasStatus, type RestClient } from './rest.js';
import { waitFor } from './wait.js';

/** Names of the fake Nodes kwok manages by default. */
export const KWOK_NODE_NAMES = ['kwok-node-0', 'kwok-node-1', 'kwok-node-2'] as const;

/** The names of `count` kwok Nodes: {@link KWOK_NODE_NAMES} first, then `kwok-node-3`, `kwok-node-4`, ... */
export function kwokNodeNamesFor(count: number): string[] {
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`kwok node count must be a positive integer, got ${count}`);
  return Array.from({ length: count }, (_, i) => `kwok-node-${i}`);
}

/** Stop order: clients of the API server first, the API server, then its storage. */
const STOP_WAVES: readonly (readonly string[])[] = [
  ['watchdog', 'kwok', 'fake-csi', 'kube-scheduler', 'kube-controller-manager'],
  ['kube-apiserver'],
  ['etcd'],
];

/**
 * The processes of one cluster. Mutable by design (a restart swaps the API server's record), so it is an
 * instance, and it mirrors itself to `<runDir>/processes.json` so another process can stop exactly these PIDs.
 */
export class ProcessSet {
  private readonly records = new Map<string, ProcessRecord>();

  constructor(readonly runDir: string) {}

  /** Records a started process (replacing an earlier one of the same name). */
  put(rec: ProcessRecord): void {
    this.records.set(rec.name, rec);
    this.save();
  }

  get(name: string): ProcessRecord | undefined {
    return this.records.get(name);
  }

  all(): ProcessRecord[] {
    return [...this.records.values()];
  }

  private save(): void {
    if (existsSync(this.runDir)) {
      writeFileSync(processesFile(this.runDir), JSON.stringify(this.all(), null, 2));
    }
  }
}

/** Where a cluster keeps its current process list. */
export function processesFile(runDir: string): string {
  return join(runDir, 'processes.json');
}

/** Stops the given processes in dependency order; every wave stops in parallel. */
export async function stopInOrder(records: readonly ProcessRecord[]): Promise<void> {
  const known = new Set(STOP_WAVES.flat());
  const waves = [...STOP_WAVES.map((w) => records.filter((r) => w.includes(r.name)))];
  waves.unshift(records.filter((r) => !known.has(r.name)));
  for (const wave of waves) await Promise.all(wave.map((r) => stopProcess(r)));
}

/** A handle that undoes {@link installExitGuard}. */
export interface ExitGuard {
  dispose(): void;
}

/**
 * Makes sure a crashing or interrupted runner does not leave a control plane behind: on `exit` and on
 * SIGINT/SIGTERM/SIGHUP it SIGKILLs the recorded PIDs synchronously (async work is impossible in an exit handler)
 * and removes the run directory. A signal is re-raised when nobody else handles it, to keep its default effect.
 */
export function installExitGuard(procs: ProcessSet): ExitGuard {
  const killAll = (): void => {
    for (const rec of procs.all()) signalIfRunning(rec, 'SIGKILL');
    rmSync(procs.runDir, { recursive: true, force: true });
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (signal: NodeJS.Signals): void => {
    killAll();
    dispose();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const dispose = (): void => {
    process.off('exit', killAll);
    for (const s of signals) process.off(s, onSignal);
  };
  process.on('exit', killAll);
  for (const s of signals) process.on(s, onSignal);
  return { dispose };
}

/** Creates the run directory on tmpfs when there is one. */
export async function makeRunDir(): Promise<string> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return mkdtemp(join(base, 'duo-cluster-'));
}

/** Runs `build-binaries.sh` (a no-op when the binaries exist; progress on our stderr) and returns the bin dir. */
export function buildBinaries(): Promise<string> {
  return runBuildScript('build-binaries.sh');
}

/** Runs `build-velero.sh` (a no-op when the binary exists) and returns the dir holding Velero's `velero` binary. */
export function buildVelero(): Promise<string> {
  return runBuildScript('build-velero.sh');
}

/** Runs a build script of this directory that prints its output directory on its last stdout line. */
function runBuildScript(name: string): Promise<string> {
  const script = join(REPO_ROOT, 'test/cluster', name);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last) resolve(last);
      else reject(new Error(`${name} exited with ${code}`));
    });
  });
}

/**
 * The audit policy of {@link prepareLayout}'s `audit` option: request metadata of every write (create, update, patch,
 * delete) by a ServiceAccount, nothing else. The clients a test or benchmark measures (the operator, Velero's
 * node-agents, the benchmark's floor) authenticate as ServiceAccounts; the control plane's own components and the
 * admin use static tokens and would otherwise flood the log with status updates and heartbeats.
 */
export const AUDIT_POLICY = Object.freeze({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    {
      level: 'Metadata',
      userGroups: ['system:serviceaccounts'],
      verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'],
    },
    { level: 'None' },
  ],
});

const AUDIT_POLICY_FILE = 'audit-policy.json';

/** Where kube-apiserver writes its audit log (JSON lines) when the cluster was started with `audit`. */
export function auditLogFile(runDir: string): string {
  return join(runDir, 'audit.log');
}

/** Whether the cluster of this run directory was started with `audit` (its log may not exist before a write). */
export function isAudited(runDir: string): boolean {
  return existsSync(join(runDir, AUDIT_POLICY_FILE));
}

/** Generates ports, PKI and kubeconfigs for a new cluster; with `audit`, also the audit policy (see AUDIT_POLICY). */
export async function prepareLayout(binDir: string, runDir: string, opts: { audit?: boolean } = {}): Promise<Layout> {
  const [etcdClient, etcdPeer, apiServer, controllerManager, scheduler] = await freeLoopbackPorts(5);
  const ports = {
    etcdClient: etcdClient!,
    etcdPeer: etcdPeer!,
    apiServer: apiServer!,
    controllerManager: controllerManager!,
    scheduler: scheduler!,
  };
  const pki = await createPki(runDir);
  const server = `https://127.0.0.1:${ports.apiServer}`;
  const kubeconfigPath = (key: IdentityKey): string =>
    join(runDir, key === 'admin' ? 'kubeconfig' : `${pki.identities[key].key}.kubeconfig`);
  const keys: IdentityKey[] = ['admin', 'kcm', 'scheduler', 'kwok', 'fakeCsi'];
  await Promise.all(
    keys.map((key) =>
      writeKubeconfig({
        path: kubeconfigPath(key),
        server,
        caFile: pki.caFile,
        user: pki.identities[key].user,
        token: pki.identities[key].token,
      }),
    ),
  );
  const kubeconfigs = {
    admin: kubeconfigPath('admin'),
    kcm: kubeconfigPath('kcm'),
    scheduler: kubeconfigPath('scheduler'),
    kwok: kubeconfigPath('kwok'),
    fakeCsi: kubeconfigPath('fakeCsi'),
  };
  let audit: Layout['audit'];
  if (opts.audit) {
    audit = { policyFile: join(runDir, AUDIT_POLICY_FILE), logFile: auditLogFile(runDir) };
    writeFileSync(audit.policyFile, JSON.stringify(AUDIT_POLICY, null, 2));
  }
  return { binDir, runDir, ports, pki, kubeconfigs, kwokStagesFile: kwokStagesFile(), audit };
}

/** A TypeScript entry point of this directory run as its own Node process (through tsx). */
function tsxCommand(o: { name: string; script: string; args: string[]; runDir: string }): CommandLine {
  return {
    name: o.name,
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'test/cluster', o.script), ...o.args],
    logFile: join(o.runDir, `${o.name}.log`),
  };
}

/** The fake CSI storage layer as a child process. */
export function fakeCsiCommand(layout: Layout): CommandLine & { readyFile: string } {
  const readyFile = join(layout.runDir, 'fake-csi.ready');
  const args = [`--kubeconfig=${layout.kubeconfigs.fakeCsi}`, `--ready-file=${readyFile}`];
  return { ...tsxCommand({ name: 'fake-csi', script: 'fake-csi-main.ts', args, runDir: layout.runDir }), readyFile };
}

/**
 * Starts the watchdog that stops this cluster if the current process dies without running its exit handlers
 * (SIGKILL). Exit handlers cover everything else; only a separate process can cover that.
 */
export function startWatchdog(procs: ProcessSet): void {
  const args = [`--owner=${process.pid}`, `--run-dir=${procs.runDir}`];
  startComponent(procs, tsxCommand({ name: 'watchdog', script: 'watchdog.ts', args, runDir: procs.runDir }));
}

/** Starts one component and records it. */
export function startComponent(procs: ProcessSet, cmd: CommandLine): ProcessRecord {
  const rec = spawnLogged({ ...cmd, cwd: REPO_ROOT });
  procs.put(rec);
  return rec;
}

/** A precondition for {@link waitFor}: fails fast, with the log tail, when the process has died. */
export function mustBeRunning(rec: ProcessRecord): () => void {
  return () => {
    if (!isRunning(rec)) throw processError(rec, 'exited during start-up');
  };
}

/** Starts etcd and waits until it reports healthy. */
export async function startEtcd(procs: ProcessSet, layout: Layout): Promise<void> {
  const rec = startComponent(procs, etcdCommand(layout));
  await waitFor(
    async () => {
      const body = await plainGet(`http://127.0.0.1:${layout.ports.etcdClient}/health`);
      return body.includes('"health":"true"');
    },
    { description: 'etcd /health', timeoutMs: 30_000, intervalMs: 100, precondition: mustBeRunning(rec) },
  ).catch(withLog(rec));
}

/** Starts (or restarts) kube-apiserver and waits for /readyz. */
export async function startApiServer(procs: ProcessSet, layout: Layout, admin: RestClient): Promise<void> {
  const rec = startComponent(procs, apiServerCommand(layout));
  await waitForReadyz(rec, admin);
}

/** Waits until the API server answers /readyz with ok. */
export async function waitForReadyz(rec: ProcessRecord, admin: RestClient): Promise<void> {
  await waitFor(
    async () => {
      const res = await admin.send<string>({ path: '/readyz', timeoutMs: 5_000 });
      return res.status === 200;
    },
    { description: 'kube-apiserver /readyz', timeoutMs: 120_000, intervalMs: 200, precondition: mustBeRunning(rec) },
  ).catch(withLog(rec));
}

/**
 * Starts KCM, the scheduler, kwok and (optionally) the fake CSI, creates the kwok Nodes (`nodes`, default
 * {@link KWOK_NODE_NAMES}) and waits until the cluster can run pods.
 */
export async function startControllers(
  procs: ProcessSet,
  layout: Layout,
  o: { admin: RestClient; fakeCsi: boolean; nodes?: readonly string[] },
): Promise<void> {
  const nodes = o.nodes ?? KWOK_NODE_NAMES;
  const kcm = startComponent(procs, controllerManagerCommand(layout));
  const scheduler = startComponent(procs, schedulerCommand(layout));
  const kwok = startComponent(procs, kwokCommand(layout));
  const csi = o.fakeCsi ? fakeCsiCommand(layout) : undefined;
  const csiRec = csi ? startComponent(procs, csi) : undefined;
  const abort = new AbortController();
  const waits = [
    waitForHealthz(kcm, layout.ports.controllerManager, abort.signal),
    waitForHealthz(scheduler, layout.ports.scheduler, abort.signal),
    waitForDefaultServiceAccount(o.admin, kcm, abort.signal),
    createCsiDriver(o.admin),
    createKwokNodes(o.admin, nodes).then(() => waitForNodesReady(o.admin, kwok, nodes, abort.signal)),
  ];
  if (csi && csiRec) waits.push(waitForFile(csi.readyFile, csiRec, abort.signal));
  try {
    await Promise.all(waits);
  } catch (err) {
    abort.abort();
    await Promise.allSettled(waits);
    throw err;
  }
}

function waitForHealthz(rec: ProcessRecord, port: number, signal: AbortSignal): Promise<void> {
  return waitFor(async () => (await insecureGet(`https://127.0.0.1:${port}/healthz`)) === 'ok', {
    description: `${rec.name} /healthz`,
    timeoutMs: 90_000,
    precondition: mustBeRunning(rec),
    signal,
  })
    .then(() => undefined)
    .catch(withLog(rec));
}

function waitForDefaultServiceAccount(admin: RestClient, kcm: ProcessRecord, signal: AbortSignal): Promise<void> {
  return waitFor(
    async () => (await admin.send({ path: '/api/v1/namespaces/default/serviceaccounts/default' })).status === 200,
    { description: 'serviceaccount default/default', timeoutMs: 90_000, precondition: mustBeRunning(kcm), signal },
  )
    .then(() => undefined)
    .catch(withLog(kcm));
}

async function createCsiDriver(admin: RestClient): Promise<void> {
  await createIgnoringConflict(admin, '/apis/storage.k8s.io/v1/csidrivers', {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'CSIDriver',
    metadata: { name: FAKE_CSI_DRIVER },
    // No attach step: kwok nodes have no attacher, and VolumeAttachments would only add noise.
    spec: { attachRequired: false, podInfoOnMount: false, volumeLifecycleModes: ['Persistent'] },
  });
}

/** The Node objects kwok takes over; kwok fills in their status and heartbeats. */
export function kwokNodeManifest(name: string): object {
  const labels: Record<string, string> = {
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    'kubernetes.io/hostname': name,
    type: 'kwok',
  };
  if (name === 'kwok-node-2') labels['topology.kubernetes.io/zone'] = 'zone-b';
  const resources = { cpu: '32', memory: '256Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels, annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' } },
    status: { allocatable: resources, capacity: resources },
  };
}

async function createKwokNodes(admin: RestClient, nodes: readonly string[]): Promise<void> {
  await Promise.all(nodes.map((n) => createIgnoringConflict(admin, '/api/v1/nodes', kwokNodeManifest(n))));
}

interface NodeLike {
  metadata: { name: string };
  spec?: { taints?: { key: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

/** Ready, and the node-lifecycle controller has lifted the not-ready taint, so pods can land there. */
function nodeIsSchedulable(node: NodeLike): boolean {
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const tainted = node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/')) ?? false;
  return ready && !tainted;
}

function waitForNodesReady(
  admin: RestClient,
  kwok: ProcessRecord,
  nodes: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  return waitFor(
    async () => {
      const list = await admin.call<{ items: NodeLike[] }>({ path: '/api/v1/nodes?labelSelector=type%3Dkwok' });
      const ready = list.items.filter(nodeIsSchedulable).map((n) => n.metadata.name);
      return nodes.every((n) => ready.includes(n));
    },
    {
      description: 'the kwok nodes to be Ready and untainted',
      timeoutMs: 90_000,
      precondition: mustBeRunning(kwok),
      signal,
    },
  )
    .then(() => undefined)
    .catch(withLog(kwok));
}

function waitForFile(file: string, rec: ProcessRecord, signal: AbortSignal): Promise<void> {
  return waitFor(async () => Promise.resolve(existsSync(file)), {
    description: `${rec.name} to report ready`,
    timeoutMs: 90_000,
    precondition: mustBeRunning(rec),
    signal,
  })
    .then(() => undefined)
    .catch(withLog(rec));
}

/** POSTs an object; an existing one (409) counts as success. */
export async function createIgnoringConflict(client: RestClient, path: string, body: object): Promise<void> {
  try {
    await client.call({ method: 'POST', path, body });
  } catch (err) {
    if (!hasStatus(err, 409)) throw err;
  }
}

/** Adds the process's log tail to a timeout error (a process-died error already has it). */
function withLog(rec: ProcessRecord): (err: unknown) => never {
  return (err: unknown) => {
    if (err instanceof Error && err.message.includes(rec.logFile)) throw err;
    const cause = err instanceof Error ? err.message : String(err);
    throw processError(rec, `did not become ready: ${cause}`);
  };
}

function plainGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 3_000 }, (res) => collect(res, resolve, reject));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** GET against a component's self-signed health endpoint on loopback: nothing to verify the cert against. */
function insecureGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { timeout: 3_000, rejectUnauthorized: false }, (res) => collect(res, resolve, reject));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function collect(res: NodeJS.ReadableStream, resolve: (s: string) => void, reject: (e: Error) => void): void {
  let text = '';
  res.on('data', (c: Buffer) => (text += c.toString()));
  res.on('end', () => resolve(text));
  res.on('error', reject);
}

/** Removes a run directory (best effort). */
export async function removeRunDir(runDir: string): Promise<void> {
  await rm(runDir, { recursive: true, force: true });
}
