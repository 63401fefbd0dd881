/**
 * A real Kubernetes control plane on one machine, for e2e tests, the demo and the benchmark: etcd,
 * kube-apiserver (RBAC, Node authorizer, PodSecurity), kube-controller-manager, kube-scheduler, kwok with three
 * fake Nodes (or `nodes`), and the fake CSI layer, all on 127.0.0.1 with a run directory on tmpfs.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Layout } from './components.js';
import {
  buildBinaries,
  installExitGuard,
  kwokNodeNamesFor,
  makeRunDir,
  prepareLayout,
  processesFile,
  ProcessSet,
  removeRunDir,
  startApiServer,
  startControllers,
  startEtcd,
  startWatchdog,
  stopInOrder,
  waitForReadyz,
  startComponent,
  type ExitGuard,
} from './control-plane.js';
import { apiServerCommand } from './components.js';
import { stopProcess, type ProcessRecord } from './processes.js';
import { RestClient } from './rest.js';
import { waitFor } from './wait.js';

/** How to reach a running cluster. */
export interface ClusterInfo {
  /** Admin kubeconfig (token auth, CA file). */
  kubeconfig: string;
  /** `https://127.0.0.1:<port>` */
  server: string;
  caFile: string;
  /** Bearer token of `admin` (group `system:masters`). */
  adminToken: string;
  binDir: string;
  runDir: string;
}

/** Result of one kubectl run; a non-zero exit is reported, not thrown. */
export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** A cluster started by this process. */
export interface Cluster extends ClusterInfo {
  /** Runs kubectl against the cluster (admin unless `kubeconfig` is given), with optional stdin. */
  kubectl(args: string[], opts?: { input?: string; kubeconfig?: string }): Promise<KubectlResult>;
  /** Kills kube-apiserver (SIGTERM, then SIGKILL), starts it again with the same flags and waits for /readyz. */
  restartApiServer(): Promise<void>;
  /** Stops exactly the processes it started, clients first, and removes the run directory. */
  stop(): Promise<void>;
}

/** The state file written by the e2e runner and the CLI: the cluster plus the processes to stop. */
export interface ClusterState extends ClusterInfo {
  processes: ProcessRecord[];
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  /** Run the fake CSI layer (snapshot CRDs, snapshotter, provisioner). Default true. */
  fakeCsi?: boolean;
  /** Use these binaries instead of running build-binaries.sh. */
  binDir?: string;
  /**
   * Leave the processes running when this Node process exits (the CLI's `up`). By default exit and signal
   * handlers kill them, so a crashing runner never leaves a control plane behind.
   */
  persistent?: boolean;
  /** How many kwok Nodes to create (`kwok-node-0` …). Default 3 ({@link KWOK_NODE_NAMES}). */
  nodes?: number;
  /**
   * Let kube-apiserver write an audit log of every write by a ServiceAccount (metadata only) to
   * `auditLogFile(runDir)`, so a test or benchmark can count the API writes of the client it measures.
   */
  audit?: boolean;
}

/** Environment variable naming the state file that {@link connectCluster} reads. */
export const STATE_ENV = 'DUO_E2E_STATE';

/** Where `cluster:up` keeps its state. */
export function cliStateFile(): string {
  return join(process.env.TMPDIR ?? tmpdir(), 'dataupload-operator-cluster', 'state.json');
}

/** Starts a control plane and resolves once the kwok Nodes (three by default) are Ready and the fake CSI serves. */
export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const binDir = opts.binDir ?? (await buildBinaries());
  const runDir = await makeRunDir();
  const procs = new ProcessSet(runDir);
  const guard = opts.persistent ? undefined : installExitGuard(procs);
  let admin: RestClient | undefined;
  try {
    if (!opts.persistent) startWatchdog(procs);
    const layout = await prepareLayout(binDir, runDir, { audit: opts.audit ?? false });
    admin = adminClient(layout);
    await startEtcd(procs, layout);
    await startApiServer(procs, layout, admin);
    await startControllers(procs, layout, {
      admin,
      fakeCsi: opts.fakeCsi ?? true,
      nodes: opts.nodes === undefined ? undefined : kwokNodeNamesFor(opts.nodes),
    });
    return makeCluster({ layout, procs, guard, admin });
  } catch (err) {
    admin?.close();
    await stopInOrder(procs.all());
    guard?.dispose();
    await removeRunDir(runDir);
    throw err;
  }
}

function adminClient(layout: Layout): RestClient {
  return new RestClient({
    server: `https://127.0.0.1:${layout.ports.apiServer}`,
    caFile: layout.pki.caFile,
    token: layout.pki.identities.admin.token,
  });
}

function infoOf(layout: Layout): ClusterInfo {
  return {
    kubeconfig: layout.kubeconfigs.admin,
    server: `https://127.0.0.1:${layout.ports.apiServer}`,
    caFile: layout.pki.caFile,
    adminToken: layout.pki.identities.admin.token,
    binDir: layout.binDir,
    runDir: layout.runDir,
  };
}

function makeCluster(o: {
  layout: Layout;
  procs: ProcessSet;
  guard: ExitGuard | undefined;
  admin: RestClient;
}): Cluster {
  const info = infoOf(o.layout);
  let stopped = false;
  return {
    ...info,
    kubectl: (args, opts) => runKubectl({ kubeconfig: opts?.kubeconfig ?? info.kubeconfig, args, input: opts?.input }),
    async restartApiServer() {
      const old = o.procs.get('kube-apiserver');
      if (old) await stopProcess(old);
      const rec = startComponent(o.procs, apiServerCommand(o.layout));
      await waitForReadyz(rec, o.admin);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      o.admin.close();
      await stopInOrder(o.procs.all());
      o.guard?.dispose();
      await removeRunDir(info.runDir);
    },
  };
}

/** The processes of a running cluster, as recorded (and updated on restarts) in its run directory. */
export function readProcesses(runDir: string): ProcessRecord[] {
  return JSON.parse(readFileSync(processesFile(runDir), 'utf8')) as ProcessRecord[];
}

/** The state to write for another process: {@link ClusterInfo} plus the PIDs to stop. */
export function clusterState(cluster: ClusterInfo): ClusterState {
  const { kubeconfig, server, caFile, adminToken, binDir, runDir } = cluster;
  return { kubeconfig, server, caFile, adminToken, binDir, runDir, processes: readProcesses(runDir) };
}

/**
 * Connects to the cluster described by the state file named in `DUO_E2E_STATE` (set by `npm run test:e2e`),
 * falling back to the state of `npm run cluster:up`.
 */
export function connectCluster(): ClusterInfo & { kubectl: Cluster['kubectl'] } {
  const file = process.env[STATE_ENV] ?? (existsSync(cliStateFile()) ? cliStateFile() : undefined);
  if (!file) {
    throw new Error(`${STATE_ENV} is not set: run e2e tests with "npm run test:e2e" (or start "npm run cluster:up")`);
  }
  const state = JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  const info: ClusterInfo = {
    kubeconfig: state.kubeconfig,
    server: state.server,
    caFile: state.caFile,
    adminToken: state.adminToken,
    binDir: state.binDir,
    runDir: state.runDir,
  };
  return {
    ...info,
    kubectl: (args, opts) => runKubectl({ kubeconfig: opts?.kubeconfig ?? info.kubeconfig, args, input: opts?.input }),
  };
}

/** An admin REST client for a cluster (close it when done). */
export function adminRestClient(info: ClusterInfo): RestClient {
  return new RestClient({ server: info.server, caFile: info.caFile, token: info.adminToken });
}

/**
 * Creates a namespace with a unique name `<prefix>-<random>` and the given labels, and waits until its
 * `default` ServiceAccount exists (the ServiceAccount admission plugin rejects pods until then).
 */
export async function createTestNamespace(
  info: ClusterInfo,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const base =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 50) || 'e2e';
  const name = `${base}-${randomBytes(3).toString('hex')}`;
  const client = adminRestClient(info);
  try {
    await client.call({
      method: 'POST',
      path: '/api/v1/namespaces',
      body: {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name, labels: { 'e2e.dataupload.io/test': 'true', ...labels } },
      },
    });
    await waitFor(
      async () => (await client.send({ path: `/api/v1/namespaces/${name}/serviceaccounts/default` })).status === 200,
      { description: `serviceaccount ${name}/default`, timeoutMs: 60_000, intervalMs: 100 },
    );
    return name;
  } finally {
    client.close();
  }
}

/** What a kubectl run needs. */
interface KubectlRun {
  readonly kubeconfig: string;
  readonly args: readonly string[];
  readonly input?: string | undefined;
  readonly timeoutMs?: number;
}

/** Runs kubectl with `KUBECONFIG` set; never throws for a non-zero exit. */
export function runKubectl(run: KubectlRun): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', [...run.args], {
      env: { ...process.env, KUBECONFIG: run.kubeconfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), run.timeoutMs ?? 120_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr: signal ? `${stderr}\nkubectl killed by ${signal}` : stderr, code: code ?? 1 });
    });
    child.stdin.end(run.input ?? '');
  });
}
