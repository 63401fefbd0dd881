/**
 * Validation of a DataUpload beyond what the CRD schema enforces. Velero dereferences a nil
 * `spec.csiSnapshot` and panics; we fail the DataUpload with a message that names the field instead.
 */
import type { DataUpload } from '../api/dataupload.js';
import { parseGoDuration } from '../api/duration.js';
import { LABEL_DATA_UPLOAD, SNAPSHOT_TYPE_CSI } from '../api/names.js';

/** The longest label value Kubernetes accepts. */
const MAX_LABEL_VALUE = 63;

/** Why a DataUpload cannot be processed, naming the field; `undefined` when the spec is usable. */
export function invalidSpecReason(du: DataUpload): string | undefined {
  const name = du.metadata.name ?? '';
  if (name.length > MAX_LABEL_VALUE) {
    // Velero finds it out when the pod create comes back 422, after re-homing the snapshot; say so before that.
    return (
      `metadata.name: ${name.length} characters is too long to expose; the backup pod is labelled ` +
      `${LABEL_DATA_UPLOAD}=<name>, and a label value can be at most ${MAX_LABEL_VALUE} characters`
    );
  }
  const spec = du.spec;
  if (spec.snapshotType !== SNAPSHOT_TYPE_CSI) {
    return `spec.snapshotType: unsupported snapshot type ${JSON.stringify(spec.snapshotType)}, only "CSI" is supported`;
  }
  if (!spec.csiSnapshot) return 'spec.csiSnapshot: required when spec.snapshotType is "CSI"';
  if (!spec.csiSnapshot.volumeSnapshot) return 'spec.csiSnapshot.volumeSnapshot: must name a VolumeSnapshot';
  if (!spec.sourceNamespace) return 'spec.sourceNamespace: must not be empty';
  if (!spec.sourcePVC) return 'spec.sourcePVC: must not be empty';
  if (!validTimeout(spec.operationTimeout ?? '')) {
    return `spec.operationTimeout: ${JSON.stringify(spec.operationTimeout)} is not a Go duration such as "10m0s"`;
  }
  return undefined;
}

/** Durations already checked (every DataUpload of a backup carries the same one; checked on every pass). */
const checkedTimeouts = new Map<string, boolean>();

function validTimeout(text: string): boolean {
  let valid = checkedTimeouts.get(text);
  if (valid === undefined) {
    const ms = parseGoDuration(text);
    valid = ms !== undefined && ms >= 0;
    if (checkedTimeouts.size >= 256) checkedTimeouts.clear();
    checkedTimeouts.set(text, valid);
  }
  return valid;
}
