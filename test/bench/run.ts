/**
 * `npm run bench [-- --count N] [--systems ours,floor,velero] [--nodes K] [--big] [--json file] [--operator-arg F]`:
 * the expose benchmark of issue 12 on a fresh control plane of its own (see bench.ts for what is measured and how).
 *
 * - `--count` DataUploads per system (default 100; the issue's sizes are 100, 300 and 1,000).
 * - `--systems` any of ours, floor, velero (default all three); they always run in that order.
 * - `--nodes` kwok nodes (default `max(3, ceil(N / 90))`: 110 pods fit on a node, and Velero runs one node-agent
 *   per node).
 * - `--big` first fills 20 other namespaces with 500 PVCs and 500 VolumeSnapshots each (10,000 of each, plus
 *   their PVs and contents) that no DataUpload refers to, and reports how long that took.
 * - `--json` also writes the results there.
 * - `--operator-arg` (repeatable) adds a flag to our operator's command line, e.g.
 *   `--operator-arg=--max-concurrent-exposes=64`, to compare a setting against the floor in one run.
 *
 * With `DUO_APISERVER_PROFILING=1` in the environment the API server runs with `--profiling`, so a CPU profile of it
 * can be taken during a burst: `kubectl --kubeconfig <run dir>/kubeconfig get --raw
 * '/debug/pprof/profile?seconds=30' > apiserver.pprof`, then `go tool pprof -top apiserver.pprof`.
 *
 * Start it under `flock /tmp/duo-controlplane.lock` on a shared machine: one control plane at a time.
 * Not part of `npm test`; test/e2e/bench-smoke.test.ts runs a tiny one (ours and floor, N = 20) there.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBinaries, buildVelero } from '../cluster/control-plane.js';
import { startCluster, type Cluster } from '../cluster/index.js';
import { REPO_ROOT } from '../cluster/paths.js';
import { ensureNode24 } from '../node24/node24.js';
import { runBenchmark, SYSTEMS, type SystemName } from './bench.js';
import { fillCluster, type FillResult } from './fill.js';
import { formatReport, loadAverage } from './measure.js';
import { buildOperatorAndFloor } from './systems.js';

function log(line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

function parseSystems(text: string): SystemName[] {
  const names = text.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(SYSTEMS as readonly string[]).includes(name)) throw new Error(`--systems: unknown system "${name}"`);
  }
  return names as SystemName[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '100' },
      systems: { type: 'string', default: SYSTEMS.join(',') },
      nodes: { type: 'string' },
      big: { type: 'boolean', default: false },
      json: { type: 'string' },
      'operator-arg': { type: 'string', multiple: true, default: [] },
    },
  });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a positive integer, got ${values.count}`);
  const nodes = values.nodes === undefined ? Math.max(3, Math.ceil(count / 90)) : Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`--nodes must be a positive integer, got ${values.nodes}`);
  const systems = parseSystems(values.systems);

  const binDir = await buildBinaries();
  if (systems.includes('velero')) await buildVelero();
  const node = ensureNode24(log) ?? process.execPath;
  log(`compiling the operator and the floor`);
  const source = sourceRevision();
  const build = await buildOperatorAndFloor();
  if (build.diagnostics) log(`WARNING: tsc reported errors (the build was emitted anyway):\n${build.diagnostics}`);
  const workDir = mkdtempSync(join(tmpdir(), 'duo-bench-'));
  const loadStart = loadAverage();
  let cluster: Cluster | undefined;
  try {
    const started = Date.now();
    cluster = await startCluster({ binDir, nodes, audit: true });
    log(
      `control plane with ${nodes} kwok nodes started in ${((Date.now() - started) / 1000).toFixed(1)} s (${cluster.runDir})`,
    );
    let fill: FillResult | undefined;
    if (values.big) {
      log('filling 20 namespaces with 500 PVCs and 500 snapshots each');
      fill = await fillCluster(cluster, { namespaces: 20, perNamespace: 500, log });
      log(`fill done in ${fill.seconds.toFixed(0)} s`);
    }
    const operatorArgs = values['operator-arg'];
    const results = await runBenchmark(cluster, { count, systems, workDir, build, node, log, operatorArgs });
    const loadEnd = loadAverage();
    console.log(
      `\nexpose benchmark: N=${count}, ${nodes} kwok nodes${fill ? `, big (${fill.namespaces * fill.perNamespace} unrelated PVCs and snapshots, filled in ${fill.seconds.toFixed(0)} s)` : ''}, ` +
        `Node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()} for ours and the floor`,
    );
    console.log(`operator compiled from ${source}${operatorArgs.length ? `, with ${operatorArgs.join(' ')}` : ''}`);
    console.log(`load average at start ${loadStart.join(' ')}, at end ${loadEnd.join(' ')}\n`);
    console.log(formatReport(results));
    if (values.json) {
      writeFileSync(
        values.json,
        JSON.stringify({ count, nodes, source, big: fill ?? null, loadStart, loadEnd, results }, null, 2),
      );
      log(`results written to ${values.json}`);
    }
  } finally {
    if (cluster) keepClusterLogs(cluster.runDir, join(workDir, 'cluster'));
    log(`logs in ${workDir}`);
    await cluster?.stop();
    build.remove();
  }
}

/** The commit the operator was compiled from, and whether src/ had uncommitted changes then. */
function sourceRevision(): string {
  const git = (args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  try {
    const changed = git(['status', '--porcelain', '--', 'src'])
      .split('\n')
      .filter((l) => l !== '').length;
    return `${git(['rev-parse', '--short', 'HEAD'])}${changed ? ` + ${changed} uncommitted file(s) in src/` : ''}`;
  } catch {
    return 'unknown (no git)';
  }
}

/** The control plane's logs (and the audit log) outlive its run directory, for a look at where time went. */
function keepClusterLogs(runDir: string, into: string): void {
  mkdirSync(into, { recursive: true });
  for (const file of readdirSync(runDir).filter((f) => f.endsWith('.log'))) {
    copyFileSync(join(runDir, file), join(into, file));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
