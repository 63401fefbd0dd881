/**
 * The DataUpload custom resource (`velero.io/v2alpha1`), field for field as Velero v1.18 defines it.
 * Objects are plain JSON as the API server sends them: timestamps are RFC 3339 strings, int64s are numbers.
 */
import type { ObjectMeta } from './kube.js';
import { BUILT_IN_DATA_MOVERS } from './names.js';

/** Every phase of a DataUpload. An empty or missing phase means {@link Phase.New}. */
export const Phase = Object.freeze({
  New: 'New',
  Accepted: 'Accepted',
  Prepared: 'Prepared',
  InProgress: 'InProgress',
  Canceling: 'Canceling',
  Canceled: 'Canceled',
  Completed: 'Completed',
  Failed: 'Failed',
} as const);
export type Phase = (typeof Phase)[keyof typeof Phase];

/** The phase enum, in the order of Velero's CRD. */
export const PHASES: readonly Phase[] = Object.freeze(Object.values(Phase));

/** `status.nodeOS` values. */
export const NodeOS = Object.freeze({ Auto: 'auto', Linux: 'linux', Windows: 'windows' } as const);
export type NodeOS = (typeof NodeOS)[keyof typeof NodeOS];
export const NODE_OS_VALUES: readonly NodeOS[] = Object.freeze(Object.values(NodeOS));

/** `spec.csiSnapshot`. */
export interface CSISnapshotSpec {
  /** Name of the VolumeSnapshot in `spec.sourceNamespace`. */
  volumeSnapshot: string;
  /** Storage class of the source PVC: the key of the node-agent `backupPVC` map. */
  storageClass: string;
  /** `spec.volumeSnapshotClassName` of the VolumeSnapshot, if any. */
  snapshotClass?: string;
  /** Driver of the VolumeSnapshotContent (Velero 1.17+). */
  driver?: string;
}

/** `spec` of a DataUpload. */
export interface DataUploadSpec {
  snapshotType: string;
  csiSnapshot?: CSISnapshotSpec | null;
  sourcePVC: string;
  /** `""` or `"velero"` means Velero's built-in data mover; anything else is not ours. */
  datamover?: string;
  backupStorageLocation: string;
  sourceNamespace: string;
  dataMoverConfig?: Record<string, string> | null;
  cancel?: boolean;
  /** A Go duration string such as `10m0s`. */
  operationTimeout: string;
}

/** `status.progress`. */
export interface DataMoveOperationProgress {
  totalBytes?: number;
  bytesDone?: number;
}

/** `status` of a DataUpload. */
export interface DataUploadStatus {
  phase?: Phase | '';
  path?: string;
  snapshotID?: string;
  dataMoverResult?: Record<string, string> | null;
  message?: string;
  startTimestamp?: string | null;
  completionTimestamp?: string | null;
  progress?: DataMoveOperationProgress;
  node?: string;
  nodeOS?: NodeOS;
  acceptedByNode?: string;
  acceptedTimestamp?: string | null;
  incrementalBytes?: number;
}

/** A DataUpload as stored by the API server. */
export interface DataUpload {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: DataUploadSpec;
  status?: DataUploadStatus;
}

/** The phase of a DataUpload, with an empty or missing phase read as New (Velero does the same). */
export function phaseOf(du: Pick<DataUpload, 'status'>): Phase {
  const phase = du.status?.phase;
  return phase ? phase : Phase.New;
}

/** Completed, Failed and Canceled are final: nothing moves a DataUpload out of them. */
export function isTerminalPhase(phase: Phase): boolean {
  return phase === Phase.Completed || phase === Phase.Failed || phase === Phase.Canceled;
}

/** Whether the DataUpload is in a terminal phase. */
export function isTerminal(du: Pick<DataUpload, 'status'>): boolean {
  return isTerminalPhase(phaseOf(du));
}

/** Whether the DataUpload belongs to Velero's built-in data mover, and so to this operator. */
export function isBuiltInDataMover(du: Pick<DataUpload, 'spec'>): boolean {
  return BUILT_IN_DATA_MOVERS.includes(du.spec.datamover ?? '');
}
