/**
 * A tiny model of the cluster around one DataUpload, for plan() tests: it builds a realistic Observed state and
 * applies an action's effect to it the way the API server would, so tests can drive a DataUpload through its
 * whole life one decision at a time.
 */
import type { DataUpload } from '../../src/api/index.js';
import type { KubeObject, Pod, VolumeSnapshot, VolumeSnapshotContent } from '../../src/api/index.js';
import { DATAUPLOAD_FINALIZER } from '../../src/api/index.js';
import { plan } from '../../src/controller/plan.js';
import type { Action, Decision, Observed, PlanContext } from '../../src/controller/types.js';
import { backupPodTemplateFromOptions } from '../../src/exposer/index.js';
import type { NodeAgentConfig } from '../../src/config/types.js';

export const NS = 'velero';
export const NAME = 'backup1-x7k2p';
export const UID = 'du-uid-1';
export const T0 = Date.parse('2026-11-23T10:00:00Z');

/** A New DataUpload as the Velero server creates it. */
export function newDataUpload(over: Partial<DataUpload['spec']> = {}): DataUpload {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: {
      name: NAME,
      namespace: NS,
      uid: UID,
      resourceVersion: '1',
      creationTimestamp: '2026-11-23T09:59:00Z',
      labels: { 'velero.io/backup-name': 'backup1' },
    },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: { volumeSnapshot: 'velero-data-abcde', storageClass: 'fast', snapshotClass: 'fake-vsc' },
      sourcePVC: 'data',
      sourceNamespace: 'app',
      backupStorageLocation: 'default',
      operationTimeout: '10m0s',
      ...over,
    },
  };
}

/** The world right after the Velero server created the DataUpload: source PVC, ready snapshot and content. */
export function freshWorld(du: DataUpload = newDataUpload()): Observed {
  const sourceVs: VolumeSnapshot = {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: {
      name: 'velero-data-abcde',
      namespace: 'app',
      uid: 'src-vs-uid',
      creationTimestamp: '2026-11-23T09:58:00Z',
    },
    spec: { source: { persistentVolumeClaimName: 'data' }, volumeSnapshotClassName: 'fake-vsc' },
    status: { readyToUse: true, boundVolumeSnapshotContentName: 'snapcontent-src', restoreSize: '2Gi' },
  };
  const sourceVsc: VolumeSnapshotContent = {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotContent',
    metadata: { name: 'snapcontent-src', uid: 'src-vsc-uid' },
    spec: {
      deletionPolicy: 'Delete',
      driver: 'fake.csi.local',
      source: { volumeHandle: 'vol-1' },
      volumeSnapshotRef: { name: 'velero-data-abcde', namespace: 'app', uid: 'src-vs-uid' },
      volumeSnapshotClassName: 'fake-vsc',
    },
    status: { readyToUse: true, snapshotHandle: 'snap-handle-1', restoreSize: 2 * 2 ** 30 },
  };
  return {
    du,
    sourcePvc: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: 'app', uid: 'src-pvc-uid' },
      spec: { storageClassName: 'fast', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      status: { phase: 'Bound' },
    },
    sourceVs,
    sourceVsc,
    nodesByOs: { linux: 3 },
    exposeOnGoing: 0,
  };
}

/** A plan context with the given node-agent config. */
export function context(config: NodeAgentConfig = {}, now = T0): PlanContext {
  return {
    now,
    nodeName: 'node-a',
    prepareTimeoutMs: 30 * 60_000,
    config,
    podTemplate: backupPodTemplateFromOptions({ image: 'velero/velero:v1.18.0', serviceAccountName: 'velero' }),
    securityContext: 'root',
  };
}

let counter = 0;

/** Applies an action's effect to the world, as the API server (and for deletions, the controllers) would. */
export function apply(world: Observed, action: Action, now = T0): Observed {
  const w: Observed = structuredClone(world);
  switch (action.type) {
    case 'patchDataUpload':
      w.du = mergePatch(w.du, { ...action.patch, metadata: { ...action.patch.metadata } }) as DataUpload;
      bump(w.du);
      return w;
    case 'finish': {
      const ts = new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
      w.du.status = {
        ...w.du.status,
        phase: action.phase,
        message: action.message || w.du.status?.message,
        completionTimestamp: ts,
        startTimestamp: w.du.status?.startTimestamp ?? ts,
      };
      if (w.du.metadata.labels) delete w.du.metadata.labels['velero.io/expose-on-going'];
      bump(w.du);
      return w;
    }
    case 'create': {
      const obj = structuredClone(action.object);
      obj.metadata.uid = `uid-${++counter}`;
      obj.metadata.resourceVersion = String(counter);
      obj.metadata.creationTimestamp = new Date(now).toISOString();
      const slot = slotOf(w, action.resource.kind, obj);
      (w as unknown as Record<string, KubeObject>)[slot] = obj;
      if (slot === 'backupVsc') bindBackupSnapshot(w);
      return w;
    }
    case 'patch': {
      const slot = slotByName(w, action.resource.kind, action.name);
      const target = (w as unknown as Record<string, KubeObject | undefined>)[slot];
      if (target) (w as unknown as Record<string, unknown>)[slot] = mergePatch(target, action.patch);
      return w;
    }
    case 'delete': {
      const slot = slotByName(w, action.resource.kind, action.name, action.namespace);
      delete (w as unknown as Record<string, unknown>)[slot];
      return w;
    }
    case 'copy': {
      const existing = (w.copies ?? []).find((c) => c.kind === action.kind && c.name === action.name);
      const users = [...(existing?.users ?? []), action.duUid];
      const copy = {
        kind: action.kind,
        name: action.name,
        namespace: action.namespace,
        uid: existing?.uid ?? `uid-${++counter}`,
        resourceVersion: String(++counter),
        users,
        isCopy: true,
        deleting: false,
      };
      w.copies = [...(w.copies ?? []).filter((c) => c !== existing), copy];
      return w;
    }
    case 'releaseCopy':
      w.copies = (w.copies ?? []).flatMap((c) => {
        if (c.kind !== action.kind || c.name !== action.name) return [c];
        if (action.last) return [];
        return [{ ...c, users: c.users.filter((u) => u !== action.duUid) }];
      });
      return w;
  }
}

/** Runs plan → apply until the plan waits or is done; returns the actions taken and the final state. */
export function drive(
  world: Observed,
  ctx: PlanContext,
  maxSteps = 40,
): { actions: Action[]; world: Observed; last: Decision } {
  const actions: Action[] = [];
  let w = world;
  for (let i = 0; i < maxSteps; i++) {
    const decision = plan(w, ctx);
    if (decision.kind !== 'act') return { actions, world: w, last: decision };
    actions.push(decision.action);
    w = apply(w, decision.action, ctx.now);
  }
  throw new Error(`no rest after ${maxSteps} steps`);
}

/** A short label per action, for asserting sequences. */
export function describe(action: Action): string {
  switch (action.type) {
    case 'patchDataUpload':
      if (action.phase) return `status:${action.phase}`;
      if (action.patch.metadata?.finalizers) {
        return action.patch.metadata.finalizers.includes(DATAUPLOAD_FINALIZER) ? 'finalizer:add' : 'finalizer:remove';
      }
      return action.patch.spec?.cancel ? 'spec:cancel' : 'status';
    case 'finish':
      return `finish:${action.phase}`;
    case 'create':
      return `create:${action.resource.kind}`;
    case 'patch':
      return `patch:${action.resource.kind}`;
    case 'delete':
      return `delete:${action.resource.kind}:${action.namespace ? `${action.namespace}/` : ''}${action.name}`;
    case 'copy':
      return `copy:${action.kind}:${action.sourceNamespace}/${action.name}`;
    case 'releaseCopy':
      return `${action.last ? 'delete' : 'release'}:${action.kind}Copy:${action.namespace}/${action.name}`;
  }
}

/** Marks the backup pod Running on a node, as the scheduler and kubelet would. */
export function podRunning(world: Observed, node = 'kwok-node-1'): Observed {
  const w = structuredClone(world);
  const pod = w.backupPod as Pod;
  pod.spec = { ...pod.spec!, nodeName: node };
  pod.status = { phase: 'Running' };
  return w;
}

/** What the snapshot controller does with a statically bound content: both become ready with the source size. */
function bindBackupSnapshot(w: Observed): void {
  const handle = w.backupVsc!.spec.source.snapshotHandle;
  w.backupVsc!.status = { readyToUse: true, snapshotHandle: handle, restoreSize: 2 * 2 ** 30 };
  w.backupVs!.status = {
    readyToUse: true,
    boundVolumeSnapshotContentName: w.backupVsc!.metadata.name,
    restoreSize: '2Gi',
  };
}

function slotOf(w: Observed, kind: string, obj: KubeObject): string {
  return slotByName(w, kind, obj.metadata.name!, obj.metadata.namespace);
}

function slotByName(w: Observed, kind: string, name: string, namespace?: string): string {
  const mine = name === w.du.metadata.name && (namespace === undefined || namespace === w.du.metadata.namespace);
  switch (kind) {
    case 'VolumeSnapshot':
      return mine ? 'backupVs' : 'sourceVs';
    case 'VolumeSnapshotContent':
      return mine ? 'backupVsc' : 'sourceVsc';
    case 'PersistentVolumeClaim':
      return mine ? 'backupPvc' : 'sourcePvc';
    case 'PersistentVolume':
      return 'backupPv';
    case 'Pod':
      return 'backupPod';
    default:
      throw new Error(`no slot for ${kind}`);
  }
}

function bump(obj: KubeObject): void {
  obj.metadata.resourceVersion = String(Number(obj.metadata.resourceVersion ?? '0') + 1);
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else if (v !== undefined) out[k] = mergePatch(out[k], v);
  }
  return out;
}
