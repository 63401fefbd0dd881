/**
 * `npm run demo [-- --keep]`: the operator end to end on the bundled control plane, as a user would meet it.
 *
 * 1. Starts the control plane (building it from Go modules on the first run) with its fake CSI driver.
 * 2. Installs with `kubectl apply -k config/default` (RBAC and PodSecurity enforced).
 * 3. Creates a workload with two PVCs, snapshots them, and writes a node-agent config where one storage class is
 *    right and the other maps its backupPVC to a storage class that does not exist.
 * 4. Runs the operator as a local process with the ServiceAccount token that config/default's RBAC grants (no
 *    container image can run on kwok's fake nodes), and a 20 s prepare timeout.
 * 5. Creates one DataUpload per snapshot: one reaches Prepared, the other fails with diagnostics as Events.
 * 6. Prints `kubectl get datauploads` and the Events of the failed one, then stops everything by PID, or with
 *    `--keep` leaves it running and prints how to reach and stop it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processesFile } from '../test/cluster/control-plane.js';
import {
  cliStateFile,
  clusterState,
  readProcesses,
  startCluster,
  type Cluster,
  type ClusterState,
} from '../test/cluster/index.js';
import { kubeconfigYaml } from '../test/cluster/pki.js';
import { freeLoopbackPorts } from '../test/cluster/ports.js';
import { isRunning, signalIfRunning, tailLog, type ProcessRecord } from '../test/cluster/processes.js';
import { errorMessage, waitFor } from '../test/cluster/wait.js';
import {
  BROKEN_VOLUME,
  DEMO_VOLUMES,
  GOOD_VOLUME,
  MISSING_STORAGE_CLASS,
  VELERO_NAMESPACE,
  WORKLOAD_NAMESPACE,
  dataUpload,
  list,
  nodeAgentConfig,
  nodeAgentConfigMap,
  volumeSnapshot,
  workloadManifests,
  type DemoVolume,
} from './manifests.js';
import { startOperator, stopOperator, waitForOperatorReady } from './operator.js';
import { describeSummary, parseDemoArgs, unexpectedOutcomes, type DemoArgs } from './report.js';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const PREPARE_TIMEOUT = '20s';
const PREPARE_TIMEOUT_MS = 20_000;
const OPERATOR_SERVICE_ACCOUNT = 'dataupload-operator';

/** What the demo has running, for cleanup from signal handlers and at the end. */
interface Running {
  cluster?: Cluster;
  operator?: ProcessRecord;
}

function step(text: string): void {
  console.log(`\n==> ${text}`);
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

async function kubectlOk(cluster: Cluster, args: string[], input?: string): Promise<string> {
  const res = await cluster.kubectl(args, input === undefined ? undefined : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${res.stderr.trim()}`);
  return res.stdout;
}

/** `--keep` writes the CLI's state file; refuse to overwrite one whose cluster still runs. */
function refuseIfCliClusterRuns(): void {
  const file = cliStateFile();
  if (!existsSync(file)) return;
  const state = JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  const recorded = existsSync(state.runDir) ? readProcesses(state.runDir) : state.processes;
  if (recorded.some(isRunning)) {
    throw new Error(
      `a cluster from "npm run cluster:up" (or an earlier "npm run demo -- --keep") is running (${file}); ` +
        'stop it with "npm run cluster:down" first',
    );
  }
}

/**
 * Ctrl-C and crashes must not leave processes behind. Without --keep, startCluster's own guard stops the control
 * plane; this one adds the operator (and, with --keep, the control plane, which then has no guard of its own).
 */
function installGuard(running: Running, keep: boolean): () => void {
  const killAll = (): void => {
    if (running.operator) signalIfRunning(running.operator, 'SIGKILL');
    if (keep && running.cluster) {
      for (const rec of readProcesses(running.cluster.runDir)) signalIfRunning(rec, 'SIGKILL');
      rmSync(running.cluster.runDir, { recursive: true, force: true });
    }
  };
  const onSignal = (): void => {
    killAll();
    process.exit(130);
  };
  process.on('exit', killAll);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function install(cluster: Cluster): Promise<void> {
  step('kubectl apply -k config/default');
  console.log(indent(await kubectlOk(cluster, ['apply', '-k', join(REPO_ROOT, 'config/default')])));
  await kubectlOk(cluster, ['wait', '--for=condition=Established', 'crd/datauploads.velero.io', '--timeout=60s']);
  step('Scaling the in-cluster Deployment to 0: kwok nodes run no containers, so the operator runs locally');
  await kubectlOk(cluster, ['scale', 'deployment/dataupload-operator', '-n', VELERO_NAMESPACE, '--replicas=0']);
}

async function createWorkload(cluster: Cluster): Promise<void> {
  step(`A workload in ${WORKLOAD_NAMESPACE}: two PVCs on storage classes of the fake CSI driver, one snapshot each`);
  const apply = (objects: Record<string, unknown>[]): Promise<string> =>
    kubectlOk(cluster, ['apply', '-f', '-'], JSON.stringify(list(objects)));
  console.log(indent(await apply(workloadManifests())));
  await kubectlOk(cluster, waitArgs('pvc', '{.status.phase}=Bound'));
  console.log(indent(await apply(DEMO_VOLUMES.map(volumeSnapshot))));
  await kubectlOk(cluster, waitArgs('volumesnapshot', '{.status.readyToUse}=true'));
  console.log(indent(await kubectlOk(cluster, ['get', 'pvc,volumesnapshot', '-n', WORKLOAD_NAMESPACE])));
}

function waitArgs(resource: string, condition: string): string[] {
  return ['wait', `--for=jsonpath=${condition}`, resource, '--all', '-n', WORKLOAD_NAMESPACE, '--timeout=90s'];
}

async function configureNodeAgent(cluster: Cluster): Promise<void> {
  step(`node-agent config (ConfigMap ${VELERO_NAMESPACE}/node-agent-config), keyed by the source storage class`);
  console.log(indent(JSON.stringify(nodeAgentConfig(), null, 2)));
  console.log(
    indent(
      `${GOOD_VOLUME.storageClass}: read-only backupPVC of the same class (fine)\n` +
        `${BROKEN_VOLUME.storageClass}: backupPVC from class "${MISSING_STORAGE_CLASS}", which does not exist (the mistake)`,
    ),
  );
  await kubectlOk(cluster, ['apply', '-f', '-'], JSON.stringify(nodeAgentConfigMap()));
}

/** A kubeconfig holding a fresh token of the operator's ServiceAccount: the RBAC of config/default, nothing more. */
async function operatorKubeconfig(cluster: Cluster, keep: boolean): Promise<string> {
  const duration = keep ? '24h' : '1h';
  const args = ['create', 'token', OPERATOR_SERVICE_ACCOUNT, '-n', VELERO_NAMESPACE, `--duration=${duration}`];
  const token = (await kubectlOk(cluster, args)).trim();
  const path = join(cluster.runDir, 'dataupload-operator.kubeconfig');
  const user = `system:serviceaccount:${VELERO_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT}`;
  writeFileSync(path, kubeconfigYaml({ server: cluster.server, caFile: cluster.caFile, user, token }), {
    mode: 0o600,
  });
  return path;
}

async function runOperator(cluster: Cluster, running: Running, keep: boolean): Promise<number> {
  step(`Starting the operator locally as ServiceAccount ${VELERO_NAMESPACE}/${OPERATOR_SERVICE_ACCOUNT}`);
  const kubeconfig = await operatorKubeconfig(cluster, keep);
  const [metricsPort, healthPort] = (await freeLoopbackPorts(2)) as [number, number];
  const logFile = join(cluster.runDir, 'dataupload-operator.log');
  const launch = {
    repoRoot: REPO_ROOT,
    kubeconfig,
    metricsPort,
    healthPort,
    prepareTimeout: PREPARE_TIMEOUT,
    logFile,
    nodeName: hostname(),
  };
  running.operator = startOperator(launch);
  await waitForOperatorReady(running.operator, healthPort);
  console.log(indent(`pid ${running.operator.pid}, ready; prepare timeout ${PREPARE_TIMEOUT}; logs: ${logFile}`));
  return metricsPort;
}

/** Polls the DataUploads, printing each phase change, until both reached the phase they end in. */
async function watchDataUploads(cluster: Cluster, started: number): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const settled = (v: DemoVolume, phase: string | undefined): boolean =>
    phase === v.expectedPhase || phase === 'Failed' || phase === 'Canceled';
  await waitFor(
    async () => {
      const out = await kubectlOk(cluster, ['get', 'datauploads', '-n', VELERO_NAMESPACE, '-o', 'json']);
      const items = (JSON.parse(out) as { items: { metadata: { name: string }; status?: { phase?: string } }[] }).items;
      for (const du of items) {
        const phase = du.status?.phase || 'New';
        if (seen.get(du.metadata.name) !== phase) {
          seen.set(du.metadata.name, phase);
          const at = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
          console.log(`    ${at} s  ${du.metadata.name.padEnd(28)} ${phase}`);
        }
      }
      return DEMO_VOLUMES.every((v) => settled(v, seen.get(v.dataUpload)));
    },
    { description: 'both DataUploads to settle', timeoutMs: PREPARE_TIMEOUT_MS + 90_000, intervalMs: 250 },
  );
  return seen;
}

async function createDataUploads(cluster: Cluster): Promise<Map<string, string>> {
  step('Creating two DataUploads, as the Velero server would for a backup of both PVCs');
  console.log(
    indent(await kubectlOk(cluster, ['create', '-f', '-'], JSON.stringify(list(DEMO_VOLUMES.map(dataUpload))))),
  );
  step(`Watching them (the broken one fails after the ${PREPARE_TIMEOUT} prepare timeout)`);
  return watchDataUploads(cluster, Date.now());
}

async function show(cluster: Cluster): Promise<void> {
  step(`kubectl get datauploads -n ${VELERO_NAMESPACE}`);
  console.log(indent(await kubectlOk(cluster, ['get', 'datauploads', '-n', VELERO_NAMESPACE])));
  step(`kubectl get pods,pvc -n ${VELERO_NAMESPACE}   (the backupPod and backupPVC of ${GOOD_VOLUME.dataUpload})`);
  console.log(indent(await kubectlOk(cluster, ['get', 'pods,pvc', '-n', VELERO_NAMESPACE, '-o', 'wide'])));
  step(`kubectl describe dataupload ${BROKEN_VOLUME.dataUpload} -n ${VELERO_NAMESPACE}   (status and Events)`);
  const describe = await kubectlOk(cluster, [
    'describe',
    'dataupload',
    BROKEN_VOLUME.dataUpload,
    '-n',
    VELERO_NAMESPACE,
  ]);
  console.log(indent(describeSummary(describe)));
}

async function showMetrics(metricsPort: number): Promise<void> {
  const text = await httpText(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => '');
  const lines = text.split('\n').filter((l) => /^controller_runtime_reconcile_total\b/.test(l));
  if (lines.length === 0) return;
  step(`curl -s http://127.0.0.1:${metricsPort}/metrics | grep controller_runtime_reconcile_total`);
  console.log(indent(lines.join('\n')));
}

function httpText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 3_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** With --keep: record the operator beside the control plane so `npm run cluster:down` stops both. */
function persist(cluster: Cluster, operator: ProcessRecord | undefined): void {
  const file = processesFile(cluster.runDir);
  const processes = [...readProcesses(cluster.runDir), ...(operator ? [operator] : [])];
  writeFileSync(file, JSON.stringify(processes, null, 2));
  const stateFile = cliStateFile();
  mkdirSync(dirname(stateFile), { recursive: true });
  writeFileSync(stateFile, JSON.stringify(clusterState(cluster), null, 2), { mode: 0o600 });
  step('Still running (--keep)');
  console.log(
    indent(
      [
        `export KUBECONFIG=${cluster.kubeconfig}`,
        `kubectl get datauploads -n ${VELERO_NAMESPACE}`,
        `kubectl describe dataupload ${BROKEN_VOLUME.dataUpload} -n ${VELERO_NAMESPACE}`,
        operator ? `operator: pid ${operator.pid}, logs in ${operator.logFile}` : 'operator: not running',
        `control plane: ${processes
          .filter((p) => p !== operator)
          .map((p) => `${p.name}:${p.pid}`)
          .join(' ')}`,
        'stop everything (operator first, by PID): npm run cluster:down',
      ].join('\n'),
    ),
  );
}

async function demo(args: DemoArgs, running: Running): Promise<string[]> {
  step('Starting the bundled control plane (the first run builds Kubernetes from Go modules, about 10 minutes)');
  const clusterStarted = Date.now();
  const cluster = await startCluster({ persistent: args.keep });
  running.cluster = cluster;
  console.log(indent(`up in ${((Date.now() - clusterStarted) / 1000).toFixed(1)} s at ${cluster.server}`));
  await install(cluster);
  await createWorkload(cluster);
  await configureNodeAgent(cluster);
  const metricsPort = await runOperator(cluster, running, args.keep);
  const phases = await createDataUploads(cluster);
  await show(cluster);
  await showMetrics(metricsPort);
  return unexpectedOutcomes(phases);
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseDemoArgs(argv);
  if (!parsed.ok) {
    (parsed.exitCode === 0 ? console.log : console.error)(parsed.text);
    return parsed.exitCode;
  }
  const { args } = parsed;
  if (args.keep) refuseIfCliClusterRuns();
  const started = Date.now();
  const running: Running = {};
  const disposeGuard = installGuard(running, args.keep);
  let problems: string[];
  try {
    problems = await demo(args, running);
  } catch (err) {
    problems = [errorMessage(err)];
  }
  if (problems.length > 0) {
    step('The demo did not go as planned');
    console.log(indent(problems.join('\n')));
    if (running.operator) console.log(indent(`last operator log lines:\n${tailLog(running.operator.logFile, 20)}`));
  }
  if (args.keep && running.cluster) {
    persist(running.cluster, running.operator && isRunning(running.operator) ? running.operator : undefined);
  } else {
    step('Stopping the operator and the control plane');
    if (running.operator) await stopOperator(running.operator);
    await running.cluster?.stop();
  }
  disposeGuard();
  console.log(`\n${problems.length === 0 ? 'Done' : 'Failed'} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  return problems.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(errorMessage(err));
    process.exit(1);
  },
);
