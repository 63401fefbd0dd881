/**
 * Secondary indexes of the controller's watch caches: lookups that would otherwise scan a whole cache on every
 * reconcile or cache event.
 */
import type { VolumeSnapshotContent } from '../api/kube.js';

/** Index names. */
export const Index = Object.freeze({
  /** VolumeSnapshotContents by the storage snapshot they refer to (`status` and `spec.source` handles). */
  snapshotHandle: 'snapshotHandle',
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
