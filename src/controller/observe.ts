/**
 * Builds the {@link Observed} state of one DataUpload from the watch caches, merged with this process's own
 * recent writes. Reads only: no API calls.
 */
import type { DataUpload } from '../api/dataupload.js';
import type {
  KubeObject,
  Node,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/kube.js';
import { Phase, phaseOf } from '../api/dataupload.js';
import { LABEL_EXPOSE_ON_GOING } from '../api/names.js';
import { Resources } from '../runtime/kube-api.js';
import type { ResourceRef } from '../runtime/kube-api.js';
import { copyUsers, isBackupPvcCopy } from '../exposer/copies.js';
import type { CopyKind } from '../exposer/copies.js';
import { Index, sourceKey } from './indexes.js';
import type { WriteOverlay } from './overlay.js';
import type { Observed, ObservedCopy, Refusal } from './types.js';

/** The read side of a watch cache. */
export interface ReadStore<T extends KubeObject> {
  get(name: string, namespace?: string): T | undefined;
  list(): readonly T[];
}

/** A read store with secondary indexes (see `indexes.ts`). */
export interface IndexedReadStore<T extends KubeObject> extends ReadStore<T> {
  byIndex(index: string, value: string): readonly T[];
  countByIndex(index: string, value: string): number;
}

/** Every cache the controller reads. */
export interface Stores {
  /** Indexed by {@link Index.exposeOnGoing}. */
  dataUploads: IndexedReadStore<DataUpload>;
  pods: ReadStore<Pod>;
  persistentVolumeClaims: ReadStore<PersistentVolumeClaim>;
  /** Indexed by {@link Index.pvClaim}. */
  persistentVolumes: IndexedReadStore<PersistentVolume>;
  volumeSnapshots: ReadStore<VolumeSnapshot>;
  /** Indexed by {@link Index.snapshotHandle}. */
  volumeSnapshotContents: IndexedReadStore<VolumeSnapshotContent>;
  /** Indexed by {@link Index.nodeOs}. */
  nodes: IndexedReadStore<Node>;
  storageClasses: ReadStore<StorageClass>;
  /** Copies in the DataUploads' namespace, without content, indexed by {@link Index.copyUser}; only when configured. */
  secretCopies?: IndexedReadStore<KubeObject>;
  configMapCopies?: IndexedReadStore<KubeObject>;
}

/** Options of {@link Observer}. */
export interface ObserverOptions {
  /**
   * Count the DataUploads being exposed for a New one (`Observed.exposeOnGoing`). Only a prepare queue length
   * needs the count; without one it stays 0. Default true.
   */
  countExposeOnGoing?: boolean;
  /**
   * Count the DataUploads being exposed for a New one (`Observed.exposing`), for `--max-concurrent-exposes`: that
   * value. The count stops there (all plan() needs to know is whether the window is full). 0 or unset: no count.
   */
  countExposing?: number;
  /** Milliseconds since the epoch; default Date.now. */
  now?: () => number;
}

/** How long an accepted DataUpload without its backupPod holds a slot of `--max-concurrent-exposes` at most. */
export const EXPOSE_WINDOW_SLOT_MS = 60_000;
/**
 * How long a DataUpload keeps its slot once its backupPod exists. A fast cluster binds, schedules and runs the pod
 * within that, and the DataUpload is Prepared before the next one starts; a slow one (a real CSI driver provisioning
 * from a snapshot can take minutes) does not make the others wait for it.
 */
export const EXPOSE_WINDOW_POD_MS = 5_000;

const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node';

/** Reads caches through the write overlay. */
export class Observer {
  private readonly countExposeOnGoing: boolean;
  private readonly countExposing: number;
  private readonly now: () => number;

  constructor(
    private readonly stores: Stores,
    private readonly overlay: WriteOverlay,
    options: ObserverOptions = {},
  ) {
    this.countExposeOnGoing = options.countExposeOnGoing ?? true;
    this.countExposing = options.countExposing ?? 0;
    this.now = options.now ?? Date.now;
  }

  /** The freshest DataUpload with this key, or undefined when it is gone. */
  dataUpload(namespace: string, name: string): DataUpload | undefined {
    return this.read(Resources.dataUploads, this.stores.dataUploads, name, namespace);
  }

  /**
   * Everything plan() needs about one DataUpload.
   * @param pendingAccepts DataUploads this process accepted that the cache may not show yet.
   * @param refused Writes the API server refused for good earlier in this reconcile pass.
   */
  observe(du: DataUpload, pendingAccepts: ReadonlySet<string> = new Set(), refused: readonly Refusal[] = []): Observed {
    const ns = du.metadata.namespace!;
    const name = du.metadata.name!;
    const sourceNs = du.spec.sourceNamespace;
    const csi = du.spec.csiSnapshot;

    const sourcePvc = this.read(
      Resources.persistentVolumeClaims,
      this.stores.persistentVolumeClaims,
      du.spec.sourcePVC,
      sourceNs,
    );
    const sourceVs = csi
      ? this.read(Resources.volumeSnapshots, this.stores.volumeSnapshots, csi.volumeSnapshot, sourceNs)
      : undefined;
    const sourcePvName = sourcePvc?.spec?.volumeName;
    const sourcePv = sourcePvName
      ? this.read(Resources.persistentVolumes, this.stores.persistentVolumes, sourcePvName)
      : undefined;
    const sourceStorageClass = csi?.storageClass ? this.stores.storageClasses.get(csi.storageClass) : undefined;
    const backupVs = this.read(Resources.volumeSnapshots, this.stores.volumeSnapshots, name, ns);
    const backupVsc = this.read(Resources.volumeSnapshotContents, this.stores.volumeSnapshotContents, name);
    const sourceVsc = this.sourceContent(sourceVs, backupVsc);
    const backupPvc = this.read(Resources.persistentVolumeClaims, this.stores.persistentVolumeClaims, name, ns);
    const backupPv = this.backupVolume(backupPvc, ns, name);
    const backupClassName = backupPvc?.spec?.storageClassName;
    const backupStorageClass = backupClassName ? this.stores.storageClasses.get(backupClassName) : undefined;
    const backupPod = this.read(Resources.pods, this.stores.pods, name, ns);
    const selectedNodeName = sourcePvc?.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
    const selectedNode = selectedNodeName ? this.stores.nodes.get(selectedNodeName) : undefined;

    return {
      du,
      sourcePvc,
      ...(sourcePv ? { sourcePv } : {}),
      ...(sourceStorageClass ? { sourceStorageClass } : {}),
      sourceVs,
      sourceVsc,
      backupVs,
      backupVsc,
      backupPvc,
      ...(backupStorageClass ? { backupStorageClass } : {}),
      backupPv,
      backupPod,
      selectedNode,
      nodesByOs: this.nodesByOs(),
      exposeOnGoing: this.countExposeOnGoing && phaseOf(du) === Phase.New ? this.exposeOnGoing(du, pendingAccepts) : 0,
      ...(this.countExposing > 0 && phaseOf(du) === Phase.New
        ? { exposing: this.exposing(du, pendingAccepts, this.now()) }
        : {}),
      ...(refused.length > 0 ? { refused } : {}),
      ...this.copies(du),
    };
  }

  /** The PV bound to the backup PVC; once the PVC is gone, the one still claiming it (being released). */
  private backupVolume(
    backupPvc: PersistentVolumeClaim | undefined,
    namespace: string,
    name: string,
  ): PersistentVolume | undefined {
    const volumes = this.stores.persistentVolumes;
    const pvName =
      backupPvc?.spec?.volumeName ?? volumes.byIndex(Index.pvClaim, sourceKey(namespace, name))[0]?.metadata.name;
    return pvName ? this.read(Resources.persistentVolumes, volumes, pvName) : undefined;
  }

  /** The copies this DataUpload uses (its user label), as this process knows them. */
  private copies(du: DataUpload): { copies?: ObservedCopy[] } {
    const uid = du.metadata.uid ?? '';
    const found: ObservedCopy[] = [];
    const kinds: [CopyKind, ResourceRef, IndexedReadStore<KubeObject> | undefined][] = [
      ['Secret', Resources.secrets, this.stores.secretCopies],
      ['ConfigMap', Resources.configMaps, this.stores.configMapCopies],
    ];
    for (const [kind, resource, store] of kinds) {
      if (!store) continue;
      const names = new Set(store.byIndex(Index.copyUser, uid).map((c) => c.metadata.name!));
      for (const w of this.overlay.written(resource)) if (w.namespace === du.metadata.namespace) names.add(w.name);
      for (const name of names) {
        const copy = this.read(resource, store, name, du.metadata.namespace);
        if (!copy) continue;
        const users = copyUsers(copy);
        if (!users.includes(uid)) continue;
        found.push({
          kind,
          name,
          namespace: copy.metadata.namespace!,
          uid: copy.metadata.uid ?? '',
          resourceVersion: copy.metadata.resourceVersion ?? '',
          users,
          isCopy: isBackupPvcCopy(copy),
          deleting: !!copy.metadata.deletionTimestamp,
        });
      }
    }
    return found.length > 0 ? { copies: found } : {};
  }

  /**
   * The source content. Before the backup content exists it is the one the source snapshot is bound to. From then
   * on it is the other content on the backup content's snapshot handle: that stays findable after the source
   * snapshot is deleted (a restart, a cancel between "delete source snapshot" and "delete source content"), and a
   * newer snapshot that reuses the source snapshot's name, bound to another handle, is never mistaken for it.
   */
  private sourceContent(
    sourceVs: VolumeSnapshot | undefined,
    backupVsc: VolumeSnapshotContent | undefined,
  ): VolumeSnapshotContent | undefined {
    const handle = backupVsc?.spec.source.snapshotHandle;
    let name: string | undefined;
    if (handle) {
      name = this.stores.volumeSnapshotContents
        .byIndex(Index.snapshotHandle, handle)
        .find((vsc) => vsc.metadata.name !== backupVsc.metadata.name)?.metadata.name;
    } else {
      name = sourceVs?.status?.boundVolumeSnapshotContentName;
    }
    return name ? this.read(Resources.volumeSnapshotContents, this.stores.volumeSnapshotContents, name) : undefined;
  }

  /** Nodes per OS the exposer can pick (the only two values plan() asks about). */
  private nodesByOs(): Record<string, number> {
    const count = (os: string) => this.stores.nodes.countByIndex(Index.nodeOs, os);
    return { linux: count('linux'), windows: count('windows') };
  }

  /**
   * DataUploads labelled expose-on-going, as this process knows them: the cache's index, corrected by our own
   * writes that the cache does not show yet (an accept adds the label, a finish removes it), plus accepts in
   * flight. Costs the number of such DataUploads, not the number of DataUploads.
   */
  private exposeOnGoing(du: DataUpload, pendingAccepts: ReadonlySet<string>): number {
    const candidates = new Map<string, { namespace?: string; name: string }>();
    for (const cached of this.stores.dataUploads.byIndex(Index.exposeOnGoing, 'true')) {
      candidates.set(`${cached.metadata.namespace}/${cached.metadata.name}`, {
        namespace: cached.metadata.namespace,
        name: cached.metadata.name!,
      });
    }
    for (const written of this.overlay.written(Resources.dataUploads)) {
      candidates.set(`${written.namespace}/${written.name}`, written);
    }
    const keys = new Set(pendingAccepts);
    for (const [key, { namespace, name }] of candidates) {
      const other = this.read(Resources.dataUploads, this.stores.dataUploads, name, namespace);
      if (other?.metadata.labels?.[LABEL_EXPOSE_ON_GOING] === 'true') keys.add(key);
    }
    keys.delete(`${du.metadata.namespace}/${du.metadata.name}`);
    return keys.size;
  }

  /**
   * DataUploads being exposed: Accepted less than {@link EXPOSE_WINDOW_SLOT_MS} ago, without their backupPod or
   * with one younger than {@link EXPOSE_WINDOW_POD_MS}, plus accepts in flight. So the window orders the work the
   * operator and a fast cluster do, and never holds DataUploads back behind slow provisioning or stuck ones. Only a
   * throughput limit, so the cache's view (through our own writes) is enough. Stops counting at the window's size,
   * newest first (those most likely hold a slot): in a burst the Accepted ones waiting for kwok or a provisioner are
   * many more than the window.
   */
  private exposing(du: DataUpload, pendingAccepts: ReadonlySet<string>, now: number): number {
    const self = `${du.metadata.namespace}/${du.metadata.name}`;
    const limit = this.countExposing;
    const counted = new Set<string>(pendingAccepts);
    counted.delete(self);
    const accepted = this.stores.dataUploads.byIndex(Index.phase, Phase.Accepted);
    for (let i = accepted.length - 1; i >= 0 && counted.size < limit; i--) {
      const other = accepted[i]!;
      const { name, namespace } = other.metadata;
      const key = `${namespace}/${name}`;
      if (key === self) continue;
      if (!(now - Date.parse(other.status?.acceptedTimestamp ?? '') < EXPOSE_WINDOW_SLOT_MS)) continue;
      const pod = this.read(Resources.pods, this.stores.pods, name!, namespace);
      if (pod && !(now - Date.parse(pod.metadata.creationTimestamp ?? '') < EXPOSE_WINDOW_POD_MS)) continue;
      counted.add(key);
    }
    return Math.min(counted.size, limit);
  }

  private read<T extends KubeObject>(
    resource: ResourceRef,
    store: ReadStore<T>,
    name: string,
    namespace?: string,
  ): T | undefined {
    const ns = resource.namespaced ? namespace : undefined;
    return this.overlay.read(resource, ns, name, store.get(name, ns));
  }
}
