/**
 * Pure decisions about the backupPVC: which `backupPVC` config entry applies, how large the claim is, and which
 * volume mode it uses (spec sections 4.0 and 4.1, steps 8 and 9).
 */
import { parseQuantity, type PersistentVolumeClaim, type VolumeSnapshot } from '../api/index.js';
import type { NodeAgentConfig } from '../config/types.js';

/** The `backupPVC` entry of the source storage class, resolved to what the backupPVC and backupPod use. */
export interface ResolvedBackupPvc {
  /** Storage class of the backupPVC: the entry's `storageClass` when non-empty, else the source storage class. */
  storageClass: string;
  /** Whether the backupPVC is ReadOnlyMany and mounted read-only. */
  readOnly: boolean;
  /** Whether the backupPod runs with SELinux type `spc_t` (only ever true together with {@link readOnly}). */
  spcNoRelabeling: boolean;
  /** Annotations for the backupPVC (Velero 1.17.1+), a fresh copy; empty without an entry. */
  annotations: Record<string, string>;
  /** Secrets of the source namespace to copy into the DataUpload's namespace before the backupPVC is made. */
  secretNames: readonly string[];
  /** ConfigMaps copied like {@link secretNames}. */
  configMapNames: readonly string[];
  /** The single access mode of the backupPVC. */
  accessModes: ['ReadOnlyMany'] | ['ReadWriteOnce'];
  /** Configuration that was ignored, one sentence each, for a log line or an Event. */
  warnings: string[];
}

/** `spec.volumeMode` of a PVC. */
export type VolumeMode = 'Filesystem' | 'Block';

/**
 * Resolves the `backupPVC` entry keyed by the **source** storage class (`spec.csiSnapshot.storageClass`), never by
 * the final one (checklist item 19).
 *
 * - No entry: the source class, ReadWriteOnce, no relabeling opt-out, no annotations.
 * - `storageClass` replaces the class when non-empty; `""` means the source class.
 * - `readOnly` gives ReadOnlyMany.
 * - `spcNoRelabeling` only applies with `readOnly`; otherwise it is dropped with a warning, as in Velero.
 */
export function resolveBackupPvcConfig(
  sourceStorageClass: string,
  backupPVC: NodeAgentConfig['backupPVC'],
): ResolvedBackupPvc {
  // Object.hasOwn: a storage class named "constructor" must not find Object.prototype members.
  const entry =
    backupPVC !== undefined && Object.hasOwn(backupPVC, sourceStorageClass) ? backupPVC[sourceStorageClass] : undefined;
  const readOnly = entry?.readOnly === true;
  const wantsNoRelabeling = entry?.spcNoRelabeling === true;
  const warnings: string[] = [];
  if (wantsNoRelabeling && !readOnly) {
    warnings.push(
      `ignoring backupPVC["${sourceStorageClass}"].spcNoRelabeling: it only applies together with readOnly: true`,
    );
  }
  return {
    storageClass: entry?.storageClass ? entry.storageClass : sourceStorageClass,
    readOnly,
    spcNoRelabeling: wantsNoRelabeling && readOnly,
    annotations: { ...(entry?.annotations ?? {}) },
    secretNames: entry?.secretNames ?? [],
    configMapNames: entry?.configMapNames ?? [],
    accessModes: readOnly ? ['ReadOnlyMany'] : ['ReadWriteOnce'],
    warnings,
  };
}

/**
 * The storage request of the backupPVC: the snapshot's `status.restoreSize` when it is a positive quantity (a
 * quantity string is kept as written, a number of bytes, as a VolumeSnapshotContent holds it, is written the way
 * the snapshot controller writes it into the VolumeSnapshot: see {@link bytesAsQuantity}), otherwise the source PVC's
 * `spec.resources.requests.storage`, with a warning like Velero's.
 * When neither is available the size is `""` with a warning; the caller must not create a PVC from it.
 */
export function backupPvcSize(
  sourceVs: VolumeSnapshot,
  sourcePvc: PersistentVolumeClaim,
): { size: string; warning?: string } {
  const restoreSize = sourceVs.status?.restoreSize;
  if (restoreSize !== undefined && (parseQuantity(restoreSize) ?? 0) > 0) {
    return { size: typeof restoreSize === 'number' ? bytesAsQuantity(restoreSize) : restoreSize.trim() };
  }
  const shown = restoreSize === undefined ? 'none' : JSON.stringify(restoreSize);
  const requested = sourcePvc.spec?.resources?.requests?.['storage'];
  if (requested === undefined || requested === '') {
    return {
      size: '',
      warning: `the snapshot has no valid restore size (${shown}) and the source PVC requests no storage`,
    };
  }
  return {
    size: requested,
    warning: `the snapshot has no valid restore size (${shown}), using the source volume's size ${requested}`,
  };
}

const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'] as const;

/**
 * A number of bytes as the canonical binary-SI quantity Kubernetes prints for it: `1073741824` is `1Gi`, `1536` stays
 * `1536`, `1610612736` is `1536Mi`. This is the VolumeSnapshot's `status.restoreSize` the external-snapshotter writes
 * from its content's byte count (`resource.NewQuantity(bytes, BinarySI)`), which Velero reads, so the backupPVC asks
 * for the same text whichever of the two the size came from.
 */
export function bytesAsQuantity(bytes: number): string {
  if (!Number.isSafeInteger(bytes)) return String(bytes);
  let value = bytes;
  let exponent = 0;
  while (Math.abs(value) >= 1024 && value % 1024 === 0 && exponent < BINARY_SUFFIXES.length - 1) {
    value /= 1024;
    exponent++;
  }
  return `${value}${BINARY_SUFFIXES[exponent]}`;
}

/** The volume mode of the source PVC, which the backupPVC copies; a missing mode means Filesystem. */
export function volumeModeOf(sourcePvc: PersistentVolumeClaim): VolumeMode {
  return sourcePvc.spec?.volumeMode === 'Block' ? 'Block' : 'Filesystem';
}
