/**
 * The vocabulary between the controller's pure `plan()` and its executor: what was observed, what to do next.
 */
import type { DataUpload, Phase } from '../api/dataupload.js';
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
import type { NodeAgentConfig } from '../config/types.js';
import type { BackupPodTemplate, CopyKind } from '../exposer/index.js';
import type { ResourceRef } from '../runtime/kube-api.js';

/**
 * Everything `plan()` needs to know about one DataUpload, read from the watch caches (merged with this process's
 * own recent writes). Objects are read-only snapshots.
 */
export interface Observed {
  du: DataUpload;
  /** `spec.sourceNamespace/spec.sourcePVC`. */
  sourcePvc?: PersistentVolumeClaim;
  /** The PV bound to the source PVC (only its claim and node affinity are kept). */
  sourcePv?: PersistentVolume;
  /** The source storage class, `spec.csiSnapshot.storageClass`. */
  sourceStorageClass?: StorageClass;
  /** `spec.sourceNamespace/spec.csiSnapshot.volumeSnapshot`; gone once re-homed. */
  sourceVs?: VolumeSnapshot;
  /** The content bound to the source snapshot, found by the source snapshot's status or by the snapshot handle. */
  sourceVsc?: VolumeSnapshotContent;
  /** Backup objects, all named after the DataUpload. */
  backupVs?: VolumeSnapshot;
  backupVsc?: VolumeSnapshotContent;
  backupPvc?: PersistentVolumeClaim;
  /** The storage class the backup PVC names, when this process knows it. */
  backupStorageClass?: StorageClass;
  /** The PV bound to the backup PVC. */
  backupPv?: PersistentVolume;
  backupPod?: Pod;
  /** The node named by the source PVC's `volume.kubernetes.io/selected-node` annotation, if any. */
  selectedNode?: Node;
  /** Number of nodes per `kubernetes.io/os` label value. */
  nodesByOs: Readonly<Record<string, number>>;
  /** Other DataUploads that currently carry `velero.io/expose-on-going=true`. */
  exposeOnGoing: number;
  /** Other DataUploads being exposed (Accepted), counted for a New one when the expose window is limited. */
  exposing?: number;
  /** Writes the API server refused for good earlier in this reconcile pass (see `errors.ts`). */
  refused?: readonly Refusal[];
  /**
   * Copies (Secrets, ConfigMaps) in the DataUpload's namespace that this DataUpload's backupPVC config names or
   * that carry its user label. Empty when no copies are configured.
   */
  copies?: readonly ObservedCopy[];
}

/** A Secret or ConfigMap copy as the operator caches it (without its content). */
export interface ObservedCopy {
  kind: CopyKind;
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  /** UIDs of the DataUploads using it (their user labels). */
  users: readonly string[];
  /** Whether it carries `velero.io/backup-pvc-secret`, i.e. it was made as a copy and not by someone else. */
  isCopy: boolean;
  deleting: boolean;
}

/** A write to a child object that the API server refused for a reason retrying will not change. */
export interface Refusal {
  verb: 'create' | 'patch' | 'delete' | 'copy';
  resource: ResourceRef;
  name: string;
  namespace?: string;
  /** HTTP status and Status reason, e.g. 403 Forbidden, 422 Invalid. */
  code: number;
  reason: string;
  /** The API server's own words. */
  message: string;
  /** What the user can do about it, when we know (e.g. the overlay that grants a missing permission). */
  hint?: string;
}

/** What the operator was started with; constant for the life of the process. */
export interface PlanContext {
  /** Milliseconds since the epoch. */
  now: number;
  /** Written to `status.acceptedByNode`. */
  nodeName: string;
  prepareTimeoutMs: number;
  config: NodeAgentConfig;
  podTemplate: BackupPodTemplate;
  securityContext: 'root' | 'restricted';
  /** At most this many DataUploads Accepted and not yet Prepared at once; 0 or absent: no limit. */
  maxConcurrentExposes?: number;
  /**
   * Why copies of a kind cannot be made (the operator's RBAC lacks the opt-in permissions), found at boot; a
   * DataUpload whose config asks for such copies fails at once with this message.
   */
  copyProblems?: Partial<Record<CopyKind, string>>;
}

/** An Event to record about the DataUpload. */
export interface EventIntent {
  type: 'Normal' | 'Warning';
  reason: string;
  /** events.k8s.io `action`: what the operator did. */
  action: string;
  note: string;
}

/** A JSON merge patch of a DataUpload (`null` removes a key). The executor adds the resourceVersion guard. */
export interface DataUploadPatch {
  metadata?: {
    labels?: Record<string, string | null>;
    annotations?: Record<string, string | null>;
    finalizers?: string[];
  };
  spec?: { cancel?: boolean };
  status?: Record<string, unknown>;
}

/** One write. Every action is idempotent when replayed against the same observed state. */
export type Action =
  | { type: 'patchDataUpload'; patch: DataUploadPatch; phase?: Phase; event?: EventIntent }
  | { type: 'create'; resource: ResourceRef; object: KubeObject; event?: EventIntent }
  | { type: 'patch'; resource: ResourceRef; name: string; namespace?: string; patch: unknown }
  | { type: 'delete'; resource: ResourceRef; name: string; namespace?: string; uid?: string }
  /** Make (or join) the copy of a source Secret/ConfigMap in the DataUpload's namespace. */
  | { type: 'copy'; kind: CopyKind; name: string; sourceNamespace: string; namespace: string; duUid: string }
  /**
   * Stop using a copy: delete it when this DataUpload is its last user, else drop this DataUpload's user label.
   * Guarded by the copy's uid and resourceVersion, so a user that joined meanwhile is never left without it.
   */
  | {
      type: 'releaseCopy';
      kind: CopyKind;
      name: string;
      namespace: string;
      uid: string;
      resourceVersion: string;
      duUid: string;
      last: boolean;
    }
  | {
      /** End the DataUpload in a terminal phase; when `diagnose` is set, first record the expose diagnostics. */
      type: 'finish';
      phase: 'Failed' | 'Canceled';
      message: string;
      event: EventIntent;
      diagnose?: {
        /** Append the report's one-line cause to `message` (`<message>: <cause>`). */
        appendCause: boolean;
      };
    };

/** The outcome of planning: one action to take now, or why there is nothing to do (yet). */
export type Decision =
  | { kind: 'act'; action: Action; reason: string; message: string }
  | { kind: 'wait'; reason: string; message: string; requeueAfterMs?: number }
  | { kind: 'done'; reason: string; message: string };
