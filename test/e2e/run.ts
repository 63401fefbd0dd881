/**
 * `npm run test:e2e`: builds (or finds) the control-plane binaries, starts one cluster with the fake CSI layer,
 * runs every `test/e2e/**\/*.test.ts` against it with `DUO_E2E_STATE` pointing at its state file, then runs the
 * controller file again on the image's Node 24 against the same cluster (the operator it spawns runs on
 * `process.execPath`, so on Node 24 too), and always stops the cluster afterwards. Exits with the first failing
 * pass's exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../cluster/paths.js';
import { buildBinaries, buildVelero } from '../cluster/control-plane.js';
import { clusterState, startCluster, STATE_ENV, type Cluster } from '../cluster/index.js';
import { ensureNode24, NODE24_VERSION } from '../node24/node24.js';

/** The files that run a second time on the Node of the image. */
const NODE24_E2E_FILES = ['test/e2e/controller.test.ts'];

/** Every e2e test file, as repo-relative paths in a stable order. */
function findTestFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTestFiles(path));
    else if (entry.name.endsWith('.test.ts')) found.push(relative(REPO_ROOT, path));
  }
  return found.sort();
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

function runTests(
  files: string[],
  stateFile: string,
  node = process.execPath,
): { child: ChildProcess; done: Promise<number> } {
  const child = spawn(node, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
    env: { ...process.env, [STATE_ENV]: stateFile },
  });
  const done = new Promise<number>((resolve) => {
    child.on('error', () => resolve(1));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  return { child, done };
}

async function main(): Promise<number> {
  const files = findTestFiles(join(REPO_ROOT, 'test/e2e'));
  if (files.length === 0) {
    console.error('e2e: no test files found');
    return 1;
  }
  const binDir = await buildBinaries();
  await buildVelero(); // Velero's node-agent for test/e2e/velero-smoke.test.ts; cached like the binaries above
  const node24 = ensureNode24();
  const started = Date.now();
  let cluster: Cluster | undefined;
  let tests: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;
  const stopCluster = (): Promise<void> => (stopping ??= cluster?.stop() ?? Promise.resolve());
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`e2e: ${signal}, stopping the cluster`);
    tests?.kill(signal);
    void stopCluster().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    // audit: the bench smoke test counts API writes per ServiceAccount from the audit log.
    cluster = await startCluster({ fakeCsi: true, binDir, audit: true });
    console.error(`e2e: cluster started in ${seconds(started)} (${cluster.server}, logs in ${cluster.runDir})`);
    const stateFile = join(cluster.runDir, 'state.json');
    writeFileSync(stateFile, JSON.stringify(clusterState(cluster), null, 2), { mode: 0o600 });
    const testsStarted = Date.now();
    const run = runTests(files, stateFile);
    tests = run.child;
    const code = await run.done;
    console.error(`e2e: ${files.length} test files finished in ${seconds(testsStarted)} with exit code ${code}`);
    if (node24 === undefined) return code;
    const node24Started = Date.now();
    const second = runTests(NODE24_E2E_FILES, stateFile, node24);
    tests = second.child;
    const node24Code = await second.done;
    console.error(
      `e2e: ${NODE24_E2E_FILES.join(', ')} on Node ${NODE24_VERSION} finished in ${seconds(node24Started)} with exit code ${node24Code}`,
    );
    return code !== 0 ? code : node24Code;
  } finally {
    const stopStarted = Date.now();
    await stopCluster();
    console.error(`e2e: cluster stopped in ${seconds(stopStarted)}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`e2e: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
