/**
 * The three systems the benchmark compares, each started as its own processes so their CPU and memory can be read
 * from `/proc`, each with its own ServiceAccount so the audit log tells their writes apart:
 *
 * - **ours**: the compiled operator as the image runs it (`node dist/main.js run ...` with the Deployment's flags,
 *   leader election on, the runtime stage's `NODE_ENV` and `NODE_OPTIONS` read from the Dockerfile), as ServiceAccount
 *   `velero/dataupload-operator` with the RBAC of `config/rbac`;
 * - **floor**: floor.ts, compiled with it, as ServiceAccount `velero/dataupload-bench-floor` bound to the same
 *   Role and ClusterRole;
 * - **velero**: Velero v1.18.3's `node-agent server`, one per kwok node, default config, as the `velero`
 *   ServiceAccount that `velero install` binds to cluster-admin (test/cluster/velero.ts).
 *
 * The operator and the floor are compiled by `tsc` into a fresh directory outside the repository (so neither
 * `bin/dataupload-operator.js`, which runs `dist/` when it exists, nor eslint ever sees the output), with a
 * `package.json` copy beside it (main.ts reads its version from there) and a `node_modules` link back to the
 * repository's. They run on the image's Node (24.22.3, test/node24) when it is available.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installExitGuard, ProcessSet, startWatchdog, stopInOrder, type ExitGuard } from '../cluster/control-plane.js';
import type { ClusterInfo } from '../cluster/index.js';
import { REPO_ROOT } from '../cluster/paths.js';
import { isRunning, processError, spawnLogged, stopProcess, type ProcessRecord } from '../cluster/processes.js';
import { kubectlOk, type KubectlRunner } from '../cluster/testing.js';
import { startNodeAgents, type NodeAgents } from '../cluster/velero.js';
import { waitFor } from '../cluster/wait.js';
import { envOf, parseStages } from '../install/dockerfile.js';

const execFileAsync = promisify(execFile);

export const VELERO_NS = 'velero';
export const OPERATOR_SA = 'dataupload-operator';
export const FLOOR_SA = 'dataupload-bench-floor';
export const VELERO_SA = 'velero';
/** The image flag of the e2e helper and the Deployment. */
export const BACKUP_POD_IMAGE = 'velero/velero:v1.18.0';

/** The audit `user.username` of a ServiceAccount. */
export function serviceAccountUser(name: string, namespace = VELERO_NS): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

type Kube = KubectlRunner & Pick<ClusterInfo, 'server' | 'caFile' | 'kubeconfig'>;

/** A kubeconfig that authenticates as a ServiceAccount of `velero` (a TokenRequest token, valid for 12 h). */
export async function serviceAccountKubeconfig(k: Kube, sa: string, dir: string): Promise<string> {
  const token = (await kubectlOk(k, ['-n', VELERO_NS, 'create', 'token', sa, '--duration=12h'])).trim();
  const path = join(dir, `${sa}.kubeconfig`);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'bench', cluster: { server: k.server, 'certificate-authority': k.caFile } }],
      users: [{ name: sa, user: { token } }],
      contexts: [{ name: sa, context: { cluster: 'bench', user: sa } }],
      'current-context': sa,
    }),
    { mode: 0o600 },
  );
  return path;
}

/** The compiled operator and floor. */
export interface Build {
  readonly dir: string;
  /** `<dir>/src/main.js` */
  readonly operatorMain: string;
  /** `<dir>/test/bench/floor.js` */
  readonly floorMain: string;
  /** Type errors tsc reported while still emitting (the src tree may be mid-edit); empty when clean. */
  readonly diagnostics: string;
  remove(): void;
}

/**
 * Compiles src/main.ts (the image's `dist/`, with the compiler options of tsconfig.build.json) and floor.ts with
 * `tsc` into a fresh directory. Rejects when tsc emitted nothing.
 */
export async function buildOperatorAndFloor(): Promise<Build> {
  const dir = mkdtempSync(join(tmpdir(), 'duo-bench-build-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const tsconfig = join(dir, 'tsconfig.json');
    writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: join(REPO_ROOT, 'tsconfig.json'),
        compilerOptions: {
          rootDir: REPO_ROOT,
          outDir: dir,
          noEmit: false,
          typeRoots: [join(REPO_ROOT, 'node_modules/@types')],
        },
        include: [],
        files: [join(REPO_ROOT, 'src/main.ts'), join(REPO_ROOT, 'test/bench/floor.ts')],
      }),
    );
    let diagnostics = '';
    try {
      await execFileAsync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', tsconfig], { maxBuffer: 16 << 20 });
    } catch (err) {
      diagnostics = String((err as { stdout?: string }).stdout ?? err);
    }
    const operatorMain = join(dir, 'src/main.js');
    const floorMain = join(dir, 'test/bench/floor.js');
    if (!existsSync(operatorMain) || !existsSync(floorMain)) throw new Error(`tsc emitted nothing:\n${diagnostics}`);
    copyFileSync(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    return { dir, operatorMain, floorMain, diagnostics, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** One process of a running system. */
export interface SystemProcess {
  readonly name: string;
  readonly pid: number;
}

/** A system under test, started and ready (caches synced, leading, watching). */
export interface RunningSystem {
  readonly name: string;
  /** Audit usernames whose writes are this system's. */
  readonly identities: readonly string[];
  readonly processes: readonly SystemProcess[];
  /** Log files, for the report and for failures. */
  readonly logs: readonly string[];
  /** Stops exactly its processes (SIGTERM, then SIGKILL) and waits until they are gone. */
  stop(): Promise<void>;
}

/** Child processes of this benchmark, killed by exit handlers and a watchdog if the benchmark dies. */
export class BenchProcesses {
  readonly procs: ProcessSet;
  private readonly guard: ExitGuard;

  constructor(readonly stateDir: string) {
    mkdirSync(stateDir, { recursive: true });
    this.procs = new ProcessSet(stateDir);
    this.guard = installExitGuard(this.procs);
    startWatchdog(this.procs);
  }

  start(spec: Parameters<typeof spawnLogged>[0]): ProcessRecord {
    const rec = spawnLogged({ ...spec, cwd: REPO_ROOT });
    this.procs.put(rec);
    return rec;
  }

  /** Stops everything still running (the watchdog too) and removes the state directory. */
  async close(): Promise<void> {
    await stopInOrder(this.procs.all());
    this.guard.dispose();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

function jsonLogLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

async function waitForLogMessages(rec: ProcessRecord, messages: string[], timeoutMs: number): Promise<void> {
  await waitFor(
    () => {
      const seen = new Set(jsonLogLines(rec.logFile).map((l) => l.msg));
      return Promise.resolve(messages.every((m) => seen.has(m)));
    },
    {
      description: `${rec.name} to log ${messages.map((m) => JSON.stringify(m)).join(' and ')}`,
      timeoutMs,
      intervalMs: 100,
      precondition: () => {
        if (!isRunning(rec)) throw processError(rec, 'exited');
      },
    },
  );
}

/**
 * `NODE_ENV` and `NODE_OPTIONS` of the image's runtime stage (the Dockerfile's last stage), so the operator (and the
 * floor, for a fair comparison) run with the image's V8 options.
 */
export function imageNodeEnv(): { NODE_ENV: string; NODE_OPTIONS: string } {
  const env = envOf(parseStages(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')).at(-1)!);
  return { NODE_ENV: env.NODE_ENV ?? 'production', NODE_OPTIONS: env.NODE_OPTIONS ?? '' };
}

/** What starting ours or the floor needs. */
export interface NodeSystemInput {
  readonly procs: BenchProcesses;
  readonly build: Build;
  /** The Node binary (the image's Node when available). */
  readonly node: string;
  readonly kubeconfig: string;
  readonly logDir: string;
}

/**
 * The operator with the Deployment's flags (metrics and probes on loopback, ephemeral ports), then `extraArgs`
 * (the benchmark's `--operator-arg`s; a later flag wins).
 */
export async function startOurs(
  input: NodeSystemInput & { configMap: string; extraArgs?: readonly string[] },
): Promise<RunningSystem> {
  const logFile = join(input.logDir, 'ours.log');
  const rec = input.procs.start({
    name: 'ours',
    command: input.node,
    args: [
      input.build.operatorMain,
      'run',
      `--kubeconfig=${input.kubeconfig}`,
      `--namespace=${VELERO_NS}`,
      `--node-agent-configmap=${input.configMap}`,
      '--prepare-timeout=30m',
      '--workers=4',
      '--leader-elect=true',
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      `--backup-pod-image=${BACKUP_POD_IMAGE}`,
      `--backup-pod-service-account=${VELERO_SA}`,
      '--backup-pod-security-context=root',
      '--log-level=info',
      ...(input.extraArgs ?? []),
    ],
    logFile,
    env: {
      ...process.env,
      ...imageNodeEnv(),
      NODE_NAME: 'bench-node',
      POD_NAME: 'bench-operator',
      VELERO_NAMESPACE: VELERO_NS,
    },
  });
  await waitForLogMessages(rec, ['caches synced', 'became leader: reconciling'], 120_000);
  return {
    name: 'ours',
    identities: [serviceAccountUser(OPERATOR_SA)],
    processes: [{ name: 'operator', pid: rec.pid }],
    logs: [logFile],
    stop: () => stopProcess(rec, 30_000),
  };
}

/** The floor, for the DataUploads matching `labelSelector` whose sources are in `sourceNamespace`. */
export async function startFloor(
  input: NodeSystemInput & { sourceNamespace: string; labelSelector: string; configFile: string },
): Promise<RunningSystem> {
  const logFile = join(input.logDir, 'floor.log');
  const rec = input.procs.start({
    name: 'floor',
    command: input.node,
    args: [
      input.build.floorMain,
      `--kubeconfig=${input.kubeconfig}`,
      `--namespace=${VELERO_NS}`,
      `--source-namespace=${input.sourceNamespace}`,
      `--label-selector=${input.labelSelector}`,
      `--backup-pod-image=${BACKUP_POD_IMAGE}`,
      `--backup-pod-service-account=${VELERO_SA}`,
      '--node-name=bench-node',
      `--config=${input.configFile}`,
    ],
    logFile,
    env: { ...process.env, ...imageNodeEnv() },
  });
  await waitForLogMessages(rec, ['ready'], 120_000);
  return {
    name: 'floor',
    identities: [serviceAccountUser(FLOOR_SA)],
    processes: [{ name: 'floor', pid: rec.pid }],
    logs: [logFile],
    stop: () => stopProcess(rec, 10_000),
  };
}

/** Velero's node-agent on every kwok node, default config (no ConfigMap), Velero's default log level. */
export async function startVelero(input: {
  cluster: Pick<ClusterInfo, 'kubeconfig'> & KubectlRunner;
  kubeconfig: string;
  logDir: string;
}): Promise<RunningSystem> {
  const agents: NodeAgents = await startNodeAgents(input.cluster, {
    logDir: join(input.logDir, 'velero'),
    logLevel: 'info',
    kubeconfig: input.kubeconfig,
    readyTimeoutMs: 300_000,
  });
  return {
    name: 'velero',
    identities: [serviceAccountUser(VELERO_SA)],
    processes: agents.agents.map((a) => ({ name: a.node, pid: a.pid })),
    logs: agents.agents.map((a) => a.logFile),
    stop: () => agents.stop(),
  };
}
