/**
 * `tsx test/cluster/cli.ts up|down`: a control plane that outlives the command, for the demo and for running
 * single e2e files by hand. `up` writes `${TMPDIR:-/tmp}/dataupload-operator-cluster/state.json`; `down` stops
 * exactly the PIDs recorded for that cluster.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { removeRunDir, stopInOrder } from './control-plane.js';
import { cliStateFile, clusterState, readProcesses, startCluster, type ClusterState } from './index.js';
import { isRunning } from './processes.js';

async function up(): Promise<void> {
  const file = cliStateFile();
  const existing = readState(file);
  if (existing && liveProcesses(existing).length > 0) {
    console.log(`# a cluster is already running (state: ${file})`);
    console.log(`export KUBECONFIG=${existing.kubeconfig}`);
    return;
  }
  const started = Date.now();
  const release = lockStateFile(file);
  try {
    const cluster = await startCluster({ persistent: true });
    writeFileSync(file, JSON.stringify(clusterState(cluster), null, 2), { mode: 0o600 });
    console.error(`cluster started in ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${cluster.runDir}`);
    console.log(`export KUBECONFIG=${cluster.kubeconfig}`);
  } finally {
    release();
  }
}

/**
 * Two concurrent `up`s would both start a cluster and the second state file would orphan the first cluster, so
 * `up` holds an exclusive lock file (holding its PID) while it starts one. A lock left by a dead process is taken.
 */
function lockStateFile(file: string): () => void {
  const lock = `${file}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch {
    const holder = Number(readFileSync(lock, 'utf8'));
    if (Number.isInteger(holder) && existsSync(`/proc/${holder}`)) {
      throw new Error(`another "cluster:up" (pid ${holder}) is starting a cluster; try again when it is done`);
    }
    writeFileSync(lock, String(process.pid));
  }
  return () => rmSync(lock, { force: true });
}

async function down(): Promise<void> {
  const file = cliStateFile();
  const state = readState(file);
  if (!state) {
    console.error(`no cluster state at ${file}`);
    return;
  }
  const processes = liveProcesses(state);
  await stopInOrder(processes);
  await removeRunDir(state.runDir);
  rmSync(file, { force: true });
  console.error(`stopped ${processes.length} processes (${processes.map((p) => `${p.name}:${p.pid}`).join(' ')})`);
}

function readState(file: string): ClusterState | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterState) : undefined;
}

/** The recorded processes still running; the run directory's list is current after API server restarts. */
function liveProcesses(state: ClusterState): ClusterState['processes'] {
  const recorded = existsSync(state.runDir) ? readProcesses(state.runDir) : state.processes;
  return recorded.filter(isRunning);
}

const commands: Record<string, () => Promise<void>> = { up, down };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error('usage: tsx test/cluster/cli.ts up|down');
  process.exit(2);
}
command().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
