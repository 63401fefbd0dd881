/**
 * Copies of the Secrets and ConfigMaps a backupPVC's CSI driver needs in the DataUpload's namespace
 * (`backupPVC.<class>.secretNames` / `configMapNames`, Velero 1.18.3). Pure builders and predicates.
 *
 * A copy keeps its source's name (the driver finds it by name in the claim's namespace), carries Velero's label
 * `velero.io/backup-pvc-secret=<UID of the DataUpload that made it>`, and one `used-by.dataupload-operator.velero.io/
 * <UID>` label per DataUpload that uses it, so concurrent DataUploads share one copy and a restart finds them.
 */
import type { ConfigMap, KubeObject, Secret } from '../api/kube.js';
import { COPY_USER_LABEL_PREFIX, LABEL_BACKUP_PVC_SECRET } from '../api/names.js';

/** The two kinds that can be copied. */
export type CopyKind = 'Secret' | 'ConfigMap';

/** The user label of a DataUpload. */
export function copyUserLabel(duUid: string): string {
  return `${COPY_USER_LABEL_PREFIX}${duUid}`;
}

/** The DataUpload UIDs that use a copy. */
export function copyUsers(obj: KubeObject): string[] {
  return Object.keys(obj.metadata.labels ?? {})
    .filter((k) => k.startsWith(COPY_USER_LABEL_PREFIX))
    .map((k) => k.slice(COPY_USER_LABEL_PREFIX.length));
}

/** Whether an object in the DataUpload's namespace is a copy made for a DataUpload (by us or by Velero). */
export function isBackupPvcCopy(obj: KubeObject): boolean {
  return obj.metadata.labels?.[LABEL_BACKUP_PVC_SECRET] !== undefined;
}

/** The copy of `source` in `namespace` for the DataUpload `duUid`. */
export function buildCopy(kind: CopyKind, source: Secret | ConfigMap, namespace: string, duUid: string): KubeObject {
  const metadata = {
    name: source.metadata.name,
    namespace,
    labels: { [LABEL_BACKUP_PVC_SECRET]: duUid, [copyUserLabel(duUid)]: 'true' },
  };
  if (kind === 'Secret') {
    const s = source as Secret;
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata,
      ...(s.type ? { type: s.type } : {}),
      ...(s.data ? { data: { ...s.data } } : {}),
    };
  }
  const c = source as ConfigMap;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata,
    ...(c.data ? { data: { ...c.data } } : {}),
    ...(c.binaryData ? { binaryData: { ...c.binaryData } } : {}),
  };
}

/** Whether a copy holds the same content as its source (type and data; for ConfigMaps also binaryData). */
export function sameContent(kind: CopyKind, a: Secret | ConfigMap, b: Secret | ConfigMap): boolean {
  if (kind === 'Secret' && ((a as Secret).type ?? 'Opaque') !== ((b as Secret).type ?? 'Opaque')) return false;
  return sameRecord(a.data, b.data) && sameRecord((a as ConfigMap).binaryData, (b as ConfigMap).binaryData);
}

function sameRecord(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => b?.[k] === a?.[k]);
}

/** Drops the content of a Secret or ConfigMap: what the operator keeps in memory about a copy. */
export function withoutContent<T extends KubeObject>(obj: T): T {
  const {
    data: _data,
    binaryData: _binary,
    stringData: _string,
    ...rest
  } = obj as T & {
    data?: unknown;
    binaryData?: unknown;
    stringData?: unknown;
  };
  return rest as T;
}
