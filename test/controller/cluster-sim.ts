/**
 * A small simulated cluster for leak tests of the controller's decisions: the API server's object store, plus the
 * controllers that act on what the operator writes (the snapshot controller, the PV binder and provisioner, the
 * garbage collector), plus a ledger of storage snapshots released. The real {@link Observer} reads it, the real
 * `plan()` decides, and {@link SimCluster.apply} performs an action the way the API server and those controllers
 * would. Deletions are two-phase (a deletionTimestamp first, the object goes at the next {@link SimCluster.settle}),
 * so a test can land a cancel while something is still being deleted.
 */
import type { DataUpload } from '../../src/api/dataupload.js';
import type {
  KubeObject,
  Node,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../src/api/kube.js';
import {
  contentIndexers,
  dataUploadIndexers,
  nodeIndexers,
  snapshotHandlesOf,
  volumeIndexers,
} from '../../src/controller/indexes.js';
import { Observer } from '../../src/controller/observe.js';
import type { IndexedReadStore, Stores } from '../../src/controller/observe.js';
import { WriteOverlay } from '../../src/controller/overlay.js';
import type { Action, Observed } from '../../src/controller/types.js';
import { mergePatch } from '../runtime/in-memory-kube.js';

type Kind =
  | 'DataUpload'
  | 'Pod'
  | 'PersistentVolumeClaim'
  | 'PersistentVolume'
  | 'VolumeSnapshot'
  | 'VolumeSnapshotContent'
  | 'Node';

const KINDS: readonly Kind[] = [
  'DataUpload',
  'Pod',
  'PersistentVolumeClaim',
  'PersistentVolume',
  'VolumeSnapshot',
  'VolumeSnapshotContent',
  'Node',
];

function keyOf(name: string, namespace?: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The simulated cluster. */
export class SimCluster {
  private readonly objects = new Map<Kind, Map<string, KubeObject>>(KINDS.map((k) => [k, new Map()]));
  /** How many times each storage snapshot handle was released by a content with policy Delete. */
  readonly released = new Map<string, number>();
  private counter = 0;
  /** Milliseconds since the epoch; tests move it. */
  now: number;
  /** Reclaim policy of provisioned backup PVs. */
  pvReclaimPolicy: 'Delete' | 'Retain' = 'Retain';

  constructor(now: number) {
    this.now = now;
  }

  /** Stores an object as it is (for the initial world). */
  put<T extends KubeObject>(kind: Kind, obj: T): void {
    const o = structuredClone(obj);
    o.metadata.uid ??= `uid-${++this.counter}`;
    o.metadata.resourceVersion = String(++this.counter);
    o.metadata.creationTimestamp ??= new Date(this.now).toISOString();
    this.map(kind).set(keyOf(o.metadata.name!, o.metadata.namespace), o);
  }

  get<T extends KubeObject>(kind: Kind, name: string, namespace?: string): T | undefined {
    return this.map(kind).get(keyOf(name, namespace)) as T | undefined;
  }

  all<T extends KubeObject>(kind: Kind): T[] {
    return [...this.map(kind).values()] as T[];
  }

  /** The caches the operator would read, with the controller's indexes; always current (no watch lag). */
  stores(): Stores {
    const store = <T extends KubeObject>(
      kind: Kind,
      indexers: Readonly<Record<string, (o: T) => string[]>> = {},
    ): IndexedReadStore<T> => {
      const byIndex = (index: string, value: string): T[] => {
        const indexer = indexers[index];
        if (!indexer) throw new Error(`${kind} has no index ${index}`);
        return this.all<T>(kind).filter((o) => indexer(o).includes(value));
      };
      return {
        get: (name, namespace) => this.get<T>(kind, name, namespace),
        list: () => this.all<T>(kind),
        byIndex,
        countByIndex: (index, value) => byIndex(index, value).length,
      };
    };
    return {
      dataUploads: store<DataUpload>('DataUpload', dataUploadIndexers),
      pods: store<Pod>('Pod'),
      persistentVolumeClaims: store<PersistentVolumeClaim>('PersistentVolumeClaim'),
      persistentVolumes: store<PersistentVolume>('PersistentVolume', volumeIndexers),
      volumeSnapshots: store<VolumeSnapshot>('VolumeSnapshot'),
      volumeSnapshotContents: store<VolumeSnapshotContent>('VolumeSnapshotContent', contentIndexers),
      nodes: store<Node>('Node', nodeIndexers),
      storageClasses: { get: () => undefined, list: () => [] },
    };
  }

  /** What plan() sees for the DataUpload `namespace/name`, or undefined once it is gone. */
  observe(namespace: string, name: string): Observed | undefined {
    const observer = new Observer(
      this.stores(),
      new WriteOverlay({ now: () => this.now, cachedVersion: () => undefined }),
    );
    const du = observer.dataUpload(namespace, name);
    return du && observer.observe(structuredClone(du));
  }

  /** Performs one action for `du` as the API server would; the controllers react at the next settle(). */
  apply(du: DataUpload, action: Action): void {
    const ns = du.metadata.namespace!;
    const name = du.metadata.name!;
    switch (action.type) {
      case 'patchDataUpload':
        this.patchObject('DataUpload', name, ns, action.patch);
        return;
      case 'finish': {
        const ts = new Date(Math.floor(this.now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
        const current = this.get<DataUpload>('DataUpload', name, ns)!;
        this.patchObject('DataUpload', name, ns, {
          metadata: { labels: { 'velero.io/expose-on-going': null } },
          status: {
            phase: action.phase,
            completionTimestamp: ts,
            startTimestamp: current.status?.startTimestamp ?? ts,
            ...(action.message ? { message: action.message } : {}),
          },
        });
        return;
      }
      case 'create': {
        const kind = action.resource.kind as Kind;
        const obj = action.object;
        if (this.get(kind, obj.metadata.name!, obj.metadata.namespace)) return; // AlreadyExists: adopted
        this.put(kind, obj);
        return;
      }
      case 'patch':
        this.patchObject(action.resource.kind as Kind, action.name, action.namespace, action.patch);
        return;
      case 'delete':
        this.markDeleted(action.resource.kind as Kind, action.name, action.namespace);
        return;
    }
  }

  /** `kubectl delete` of an object: with finalizers it only gets a deletionTimestamp. */
  markDeleted(kind: Kind, name: string, namespace?: string): void {
    const obj = this.get(kind, name, namespace);
    if (!obj || obj.metadata.deletionTimestamp) return;
    this.patchObject(kind, name, namespace, { metadata: { deletionTimestamp: new Date(this.now).toISOString() } });
  }

  /**
   * Lets the cluster's controllers catch up: static snapshots bind, claims get volumes, deleted objects without
   * finalizers go (with the snapshot controller's and provisioner's follow-ups), owned objects of a deleted owner
   * are collected. Runs until nothing changes.
   */
  settle(): void {
    for (let round = 0; round < 20; round++) {
      if (!this.step()) return;
    }
    throw new Error('the simulated cluster does not settle');
  }

  /** Objects that exposing could have left behind: everything but the DataUpload, the source PVC and the nodes. */
  leftovers(sourcePvc: { namespace: string; name: string }): string[] {
    const left: string[] = [];
    for (const kind of [
      'Pod',
      'PersistentVolumeClaim',
      'PersistentVolume',
      'VolumeSnapshot',
      'VolumeSnapshotContent',
    ] as const) {
      for (const obj of this.all(kind)) {
        if (
          kind === 'PersistentVolumeClaim' &&
          obj.metadata.namespace === sourcePvc.namespace &&
          obj.metadata.name === sourcePvc.name
        )
          continue;
        left.push(`${kind} ${keyOf(obj.metadata.name!, obj.metadata.namespace)}`);
      }
    }
    return left;
  }

  private step(): boolean {
    let changed = false;
    for (const kind of KINDS) {
      for (const obj of this.all(kind)) {
        if (obj.metadata.deletionTimestamp && (obj.metadata.finalizers ?? []).length === 0) {
          this.remove(kind, obj);
          changed = true;
        }
      }
    }
    changed = this.bindStaticSnapshots() || changed;
    changed = this.provisionClaims() || changed;
    changed = this.collectGarbage() || changed;
    return changed;
  }

  private remove(kind: Kind, obj: KubeObject): void {
    this.map(kind).delete(keyOf(obj.metadata.name!, obj.metadata.namespace));
    if (kind === 'VolumeSnapshotContent') {
      const vsc = obj as VolumeSnapshotContent;
      if (vsc.spec.deletionPolicy === 'Delete') {
        for (const handle of snapshotHandlesOf(vsc)) this.released.set(handle, (this.released.get(handle) ?? 0) + 1);
      }
    }
    if (kind === 'VolumeSnapshot') {
      // The snapshot controller deletes a bound content with policy Delete together with its snapshot.
      const bound = (obj as VolumeSnapshot).status?.boundVolumeSnapshotContentName;
      const vsc = bound ? this.get<VolumeSnapshotContent>('VolumeSnapshotContent', bound) : undefined;
      if (vsc && vsc.spec.deletionPolicy === 'Delete') this.markDeleted('VolumeSnapshotContent', bound!);
    }
    if (kind === 'PersistentVolumeClaim') {
      const pvName = (obj as PersistentVolumeClaim).spec?.volumeName;
      const pv = pvName ? this.get<PersistentVolume>('PersistentVolume', pvName) : undefined;
      // A released volume with reclaim policy Delete is deleted by the provisioner; Retain keeps it.
      if (pv && pv.spec?.persistentVolumeReclaimPolicy === 'Delete') this.markDeleted('PersistentVolume', pvName!);
    }
  }

  /** A pre-provisioned backup content binds its snapshot: both ready, sized like the source. */
  private bindStaticSnapshots(): boolean {
    let changed = false;
    for (const vs of this.all<VolumeSnapshot>('VolumeSnapshot')) {
      const contentName = vs.spec.source.volumeSnapshotContentName;
      if (!contentName || vs.status?.readyToUse || vs.metadata.deletionTimestamp) continue;
      const vsc = this.get<VolumeSnapshotContent>('VolumeSnapshotContent', contentName);
      if (!vsc || vsc.metadata.deletionTimestamp) continue;
      this.patchObject('VolumeSnapshotContent', contentName, undefined, {
        status: { readyToUse: true, snapshotHandle: vsc.spec.source.snapshotHandle, restoreSize: 2 * 2 ** 30 },
      });
      this.patchObject('VolumeSnapshot', vs.metadata.name!, vs.metadata.namespace, {
        status: { readyToUse: true, boundVolumeSnapshotContentName: contentName, restoreSize: '2Gi' },
      });
      changed = true;
    }
    return changed;
  }

  /** A claim gets a PV bound to it. */
  private provisionClaims(): boolean {
    let changed = false;
    for (const pvc of this.all<PersistentVolumeClaim>('PersistentVolumeClaim')) {
      if (pvc.spec?.volumeName || pvc.metadata.deletionTimestamp) continue;
      const pvName = `pvc-${pvc.metadata.uid}`;
      this.put('PersistentVolume', {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: pvName },
        spec: {
          persistentVolumeReclaimPolicy: this.pvReclaimPolicy,
          claimRef: { namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid: pvc.metadata.uid },
        },
      });
      this.patchObject('PersistentVolumeClaim', pvc.metadata.name!, pvc.metadata.namespace, {
        spec: { volumeName: pvName },
        status: { phase: 'Bound' },
      });
      changed = true;
    }
    return changed;
  }

  /** KCM's garbage collector: objects whose owner is gone are deleted. */
  private collectGarbage(): boolean {
    let changed = false;
    const liveUids = new Set(this.all('DataUpload').map((d) => d.metadata.uid));
    for (const kind of ['Pod', 'PersistentVolumeClaim'] as const) {
      for (const obj of this.all(kind)) {
        const owners = obj.metadata.ownerReferences ?? [];
        if (owners.length > 0 && owners.every((o) => !liveUids.has(o.uid)) && !obj.metadata.deletionTimestamp) {
          this.markDeleted(kind, obj.metadata.name!, obj.metadata.namespace);
          changed = true;
        }
      }
    }
    return changed;
  }

  private patchObject(kind: Kind, name: string, namespace: string | undefined, patch: unknown): void {
    const key = keyOf(name, namespace);
    const current = this.map(kind).get(key);
    if (!current) return; // NotFound
    const next = mergePatch(current, patch) as KubeObject;
    next.metadata.resourceVersion = String(++this.counter);
    this.map(kind).set(key, next);
  }

  private map(kind: Kind): Map<string, KubeObject> {
    return this.objects.get(kind)!;
  }
}
