/**
 * The benchmark's floor: a bare client that issues, for every DataUpload at once, the same API writes as the
 * operator's plan in the same order, and nothing else. It is the lower bound of what any expose controller can do
 * on this cluster: no caches, no work queue, no plan, no Events, no waits beyond what the writes require.
 *
 * Per DataUpload (all DataUploads concurrently, unbounded):
 *   1. patch the finalizer in; 2. accept (phase Accepted, the expose-on-going label, the accepted-by annotation,
 *   acceptedByNode/acceptedTimestamp; resourceVersion-guarded like every DataUpload patch of ours);
 *   3. create the backup VolumeSnapshot; 4. create the backup VolumeSnapshotContent; 5. patch the source content to
 *   deletionPolicy Retain; 6. delete the source VolumeSnapshot; 7. delete the source content; 8. create the backup
 *   PVC; 9. create the backup Pod; 10. once one shared pod watch shows that pod Running, patch Prepared.
 *
 * The objects come from the operator's own pure builders (src/exposer), so what the fake CSI driver, the scheduler
 * and kwok do downstream is identical; the HTTP client is the operator's own (one keep-alive agent, no limit on
 * sockets), without `@kubernetes/client-node` (see clientFromKubeconfig). The source PVCs, snapshots and contents
 * are read once before the burst, which is not timed; the backup PVC's size comes from the source snapshot read
 * then (the operator, level-triggered, reads it from the backup snapshot once the fake CSI driver has sized it).
 *
 * Run by the benchmark as its own process (compiled with the operator, see systems.ts), so its CPU and memory are
 * measured like the operator's: `node floor.js --kubeconfig=<file> --namespace=velero --source-namespace=<ns>
 * --label-selector=<sel> --backup-pod-image=<image> [--backup-pod-service-account=<sa>] [--node-name=<name>]
 * [--config=<node-agent JSON file>]`. It prints JSON lines: `{"msg":"ready"}` once it watches, one line per
 * failed write, and `{"msg":"summary",...}` on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { DataUpload } from '../../src/api/dataupload.js';
import type {
  DaemonSet,
  KubeObject,
  PersistentVolumeClaim,
  Pod,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../src/api/kube.js';
import {
  ACCEPTOR_NAME,
  ANNOTATION_ACCEPTED_BY,
  DATAUPLOAD_FINALIZER,
  EXPOSER_POD_GROUP_SNAPSHOT,
  LABEL_EXPOSE_ON_GOING,
  LABEL_EXPOSER_POD_GROUP,
} from '../../src/api/names.js';
import { parseNodeAgentConfigJson } from '../../src/config/node-agent-config.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import { rfc3339 } from '../../src/controller/plan.js';
import {
  backupPodTemplateFromDaemonSet,
  backupPodTemplateFromOptions,
  backupPvcSize,
  buildBackupPod,
  buildBackupPvc,
  buildBackupVolumeSnapshot,
  buildBackupVolumeSnapshotContent,
  mergeBackupPodTemplate,
  resolveBackupPvcConfig,
  volumeModeOf,
  type BackupPodTemplate,
} from '../../src/exposer/index.js';
import { HttpKubeClient } from '../../src/runtime/kube-client.js';
import { isAlreadyExists, isNotFound, isTransient, Resources } from '../../src/runtime/kube-api.js';
import type { KubeApi, ResourceRef, WatchEvent } from '../../src/runtime/kube-api.js';

interface FloorOptions {
  namespace: string;
  sourceNamespace: string;
  labelSelector: string;
  nodeName: string;
  config: NodeAgentConfig;
  template: BackupPodTemplate;
}

/** The source objects of one DataUpload, read before the burst. */
interface Source {
  pvc: PersistentVolumeClaim;
  vs: VolumeSnapshot;
  vsc: VolumeSnapshotContent;
}

function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: Date.now(), ...fields })}\n`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Retries a write on transient errors (no answer, 429, 5xx) with a short exponential backoff. */
async function retrying<T>(what: string, write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!isTransient(err) || attempt >= 8) throw err;
      log({ msg: 'retrying', what, attempt, err: errorText(err) });
      await sleep(50 * 2 ** attempt);
    }
  }
}

/** Pods seen Running by the shared watch, and the DataUploads waiting for theirs. */
class RunningPods {
  private readonly nodes = new Map<string, string>();
  private readonly waiters = new Map<string, (node: string) => void>();

  observe(pod: Pod): void {
    const name = pod.metadata.name ?? '';
    if (pod.status?.phase !== 'Running' || this.nodes.has(name)) return;
    const node = pod.spec?.nodeName ?? '';
    this.nodes.set(name, node);
    this.waiters.get(name)?.(node);
    this.waiters.delete(name);
  }

  /** Resolves with the pod's node once it is (or was already seen) Running. */
  running(name: string): Promise<string> {
    const node = this.nodes.get(name);
    if (node !== undefined) return Promise.resolve(node);
    return new Promise((resolve) => this.waiters.set(name, resolve));
  }
}

class Floor {
  private readonly started = new Set<string>();
  private readonly pods = new RunningPods();
  private prepared = 0;
  private failed = 0;
  private readonly stop = new AbortController();

  constructor(
    private readonly api: KubeApi,
    private readonly o: FloorOptions,
    private readonly sources: ReadonlyMap<string, Source>,
  ) {}

  /** Lists, then watches DataUploads and backup pods from the listed versions, so no event is missed. */
  async start(): Promise<void> {
    const { namespace, labelSelector } = this.o;
    const podSelector = `${LABEL_EXPOSER_POD_GROUP}=${EXPOSER_POD_GROUP_SNAPSHOT}`;
    const [dus, pods] = await Promise.all([
      this.api.list<DataUpload>(Resources.dataUploads, { namespace, labelSelector }),
      this.api.list<Pod>(Resources.pods, { namespace, labelSelector: podSelector }),
    ]);
    for (const pod of pods.items) this.pods.observe(pod);
    for (const du of dus.items) this.onDataUpload(du);
    this.follow<Pod>(Resources.pods, podSelector, pods.metadata?.resourceVersion, (pod) => this.pods.observe(pod));
    this.follow<DataUpload>(Resources.dataUploads, labelSelector, dus.metadata?.resourceVersion, (du) =>
      this.onDataUpload(du),
    );
  }

  shutdown(): void {
    this.stop.abort();
    log({ msg: 'summary', started: this.started.size, prepared: this.prepared, failed: this.failed });
  }

  /** One watch, resumed from the last version it saw (or re-listed after a 410). */
  private follow<T extends KubeObject>(
    r: ResourceRef,
    labelSelector: string,
    fromVersion: string | undefined,
    onObject: (obj: T) => void,
  ): void {
    let resourceVersion = fromVersion;
    const onEvent = (event: WatchEvent<T>): void => {
      if (event.type === 'ERROR') throw new Error(`watch ${r.resource}: ${JSON.stringify(event.object)}`);
      resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
      if (event.type === 'ADDED' || event.type === 'MODIFIED') onObject(event.object);
    };
    void (async () => {
      while (!this.stop.signal.aborted) {
        try {
          await this.api.watch<T>(
            r,
            {
              namespace: this.o.namespace,
              labelSelector,
              resourceVersion,
              allowWatchBookmarks: true,
              timeoutSeconds: 3600,
            },
            onEvent,
            this.stop.signal,
          );
        } catch (err) {
          if (this.stop.signal.aborted) return;
          log({ msg: 'watch failed; re-listing', resource: r.resource, err: errorText(err) });
          const list = await this.api.list<T>(r, { namespace: this.o.namespace, labelSelector }).catch(() => undefined);
          for (const obj of list?.items ?? []) onObject(obj);
          resourceVersion = list?.metadata?.resourceVersion;
          await sleep(100);
        }
      }
    })();
  }

  private onDataUpload(du: DataUpload): void {
    const name = du.metadata.name ?? '';
    const phase = du.status?.phase ?? '';
    if (this.started.has(name) || (phase !== '' && phase !== 'New') || du.metadata.deletionTimestamp) return;
    this.started.add(name);
    this.expose(du).then(
      () => this.prepared++,
      (err: unknown) => {
        this.failed++;
        log({ msg: 'expose failed', name, err: errorText(err) });
      },
    );
  }

  /** The ten writes, in the operator's order. */
  private async expose(initial: DataUpload): Promise<void> {
    const { api, o } = this;
    const name = initial.metadata.name!;
    const namespace = initial.metadata.namespace!;
    const csi = initial.spec.csiSnapshot!;
    const source = this.sources.get(csi.volumeSnapshot);
    if (!source) throw new Error(`no source snapshot ${initial.spec.sourceNamespace}/${csi.volumeSnapshot}`);
    const patchDu = (patch: object, resourceVersion: string | undefined) =>
      retrying(`patch DataUpload ${name}`, () =>
        api.patch<DataUpload>(Resources.dataUploads, name, withVersion(patch, resourceVersion), 'merge', { namespace }),
      );

    let du = await patchDu(
      { metadata: { finalizers: [...(initial.metadata.finalizers ?? []), DATAUPLOAD_FINALIZER] } },
      initial.metadata.resourceVersion,
    );
    du = await patchDu(
      {
        metadata: {
          labels: { [LABEL_EXPOSE_ON_GOING]: 'true' },
          annotations: { [ANNOTATION_ACCEPTED_BY]: ACCEPTOR_NAME },
        },
        status: { phase: 'Accepted', acceptedByNode: o.nodeName, acceptedTimestamp: rfc3339(Date.now()) },
      },
      du.metadata.resourceVersion,
    );
    const backupVs = await this.create(
      Resources.volumeSnapshots,
      buildBackupVolumeSnapshot({ du, sourceVs: source.vs }),
    );
    await this.create(
      Resources.volumeSnapshotContents,
      buildBackupVolumeSnapshotContent({ du, backupVs, sourceVsc: source.vsc }),
    );
    const vscName = source.vsc.metadata.name!;
    await retrying(`retain ${vscName}`, () =>
      api.patch(Resources.volumeSnapshotContents, vscName, { spec: { deletionPolicy: 'Retain' } }, 'merge'),
    );
    await this.delete(Resources.volumeSnapshots, source.vs);
    await this.delete(Resources.volumeSnapshotContents, source.vsc);
    const resolved = resolveBackupPvcConfig(csi.storageClass, o.config.backupPVC);
    const volumeMode = volumeModeOf(source.pvc);
    const { size } = backupPvcSize(source.vs, source.pvc);
    await this.create(Resources.persistentVolumeClaims, buildBackupPvc({ du, resolved, volumeMode, size }));
    await this.create(
      Resources.pods,
      buildBackupPod({ du, template: o.template, resolved, volumeMode, nodeOS: 'linux', config: o.config }),
    );
    const node = await this.pods.running(name);
    await patchDu({ status: { phase: 'Prepared', node } }, du.metadata.resourceVersion);
  }

  /** A create; one that finds its object (an earlier attempt landed) reads it instead, as the executor does. */
  private async create<T extends KubeObject>(r: ResourceRef, obj: T): Promise<T> {
    const namespace = obj.metadata.namespace;
    try {
      return await retrying(`create ${r.kind} ${obj.metadata.name}`, () => this.api.create<T>(r, obj, { namespace }));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return this.api.get<T>(r, obj.metadata.name!, namespace);
    }
  }

  private async delete(r: ResourceRef, obj: KubeObject): Promise<void> {
    const { name, namespace, uid } = obj.metadata;
    try {
      await retrying(`delete ${r.kind} ${name}`, () =>
        this.api.delete(r, name!, { namespace, propagationPolicy: 'Background', preconditions: { uid } }),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function withVersion(patch: object, resourceVersion: string | undefined): object {
  const p = patch as { metadata?: object };
  return { ...p, metadata: { ...(p.metadata ?? {}), resourceVersion } };
}

/** The source PVC, snapshot and content of every snapshot in the source namespace, by snapshot name. */
async function readSources(api: KubeApi, namespace: string): Promise<Map<string, Source>> {
  const [pvcs, snapshots, contents] = await Promise.all([
    api.list<PersistentVolumeClaim>(Resources.persistentVolumeClaims, { namespace }),
    api.list<VolumeSnapshot>(Resources.volumeSnapshots, { namespace }),
    api.list<VolumeSnapshotContent>(Resources.volumeSnapshotContents),
  ]);
  const pvcByName = new Map(pvcs.items.map((p) => [p.metadata.name!, p]));
  const vscByName = new Map(contents.items.map((c) => [c.metadata.name!, c]));
  const sources = new Map<string, Source>();
  for (const vs of snapshots.items) {
    const pvc = pvcByName.get(vs.spec.source?.persistentVolumeClaimName ?? '');
    const vsc = vscByName.get(vs.status?.boundVolumeSnapshotContentName ?? '');
    if (pvc && vsc && vs.status?.readyToUse) sources.set(vs.metadata.name!, { pvc, vs, vsc });
  }
  return sources;
}

/** The backupPod template the operator would use: the node-agent DaemonSet's when there is one, else the flags. */
async function podTemplate(api: KubeApi, namespace: string, image: string, sa: string | undefined) {
  const overrides = { image, ...(sa ? { serviceAccountName: sa } : {}) };
  try {
    const ds = await api.get<DaemonSet>(Resources.daemonSets, 'node-agent', namespace);
    const inherited = backupPodTemplateFromDaemonSet(ds);
    if (!inherited.ok) throw new Error(inherited.message);
    return mergeBackupPodTemplate(inherited.template, overrides);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return backupPodTemplateFromOptions({ image, serviceAccountName: sa });
  }
}

/**
 * The operator's own HTTP client, on the token kubeconfig the benchmark writes (server, CA file, bearer token),
 * with the agent options of `agentFromKubeConfig`. Read by hand: loading `@kubernetes/client-node` for its
 * KubeConfig costs some 80 MB of RSS, which the floor, the least a client needs, does not spend.
 */
function clientFromKubeconfig(path: string): HttpKubeClient {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority': string } }[];
    users: { user: { token: string } }[];
  };
  const cluster = doc.clusters[0]!.cluster;
  const token = doc.users[0]!.user.token;
  return new HttpKubeClient({
    server: cluster.server,
    agent: new https.Agent({
      keepAlive: true,
      keepAliveMsecs: 30_000,
      scheduling: 'lifo',
      ca: readFileSync(cluster['certificate-authority']),
    }),
    auth: () => Promise.resolve({ Authorization: `Bearer ${token}` }),
    options: { userAgent: 'dataupload-bench-floor' },
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', default: 'velero' },
      'source-namespace': { type: 'string' },
      'label-selector': { type: 'string', default: '' },
      'backup-pod-image': { type: 'string' },
      'backup-pod-service-account': { type: 'string' },
      'node-name': { type: 'string', default: 'bench-floor' },
      config: { type: 'string' },
    },
  });
  if (!values.kubeconfig || !values['source-namespace'] || !values['backup-pod-image']) {
    throw new Error('--kubeconfig, --source-namespace and --backup-pod-image are required');
  }
  const parsed = values.config
    ? parseNodeAgentConfigJson(readFileSync(values.config, 'utf8'), values.config)
    : parseNodeAgentConfigJson('{}', 'default');
  if (!parsed.ok) throw new Error(`node-agent config: ${JSON.stringify(parsed)}`);
  const api = clientFromKubeconfig(values.kubeconfig);
  const namespace = values.namespace;
  const [sources, template] = await Promise.all([
    readSources(api, values['source-namespace']),
    podTemplate(api, namespace, values['backup-pod-image'], values['backup-pod-service-account']),
  ]);
  const floor = new Floor(
    api,
    {
      namespace,
      sourceNamespace: values['source-namespace'],
      labelSelector: values['label-selector'],
      nodeName: values['node-name'],
      config: parsed.config,
      template,
    },
    sources,
  );
  const shutdown = (): void => {
    floor.shutdown();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  await floor.start();
  log({ msg: 'ready', sources: sources.size });
}

main().catch((err: unknown) => {
  log({ msg: 'fatal', err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
