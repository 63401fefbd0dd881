/**
 * What the controller's caches keep (WatchCache `transform`). The caches list and watch whole resource types across
 * the cluster, so in a big cluster most of what they see is unrelated: PVCs, snapshots, contents and volumes of
 * other workloads, and Nodes with their image lists. So:
 *
 * - **only what a DataUpload refers to** is kept of PVCs, PVs, VolumeSnapshots and VolumeSnapshotContents: objects
 *   in the DataUploads' namespace (the backup objects), a DataUpload's source PVC and snapshot, the contents of
 *   such snapshots, the volumes of such claims. The rest is dropped at arrival; what a new DataUpload refers to and
 *   the watch already passed by is read once (`DataUploadController.loadReferences`);
 * - of what is kept, only what `observe()`, `plan()`, the builders and the diagnostics read; objects in the
 *   DataUploads' namespace are kept whole for the diagnostics, except backupPods, which keep their metadata, node
 *   and status (their spec was most of what a burst of 1,000 added to the operator's memory).
 *
 * Measured with 10,000 unrelated PVCs and snapshots (40,000 objects with their volumes and contents): they made
 * three quarters of the operator's live heap before.
 */
import type {
  KubeObject,
  Node,
  Pod,
  PersistentVolume,
  PersistentVolumeClaim,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/kube.js';

/** The client-side-apply annotation: a full copy of the object, never read by a controller. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** The only annotation read on a source PVC (its node decides the backupPod's OS). */
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';

/** What a DataUpload refers to, as the DataUpload cache's indexes know it. */
export interface References {
  /** A DataUpload's `spec.sourceNamespace/spec.sourcePVC`. */
  isSourcePvc(namespace: string | undefined, name: string | undefined): boolean;
  /** A DataUpload's `spec.sourceNamespace/spec.csiSnapshot.volumeSnapshot`. */
  isSourceSnapshot(namespace: string | undefined, name: string | undefined): boolean;
}

/** Whether a cached object of each kind is needed by some DataUpload in `namespace`. */
export function relevance(namespace: string, refs: References) {
  return {
    persistentVolumeClaims: (pvc: KubeObject): boolean =>
      pvc.metadata.namespace === namespace || refs.isSourcePvc(pvc.metadata.namespace, pvc.metadata.name),
    persistentVolumes: (pv: KubeObject): boolean => {
      const claim = (pv as PersistentVolume).spec?.claimRef;
      return claim?.namespace === namespace || refs.isSourcePvc(claim?.namespace, claim?.name);
    },
    volumeSnapshots: (vs: KubeObject): boolean =>
      vs.metadata.namespace === namespace || refs.isSourceSnapshot(vs.metadata.namespace, vs.metadata.name),
    /** A backup content refers to the backup snapshot; a source content, even re-homed, to the source snapshot. */
    volumeSnapshotContents: (vsc: KubeObject): boolean => {
      const ref = (vsc as VolumeSnapshotContent).spec?.volumeSnapshotRef;
      return ref?.namespace === namespace || refs.isSourceSnapshot(ref?.namespace, ref?.name);
    },
  };
}

/** The transforms, by cache, for DataUploads living in `namespace`; without `refs`, nothing is left out. */
export function cacheTransforms(namespace: string, refs?: References) {
  const wanted = refs && relevance(namespace, refs);
  const keep =
    <T extends KubeObject>(relevant: ((o: KubeObject) => boolean) | undefined, slim: (o: KubeObject) => T) =>
    (o: KubeObject): T | undefined =>
      relevant === undefined || relevant(o) ? slim(o) : undefined;
  const all = {
    /** Labels only (the OS and the selected node's OS are all that is read). */
    nodes: (node: KubeObject): Node => {
      const { name, uid, resourceVersion, labels } = node.metadata;
      return { apiVersion: node.apiVersion, kind: node.kind, metadata: { name, uid, resourceVersion, labels } };
    },
    /** Backup volumes (claimed in the DataUploads' namespace) whole; others only their claim and node affinity. */
    persistentVolumes: (pv: KubeObject): PersistentVolume =>
      (pv as PersistentVolume).spec?.claimRef?.namespace === namespace ? withoutLastApplied(pv) : slimSourcePv(pv),
    /** Backup PVCs whole; source PVCs (any other namespace) reduced to what exposing reads. */
    persistentVolumeClaims: (pvc: KubeObject): PersistentVolumeClaim =>
      pvc.metadata.namespace === namespace ? withoutLastApplied(pvc) : slimSourcePvc(pvc),
    /** Source snapshots keep annotations (copied onto the backup snapshot), spec and status. */
    volumeSnapshots: (vs: KubeObject): VolumeSnapshot =>
      vs.metadata.namespace === namespace ? withoutLastApplied(vs) : slimMetadata(vs as VolumeSnapshot, true),
    volumeSnapshotContents: (vsc: KubeObject): VolumeSnapshotContent => withoutLastApplied(vsc),
  };
  return {
    nodes: all.nodes,
    pods: slimPod,
    persistentVolumes: keep(wanted?.persistentVolumes, all.persistentVolumes),
    persistentVolumeClaims: keep(wanted?.persistentVolumeClaims, all.persistentVolumeClaims),
    volumeSnapshots: keep(wanted?.volumeSnapshots, all.volumeSnapshots),
    volumeSnapshotContents: keep(wanted?.volumeSnapshotContents, all.volumeSnapshotContents),
  };
}

/**
 * A backupPod as plan() and the diagnostics read it: its metadata, its node and its status, not the containers,
 * volumes and affinities of its spec (three quarters of a backupPod). A burst of 1,000 keeps 1,000 of them.
 */
function slimPod(obj: KubeObject): Pod {
  const pod = withoutLastApplied<Pod>(obj);
  const nodeName = pod.spec?.nodeName;
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: pod.metadata,
    spec: { containers: [], ...(nodeName ? { nodeName } : {}) },
    ...(pod.status ? { status: pod.status } : {}),
  };
}

function withoutLastApplied<T extends KubeObject>(obj: KubeObject): T {
  const annotations = obj.metadata.annotations;
  if (annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _dropped, ...rest } = annotations;
    obj.metadata.annotations = rest;
  }
  return obj as T;
}

/** Identity, lifecycle and (optionally) annotations; no labels, owners, finalizers or other metadata. */
function slimMetadata<T extends KubeObject>(obj: T, keepAnnotations: boolean): T {
  const { name, namespace, uid, resourceVersion, creationTimestamp, deletionTimestamp } = obj.metadata;
  const annotations = keepAnnotations ? withoutLastApplied(obj).metadata.annotations : undefined;
  obj.metadata = {
    name,
    namespace,
    uid,
    resourceVersion,
    creationTimestamp,
    ...(deletionTimestamp ? { deletionTimestamp } : {}),
    ...(annotations ? { annotations } : {}),
  };
  return obj;
}

function slimSourcePv(pv: PersistentVolume): PersistentVolume {
  const slim = slimMetadata(pv, false);
  const claim = pv.spec?.claimRef;
  const nodeAffinity = pv.spec?.nodeAffinity;
  return {
    apiVersion: pv.apiVersion,
    kind: pv.kind,
    metadata: slim.metadata,
    spec: {
      ...(claim ? { claimRef: { namespace: claim.namespace, name: claim.name, uid: claim.uid } } : {}),
      ...(nodeAffinity ? { nodeAffinity } : {}),
    },
  };
}

function slimSourcePvc(pvc: PersistentVolumeClaim): PersistentVolumeClaim {
  const selectedNode = pvc.metadata.annotations?.[SELECTED_NODE];
  const slim = slimMetadata(pvc, false);
  if (selectedNode !== undefined) slim.metadata.annotations = { [SELECTED_NODE]: selectedNode };
  const spec = pvc.spec;
  return {
    apiVersion: pvc.apiVersion,
    kind: pvc.kind,
    metadata: slim.metadata,
    spec: spec && {
      storageClassName: spec.storageClassName,
      accessModes: spec.accessModes,
      volumeMode: spec.volumeMode,
      volumeName: spec.volumeName,
      resources: spec.resources,
    },
    status: pvc.status?.phase ? { phase: pvc.status.phase } : undefined,
  };
}
