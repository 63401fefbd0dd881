/**
 * Secondary indexes of the controller's watch caches: lookups that would otherwise scan a whole cache on every
 * reconcile or cache event, which made the cost per DataUpload grow with the number of DataUploads.
 */
import type { DataUpload } from '../api/dataupload.js';
import type { KubeObject, Node, PersistentVolume, VolumeSnapshotContent } from '../api/kube.js';
import { copyUsers } from '../exposer/copies.js';
import { LABEL_EXPOSE_ON_GOING, LABEL_NODE_OS } from '../api/names.js';

/** Index names. */
export const Index = Object.freeze({
  /** VolumeSnapshotContents by the storage snapshot they refer to (`status` and `spec.source` handles). */
  snapshotHandle: 'snapshotHandle',
  /** DataUploads by `<sourceNamespace>/<sourcePVC>`. */
  sourcePvc: 'sourcePvc',
  /** DataUploads by `<sourceNamespace>/<csiSnapshot.volumeSnapshot>`. */
  sourceSnapshot: 'sourceSnapshot',
  /** DataUploads labelled `velero.io/expose-on-going=true`, under `true`. */
  exposeOnGoing: 'exposeOnGoing',
  /** Nodes by their `kubernetes.io/os` label. */
  nodeOs: 'nodeOs',
  /** DataUploads by phase (`New` for none). */
  phase: 'phase',
  /** DataUploads by UID (a copy names its users by UID). */
  uid: 'uid',
  /** PersistentVolumes by `<claimRef.namespace>/<claimRef.name>`. */
  pvClaim: 'pvClaim',
  /** Secret and ConfigMap copies by the UIDs of the DataUploads using them. */
  copyUser: 'copyUser',
});

/**
 * The snapshot handles a content refers to: `status.snapshotHandle` (dynamic contents) and
 * `spec.source.snapshotHandle` (pre-provisioned ones, such as our backup content).
 */
export function snapshotHandlesOf(vsc: VolumeSnapshotContent): string[] {
  const fromStatus = vsc.status?.snapshotHandle;
  const fromSpec = vsc.spec?.source?.snapshotHandle;
  if (fromStatus && fromSpec && fromStatus !== fromSpec) return [fromStatus, fromSpec];
  const handle = fromStatus || fromSpec;
  return handle ? [handle] : [];
}

/** `<namespace>/<name>`: the value the source indexes file a DataUpload under. */
export function sourceKey(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ''}/${name ?? ''}`;
}

/** Index functions of the DataUpload cache. */
export const dataUploadIndexers = Object.freeze({
  [Index.sourcePvc]: (du: DataUpload): string[] =>
    du.spec?.sourcePVC ? [sourceKey(du.spec.sourceNamespace, du.spec.sourcePVC)] : [],
  [Index.sourceSnapshot]: (du: DataUpload): string[] =>
    du.spec?.csiSnapshot?.volumeSnapshot
      ? [sourceKey(du.spec.sourceNamespace, du.spec.csiSnapshot.volumeSnapshot)]
      : [],
  [Index.exposeOnGoing]: (du: DataUpload): string[] =>
    du.metadata.labels?.[LABEL_EXPOSE_ON_GOING] === 'true' ? ['true'] : [],
  [Index.uid]: (du: DataUpload): string[] => (du.metadata.uid ? [du.metadata.uid] : []),
  [Index.phase]: (du: DataUpload): string[] => [du.status?.phase || 'New'],
});

/** Index functions of the PersistentVolume cache. */
export const volumeIndexers = Object.freeze({
  [Index.pvClaim]: (pv: PersistentVolume): string[] => {
    const claim = pv.spec?.claimRef;
    return claim?.name ? [sourceKey(claim.namespace, claim.name)] : [];
  },
});

/** Index functions of the Secret and ConfigMap copy caches. */
export const copyIndexers = Object.freeze({ [Index.copyUser]: (obj: KubeObject): string[] => copyUsers(obj) });

/** Index functions of the Node cache. */
export const nodeIndexers = Object.freeze({
  [Index.nodeOs]: (node: Node): string[] => {
    const os = node.metadata.labels?.[LABEL_NODE_OS];
    return os ? [os] : [];
  },
});

/** Index functions of the VolumeSnapshotContent cache. */
export const contentIndexers = Object.freeze({ [Index.snapshotHandle]: snapshotHandlesOf });
