/**
 * End-to-end support for the DataUpload controller: install the manifests, run the operator as a child process
 * with its own ServiceAccount's token (so RBAC is tested for real), build source volumes and snapshots on the fake
 * CSI driver, and check that nothing was left behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from '../../cluster/index.js';
import { applyManifest, kubectlOk } from '../../cluster/testing.js';
import type { KubectlRunner } from '../../cluster/testing.js';

export const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const VELERO_NS = 'velero';
export const OPERATOR_SA = 'dataupload-operator';

type Kube = KubectlRunner & Pick<ClusterInfo, 'server' | 'caFile'>;

/** `kubectl apply -k config/default` and wait until the CRD serves. */
export async function installOperatorManifests(k: Kube): Promise<void> {
  await kubectlOk(k, ['apply', '--server-side', '--force-conflicts', '-k', join(REPO, 'config/default')]);
  await kubectlOk(k, ['wait', '--for=condition=Established', 'crd/datauploads.velero.io', '--timeout=60s']);
  // kwok "runs" the Deployment's pods without running any code; scale it down so nothing looks like a leader.
  await kubectlOk(k, ['-n', VELERO_NS, 'scale', 'deployment/dataupload-operator', '--replicas=0']);
}

/** A kubeconfig that authenticates as the operator's ServiceAccount (token from the TokenRequest API). */
export async function operatorKubeconfig(k: Kube, dir: string): Promise<string> {
  const token = (await kubectlOk(k, ['-n', VELERO_NS, 'create', 'token', OPERATOR_SA, '--duration=2h'])).trim();
  const path = join(dir, 'operator.kubeconfig');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: k.server, 'certificate-authority': k.caFile } }],
      users: [{ name: OPERATOR_SA, user: { token } }],
      contexts: [{ name: 'operator', context: { cluster: 'e2e', user: OPERATOR_SA } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  return path;
}

/** The operator, running as `node bin/dataupload-operator.js run ...`. */
export class OperatorProcess {
  readonly exited: Promise<number | null>;
  private constructor(
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolvePromise) => child.once('exit', (code) => resolvePromise(code)));
  }

  /** Starts the operator; `args` come after the defaults and may override them. */
  static start(options: { kubeconfig: string; args?: string[]; logDir?: string; name?: string }): OperatorProcess {
    const dir = options.logDir ?? mkdtempSync(join(tmpdir(), 'duo-op-'));
    const logFile = join(dir, `${options.name ?? 'operator'}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(
      process.execPath,
      [
        join(REPO, 'bin/dataupload-operator.js'),
        'run',
        '--kubeconfig',
        options.kubeconfig,
        '--namespace',
        VELERO_NS,
        '--backup-pod-image',
        'velero/velero:v1.18.0',
        '--metrics-bind-address',
        '127.0.0.1:0',
        '--health-probe-bind-address',
        '127.0.0.1:0',
        '--log-level',
        'debug',
        ...(options.args ?? []),
      ],
      {
        env: { ...process.env, NODE_NAME: 'e2e-node', POD_NAME: options.name ?? 'e2e-operator' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    return new OperatorProcess(child, logFile);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The operator's JSON log lines so far. */
  logLines(): Record<string, unknown>[] {
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Waits until the operator logged a line with this `msg` (e.g. `caches synced`); rejects if it exits first. */
  async waitForLog(msg: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const logged = (): boolean => existsSync(this.logFile) && this.logLines().some((line) => line.msg === msg);
    while (!logged()) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the operator exited before logging "${msg}" (log: ${this.logFile})`);
      }
      if (Date.now() > deadline) throw new Error(`the operator did not log "${msg}" in time (log: ${this.logFile})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends a signal and waits for the exit code (SIGKILL simulates a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Storage classes of the fake CSI driver used by the controller tests; cluster-scoped, created once. */
export async function ensureStorageClasses(k: KubectlRunner): Promise<void> {
  const sc = (name: string, parameters: Record<string, string> = {}) => ({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name },
    provisioner: 'fake.csi.local',
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    parameters,
  });
  const vsc = (name: string, parameters: Record<string, string> = {}) => ({
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotClass',
    metadata: { name },
    driver: 'fake.csi.local',
    deletionPolicy: 'Delete',
    parameters,
  });
  await applyManifest(
    k,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        sc('e2e-src'),
        sc('e2e-rox'),
        sc('e2e-src-missing'),
        sc('e2e-src-refuse', { 'fake.csi.local/refuse-access-modes': 'ReadOnlyMany' }),
        vsc('e2e-vsc'),
        vsc('e2e-vsc-never', { 'fake.csi.local/snapshot-never-ready': 'true' }),
      ],
    }),
  );
}

/** The node-agent config of the controller tests, keyed by the source storage classes above. */
export const E2E_NODE_AGENT_CONFIG = {
  backupPVC: {
    'e2e-src': { storageClass: 'e2e-rox', readOnly: true },
    'e2e-src-missing': { storageClass: 'e2e-does-not-exist' },
    'e2e-src-refuse': { readOnly: true },
  },
  loadConcurrency: { prepareQueueLength: 10 },
};

/** Creates the node-agent ConfigMap the operator reads at boot. */
export async function createNodeAgentConfigMap(k: KubectlRunner, name: string, config: object): Promise<void> {
  await applyManifest(
    k,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: VELERO_NS },
      data: { 'node-agent-config.json': JSON.stringify(config) },
    }),
  );
}

/** A source PVC of `storageClass` and a VolumeSnapshot of it, as Velero's CSI plugin leaves them. */
export async function createSource(
  k: KubectlRunner,
  input: { namespace: string; storageClass: string; snapshotClass?: string; snapshot: string; waitReady?: boolean },
): Promise<void> {
  await applyManifest(
    k,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name: 'data', namespace: input.namespace },
          spec: {
            storageClassName: input.storageClass,
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: '1Gi' } },
          },
        },
        {
          apiVersion: 'snapshot.storage.k8s.io/v1',
          kind: 'VolumeSnapshot',
          metadata: { name: input.snapshot, namespace: input.namespace },
          spec: {
            volumeSnapshotClassName: input.snapshotClass ?? 'e2e-vsc',
            source: { persistentVolumeClaimName: 'data' },
          },
        },
      ],
    }),
  );
  if (input.waitReady !== false) {
    await kubectlOk(k, [
      '-n',
      input.namespace,
      'wait',
      `volumesnapshot/${input.snapshot}`,
      '--for=jsonpath={.status.readyToUse}=true',
      '--timeout=60s',
    ]);
  }
}

/** A DataUpload as the Velero server creates it. */
export function dataUploadManifest(input: {
  name: string;
  sourceNamespace: string;
  snapshot: string;
  storageClass: string;
  cancel?: boolean;
  spec?: Record<string, unknown>;
}): string {
  return JSON.stringify({
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: { name: input.name, namespace: VELERO_NS, labels: { 'velero.io/backup-name': 'e2e' } },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: { volumeSnapshot: input.snapshot, storageClass: input.storageClass, snapshotClass: 'e2e-vsc' },
      sourcePVC: 'data',
      sourceNamespace: input.sourceNamespace,
      backupStorageLocation: 'default',
      operationTimeout: '10m',
      ...(input.cancel ? { cancel: true } : {}),
      ...input.spec,
    },
  });
}

/** Sets spec.cancel the way the Velero server does: a merge patch without resourceVersion. */
export async function cancelDataUpload(k: KubectlRunner, name: string): Promise<void> {
  await kubectlOk(k, ['-n', VELERO_NS, 'patch', 'dataupload', name, '--type=merge', '-p', '{"spec":{"cancel":true}}']);
}

/** Reads a JSON object with kubectl; undefined when it does not exist. */
export async function getJson<T = Record<string, any>>(k: KubectlRunner, args: string[]): Promise<T | undefined> {
  const res = await k.kubectl(['get', ...args, '-o', 'json']);
  if (res.code !== 0) {
    if (/NotFound|not found/.test(res.stderr)) return undefined;
    throw new Error(`kubectl get ${args.join(' ')}: ${res.stderr}`);
  }
  return JSON.parse(res.stdout) as T;
}

/** Polls until `check` returns a value (not undefined/false), or fails with the last observation. */
export async function eventually<T>(
  description: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out waiting for ${description}${why}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until the DataUpload reaches one of `phases`; returns it. */
export function waitForPhase(
  k: KubectlRunner,
  name: string,
  phases: string[],
  timeoutMs = 60_000,
): Promise<Record<string, any>> {
  return eventually(
    `DataUpload ${name} in ${phases.join('|')}`,
    async () => {
      const du = await getJson(k, ['-n', VELERO_NS, 'dataupload', name]);
      return du && phases.includes(du.status?.phase) ? du : undefined;
    },
    timeoutMs,
  );
}

/**
 * Waits until nothing exposing created for `duName` is left: no backup pod, PVC, PV, VolumeSnapshot or
 * VolumeSnapshotContent, and no source snapshot or content either (Velero's cleanup deletes those too).
 */
export async function assertNothingLeft(
  k: KubectlRunner,
  input: { duName: string; sourceNamespace: string; snapshot: string },
): Promise<void> {
  await eventually(
    `no objects left for DataUpload ${input.duName}`,
    async () => {
      const leftovers: string[] = [];
      for (const [kind, ns, name] of [
        ['pod', VELERO_NS, input.duName],
        ['persistentvolumeclaim', VELERO_NS, input.duName],
        ['volumesnapshot', VELERO_NS, input.duName],
        ['volumesnapshot', input.sourceNamespace, input.snapshot],
      ] as const) {
        if (await getJson(k, ['-n', ns, kind, name])) leftovers.push(`${kind} ${ns}/${name}`);
      }
      const contents = (await getJson<{ items: any[] }>(k, ['volumesnapshotcontents']))?.items ?? [];
      for (const vsc of contents) {
        const ref = vsc.spec?.volumeSnapshotRef ?? {};
        const ours =
          (ref.namespace === VELERO_NS && ref.name === input.duName) ||
          (ref.namespace === input.sourceNamespace && ref.name === input.snapshot);
        if (ours) leftovers.push(`volumesnapshotcontent ${vsc.metadata.name}`);
      }
      const volumes = (await getJson<{ items: any[] }>(k, ['persistentvolumes']))?.items ?? [];
      for (const pv of volumes) {
        const claim = pv.spec?.claimRef ?? {};
        if (claim.namespace === VELERO_NS && claim.name === input.duName)
          leftovers.push(`persistentvolume ${pv.metadata.name}`);
      }
      if (leftovers.length > 0) throw new Error(`left behind: ${leftovers.join(', ')}`);
      return true;
    },
    60_000,
  );
}

/** The Events of a DataUpload as `kubectl describe` prints them. */
export async function describeEvents(k: KubectlRunner, name: string): Promise<string> {
  const out = await kubectlOk(k, ['-n', VELERO_NS, 'describe', 'dataupload', name]);
  return out.slice(out.indexOf('Events:'));
}
