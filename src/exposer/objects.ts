/**
 * Small helpers shared by the exposer builders: the owner reference every DataUpload child carries, and copies that
 * keep built objects from sharing structure with their (frozen, cached) inputs.
 */
import { DATAUPLOAD_API_VERSION, DATAUPLOAD_KIND, type DataUpload, type OwnerReference } from '../api/index.js';

/**
 * The controller owner reference to a DataUpload, as Velero writes it on the backupPVC and backupPod.
 * `blockOwnerDeletion` stays unset, like Velero: setting it would need `update` on `datauploads/finalizers`.
 */
export function ownerReferenceTo(du: DataUpload): OwnerReference {
  return {
    apiVersion: DATAUPLOAD_API_VERSION,
    kind: DATAUPLOAD_KIND,
    name: du.metadata.name ?? '',
    uid: du.metadata.uid ?? '',
    controller: true,
  };
}

/**
 * A deep copy of `value`. Builders copy whatever they take from their inputs, so a caller that edits a built object
 * can never reach into an informer cache or the frozen config (and frozen inputs give unfrozen outputs).
 */
export function copyOf<T>(value: T): T {
  return structuredClone(value);
}

/** A copy of a string map, or `undefined` when the map is absent or empty (so no `{}` appears in built objects). */
export function copyNonEmpty(map: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
  if (map === undefined || Object.keys(map).length === 0) return undefined;
  return { ...map };
}
