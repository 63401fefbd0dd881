/**
 * Support for the interop tests (velero-interop.test.ts), where Velero's node-agent and our operator work on the
 * same control plane: our operator's RBAC in a namespace of its own, source volumes (optionally pinned to a node by
 * the PV's node affinity), DataUploads as Velero's server writes them in any namespace, a list+watch recorder of
 * every DataUpload change, Velero's data mover played by the test, and a leftover check per namespace.
 */
import { Informer, type CachedObject } from '../../cluster/informer.js';
import type { RestClient } from '../../cluster/rest.js';
import { waitFor } from '../../cluster/wait.js';
import { leftovers as burstLeftovers } from './burst.js';
import { OPERATOR_SA, VELERO_NS } from './operator.js';

const SNAPSHOT_API = '/apis/snapshot.storage.k8s.io/v1';
const DU_API = '/apis/velero.io/v2alpha1';
const RBAC_API = '/apis/rbac.authorization.k8s.io/v1';
const FAKE_CSI_DRIVER = 'fake.csi.local';

/** The NODE_NAME `OperatorProcess` gives our operator (its `status.acceptedByNode`). */
export const OPERATOR_NODE_NAME = 'e2e-node';
/** Our acceptance mark on a DataUpload. */
export const ACCEPTED_BY_ANNOTATION = 'dataupload-operator.velero.io/accepted-by';

/** The Roles `config/default` installs in `velero`, which our operator needs in any namespace it serves. */
const OPERATOR_ROLES = ['dataupload-operator', 'dataupload-operator-leader-election'];

/**
 * Lets our operator's ServiceAccount (in `velero`) serve `namespace`: copies of the Roles `config/default` binds in
 * `velero` (so the permissions are exactly the shipped ones), bound to that ServiceAccount. The cluster-wide part
 * (ClusterRole) already covers every namespace.
 */
export async function grantOperatorNamespace(client: RestClient, namespace: string): Promise<void> {
  for (const name of OPERATOR_ROLES) {
    const role = await client.call<{ metadata: { labels?: Record<string, string> }; rules: unknown[] }>({
      path: `${RBAC_API}/namespaces/${VELERO_NS}/roles/${name}`,
    });
    await client.call({
      method: 'POST',
      path: `${RBAC_API}/namespaces/${namespace}/roles`,
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name, namespace, labels: role.metadata.labels ?? {} },
        rules: role.rules,
      },
    });
    await client.call({
      method: 'POST',
      path: `${RBAC_API}/namespaces/${namespace}/rolebindings`,
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name: OPERATOR_SA, namespace: VELERO_NS }],
      },
    });
  }
}

/** A source volume and its ready snapshot. */
export interface Source {
  readonly namespace: string;
  readonly pvc: string;
  readonly snapshot: string;
  readonly storageClass: string;
  readonly pvcUid: string;
  readonly snapshotUid: string;
  /** The pre-provisioned PV of a pinned source. */
  readonly pv?: string;
  /** The node the PV's node affinity requires, for a pinned source. */
  readonly node?: string;
}

/**
 * Creates a PVC `name` of `storageClass` in `namespace` and a VolumeSnapshot `<name>-snap` of it. With `node`, the
 * PVC is bound to a pre-provisioned PV of the fake CSI driver whose node affinity requires that node (the topology a
 * zonal or local volume has), so a WaitForFirstConsumer class makes the backupPod follow it. Does not wait for the
 * snapshot; see {@link waitSnapshotsReady}.
 */
export async function createSource(
  client: RestClient,
  input: { namespace: string; name: string; storageClass: string; snapshotClass?: string; node?: string },
): Promise<Source> {
  const { namespace, name, storageClass, node } = input;
  const pv = node === undefined ? undefined : `${namespace}-${name}`;
  if (pv !== undefined && node !== undefined) {
    await client.call({
      method: 'POST',
      path: '/api/v1/persistentvolumes',
      body: {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: pv, annotations: { 'pv.kubernetes.io/provisioned-by': FAKE_CSI_DRIVER } },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          volumeMode: 'Filesystem',
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: storageClass,
          claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name },
          csi: { driver: FAKE_CSI_DRIVER, volumeHandle: `static-${pv}` },
          nodeAffinity: {
            required: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] },
              ],
            },
          },
        },
      },
    });
  }
  const pvc = await client.call<{ metadata: { uid: string } }>({
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/persistentvolumeclaims`,
    body: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name },
      spec: {
        storageClassName: storageClass,
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        ...(pv !== undefined && { volumeName: pv }),
      },
    },
  });
  const snapshot = `${name}-snap`;
  const vs = await client.call<{ metadata: { uid: string } }>({
    method: 'POST',
    path: `${SNAPSHOT_API}/namespaces/${namespace}/volumesnapshots`,
    body: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: { name: snapshot },
      spec: {
        volumeSnapshotClassName: input.snapshotClass ?? 'e2e-vsc',
        source: { persistentVolumeClaimName: name },
      },
    },
  });
  return {
    namespace,
    pvc: name,
    snapshot,
    storageClass,
    pvcUid: pvc.metadata.uid,
    snapshotUid: vs.metadata.uid,
    ...(pv !== undefined && { pv }),
    ...(node !== undefined && { node }),
  };
}

/** Waits until every source's snapshot is ready to use. */
export async function waitSnapshotsReady(client: RestClient, sources: readonly Source[]): Promise<void> {
  const namespaces = [...new Set(sources.map((s) => s.namespace))];
  await waitFor(
    async () => {
      const ready = new Set<string>();
      for (const ns of namespaces) {
        const list = await client.call<{ items: { metadata: { name: string }; status?: { readyToUse?: boolean } }[] }>({
          path: `${SNAPSHOT_API}/namespaces/${ns}/volumesnapshots`,
        });
        for (const vs of list.items) if (vs.status?.readyToUse === true) ready.add(`${ns}/${vs.metadata.name}`);
      }
      return sources.every((s) => ready.has(`${s.namespace}/${s.snapshot}`));
    },
    { description: `${sources.length} snapshots ready`, timeoutMs: 60_000, intervalMs: 200 },
  );
}

/** A DataUpload as Velero's server creates it (`operationTimeout` as Go prints a Duration), in `namespace`. */
export function dataUploadBody(namespace: string, name: string, s: Source): object {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: { name, namespace, labels: { 'velero.io/backup-name': 'interop' } },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: { volumeSnapshot: s.snapshot, storageClass: s.storageClass, snapshotClass: 'e2e-vsc' },
      sourcePVC: s.pvc,
      sourceNamespace: s.namespace,
      backupStorageLocation: 'default',
      operationTimeout: '10m0s',
    },
  };
}

/** Creates a DataUpload (see {@link dataUploadBody}). */
export async function createDataUpload(client: RestClient, namespace: string, name: string, s: Source): Promise<void> {
  await client.call({
    method: 'POST',
    path: `${DU_API}/namespaces/${namespace}/datauploads`,
    body: dataUploadBody(namespace, name, s),
  });
}

/** Sets spec.cancel as the Velero server does: a merge patch without a resourceVersion. */
export async function cancelDataUpload(client: RestClient, namespace: string, name: string): Promise<void> {
  const res = await client.send({
    method: 'PATCH',
    path: `${DU_API}/namespaces/${namespace}/datauploads/${name}`,
    body: { spec: { cancel: true } },
  });
  if (res.status !== 200 && res.status !== 404) throw new Error(`cancel ${namespace}/${name}: ${res.status}`);
}

/** A DataUpload as the API returns it (the fields the tests read). */
export interface DataUploadObject extends CachedObject {
  metadata: CachedObject['metadata'] & {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
  };
  spec: { cancel?: boolean; [field: string]: unknown };
  status?: { phase?: string; node?: string; acceptedByNode?: string; [field: string]: unknown };
}

/** Who accepted a DataUpload, as one observation: the node written, and whether our annotation is there. */
function acceptorOf(du: DataUploadObject): string | undefined {
  const node = du.status?.acceptedByNode;
  if (!node) return undefined;
  return `${node}${du.metadata.annotations?.[ACCEPTED_BY_ANNOTATION] ? ' (annotated by us)' : ''}`;
}

/**
 * Every change of the DataUploads of one namespace, from a list+watch started before they are created: the phases
 * each went through, every acceptor it was seen with, and the object as it was when first seen Prepared (Velero's
 * node-agent may move it to InProgress a moment later).
 */
export class DataUploadWatch {
  private readonly informer: Informer<DataUploadObject>;
  private readonly phaseLog = new Map<string, string[]>();
  private readonly acceptorLog = new Map<string, Set<string>>();
  private readonly preparedObjects = new Map<string, DataUploadObject>();

  constructor(client: RestClient, namespace: string) {
    this.informer = new Informer<DataUploadObject>({
      client,
      path: `${DU_API}/namespaces/${namespace}/datauploads`,
      onChange: (change) => {
        const objects = change ? [change.object] : this.informer.list();
        if (change?.type !== 'DELETED') for (const du of objects) this.record(du);
      },
      log: (message) => console.log(`# DataUpload watch: ${message}`),
    });
    this.informer.start();
  }

  /** Resolves once the first list is done: every later change is seen. */
  async synced(): Promise<void> {
    await waitFor(() => Promise.resolve(this.informer.hasSynced), { description: 'the DataUpload watch' });
  }

  get(name: string): DataUploadObject | undefined {
    return this.informer.list().find((du) => du.metadata.name === name);
  }

  /** The phases seen, in order, without repeats. */
  phases(name: string): string[] {
    return this.phaseLog.get(name) ?? [];
  }

  /** Every acceptor seen (node, and whether we annotated it); one entry for a DataUpload accepted exactly once. */
  acceptors(name: string): string[] {
    return [...(this.acceptorLog.get(name) ?? [])];
  }

  /** The object when it was first seen Prepared. */
  prepared(name: string): DataUploadObject | undefined {
    return this.preparedObjects.get(name);
  }

  /** Waits until every name was seen in one of `phases` (now or before, with `ever`). */
  async waitForPhases(
    names: readonly string[],
    phases: readonly string[],
    opts: { timeoutMs?: number; ever?: boolean } = {},
  ): Promise<void> {
    const reached = (name: string) =>
      opts.ever
        ? this.phases(name).some((p) => phases.includes(p))
        : phases.includes(this.get(name)?.status?.phase ?? '');
    await waitFor(() => Promise.resolve(names.every(reached)), {
      description: `${names.length} DataUploads in ${phases.join('|')} (not yet: ${names
        .filter((n) => !reached(n))
        .slice(0, 5)
        .map((n) => `${n} ${this.get(n)?.status?.phase ?? 'New'}`)
        .join(', ')})`,
      timeoutMs: opts.timeoutMs ?? 60_000,
      intervalMs: 100,
    });
  }

  stop(): void {
    this.informer.stop();
  }

  private record(du: DataUploadObject): void {
    const name = du.metadata.name;
    const phase = du.status?.phase ?? 'New';
    const log = this.phaseLog.get(name) ?? [];
    if (log.at(-1) !== phase) log.push(phase);
    this.phaseLog.set(name, log);
    const acceptor = acceptorOf(du);
    if (acceptor !== undefined) {
      const seen = this.acceptorLog.get(name) ?? new Set<string>();
      seen.add(acceptor);
      this.acceptorLog.set(name, seen);
    }
    if (phase === 'Prepared' && !this.preparedObjects.has(name)) this.preparedObjects.set(name, structuredClone(du));
  }
}

/**
 * What Velero's `data-mover backup` does inside the backupPod once its DataUpload is canceled: `Data-Path-Started`,
 * `Data-Path-Canceled` and `Data-Path-Stopped` Events on the DataUpload, then it exits with a termination message
 * ending in "data path is canceled". kwok runs no container, so the test writes the Events and the pod's final
 * status itself. `component` is the Events' source.
 */
export async function playDataMoverCanceled(
  client: RestClient,
  namespace: string,
  name: string,
  component = 'velero-interop-data-mover',
): Promise<void> {
  for (const [reason, message] of [
    ['Data-Path-Started', `Data path for ${name} started`],
    ['Data-Path-Canceled', `Data path for data upload ${name} canceled`],
    ['Data-Path-Stopped', `Data path for ${name} stopped`],
  ] as const) {
    await client.call({
      method: 'POST',
      path: `/api/v1/namespaces/${namespace}/events`,
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', namespace, name },
        reason,
        message,
        type: 'Normal',
        source: { component },
      },
    });
  }
  const pod = await client.call<{ spec: { containers: { name: string; image: string }[] } }>({
    path: `/api/v1/namespaces/${namespace}/pods/${name}`,
  });
  const container = pod.spec.containers[0]!;
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await client.call({
    method: 'PATCH',
    path: `/api/v1/namespaces/${namespace}/pods/${name}/status`,
    body: {
      status: {
        phase: 'Failed',
        containerStatuses: [
          {
            name: container.name,
            image: container.image,
            imageID: '',
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode: 1,
                reason: 'Error',
                message: `Failed to run data path service for DataUpload ${name}: data path is canceled`,
                startedAt: now,
                finishedAt: now,
              },
            },
          },
        ],
      },
    },
  });
}

/**
 * Takes DataUploads and what they exposed away without any controller: removes the finalizers, deletes the
 * DataUploads, their backupPods, backupPVCs and backup VolumeSnapshots (the backup contents and volumes follow
 * their Delete policies). For the Velero-alone side of the differential, whose node-agents are stopped by then.
 */
export async function forceRemove(client: RestClient, namespace: string, names: readonly string[]): Promise<void> {
  const del = async (path: string) => {
    const res = await client.send({ method: 'DELETE', path });
    if (res.status >= 300 && res.status !== 404) throw new Error(`DELETE ${path}: ${res.status}`);
  };
  for (const name of names) {
    const du = `${DU_API}/namespaces/${namespace}/datauploads/${name}`;
    const res = await client.send({ method: 'PATCH', path: du, body: { metadata: { finalizers: null } } });
    if (res.status !== 200 && res.status !== 404) throw new Error(`PATCH ${du}: ${res.status}`);
    await del(du);
    await del(`/api/v1/namespaces/${namespace}/pods/${name}`);
    await del(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${name}`);
    await del(`${SNAPSHOT_API}/namespaces/${namespace}/volumesnapshots/${name}`);
  }
}

/** {@link burstLeftovers} for DataUploads of `namespace` and their sources, finalizers included. */
export async function leftovers(
  client: RestClient,
  namespace: string,
  uploads: readonly { name: string; source: Source }[],
): Promise<string[]> {
  const sources = uploads.map((u) => ({ name: u.name, namespace: u.source.namespace, snapshot: u.source.snapshot }));
  return burstLeftovers(client, sources, { namespace, finalizers: true });
}
