/**
 * The operator as a local child process of the demo, with the ServiceAccount token from config/default's RBAC:
 * its command line (pure), a kubeconfig for that token, and start / readiness / stop by PID.
 */
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { isRunning, processError, spawnLogged, stopProcess, type ProcessRecord } from '../test/cluster/processes.js';
import { waitFor } from '../test/cluster/wait.js';
import { BACKUP_POD_SERVICE_ACCOUNT, NODE_AGENT_CONFIGMAP, VELERO_NAMESPACE } from './manifests.js';

/** The Velero image the backupPods would run (kwok never pulls it). */
export const BACKUP_POD_IMAGE = 'velero/velero:v1.18.0';

/** What the operator's command line depends on. */
export interface OperatorLaunch {
  /** The repository root; the operator runs from `bin/dataupload-operator.js` there. */
  readonly repoRoot: string;
  /** Kubeconfig holding the operator ServiceAccount's token. */
  readonly kubeconfig: string;
  readonly metricsPort: number;
  readonly healthPort: number;
  /** Go duration, short so the broken DataUpload fails within the demo. */
  readonly prepareTimeout: string;
  /** Where its JSON logs go. */
  readonly logFile: string;
  /** The value of NODE_NAME (the "node" this process pretends to run on). */
  readonly nodeName: string;
}

/** The name the demo's operator process is recorded under. */
export const OPERATOR_PROCESS_NAME = 'dataupload-operator';

/** The operator's argv and environment, as the Deployment would run it but on loopback and without election. */
export function operatorCommand(launch: OperatorLaunch): {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
} {
  const args = [
    join(launch.repoRoot, 'bin', 'dataupload-operator.js'),
    'run',
    `--kubeconfig=${launch.kubeconfig}`,
    `--namespace=${VELERO_NAMESPACE}`,
    `--node-agent-configmap=${NODE_AGENT_CONFIGMAP}`,
    `--prepare-timeout=${launch.prepareTimeout}`,
    '--leader-elect=false',
    `--metrics-bind-address=127.0.0.1:${launch.metricsPort}`,
    `--health-probe-bind-address=127.0.0.1:${launch.healthPort}`,
    `--backup-pod-image=${BACKUP_POD_IMAGE}`,
    `--backup-pod-service-account=${BACKUP_POD_SERVICE_ACCOUNT}`,
    '--log-level=info',
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NAME: launch.nodeName, POD_NAME: 'dataupload-operator-demo' };
  // The flags say everything; a KUBECONFIG or namespace from the user's shell must not leak in.
  delete env.KUBECONFIG;
  delete env.VELERO_NAMESPACE;
  return { command: process.execPath, args, env };
}

/** Starts the operator detached, logging to its log file, and returns its record (stop it by that PID). */
export function startOperator(launch: OperatorLaunch): ProcessRecord {
  const { command, args, env } = operatorCommand(launch);
  return spawnLogged({
    name: OPERATOR_PROCESS_NAME,
    command,
    args,
    logFile: launch.logFile,
    cwd: launch.repoRoot,
    env,
  });
}

/** Resolves once `/readyz` answers 200; fails early, quoting its log, if the process exits. */
export async function waitForOperatorReady(rec: ProcessRecord, healthPort: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await httpStatus(`http://127.0.0.1:${healthPort}/readyz`)) === 200, {
    description: 'the operator to report ready on /readyz',
    timeoutMs,
    intervalMs: 250,
    precondition: () => {
      if (!isRunning(rec)) throw processError(rec, 'exited before it was ready');
    },
  });
}

/** Stops the operator: SIGTERM, time to drain and release, then SIGKILL. */
export function stopOperator(rec: ProcessRecord): Promise<void> {
  return stopProcess(rec, 35_000);
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
