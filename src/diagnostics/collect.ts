/**
 * Reads, live from the API server, everything the expose report looks at. Used by the `diagnose` command; the
 * controller uses its caches for the objects and only {@link listWarningEvents} for the Events.
 */
import type { DataUpload } from '../api/dataupload.js';
import type {
  CoreEvent,
  KubeObject,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/kube.js';
import { isNotFound, Resources } from '../runtime/kube-api.js';
import type { KubeApi, ResourceRef } from '../runtime/kube-api.js';
import type { ExposeObservation } from './expose.js';

/** An object that could not be read, for the report. */
export interface ReadError {
  object: string;
  message: string;
}

/** The Warning Events of the given namespaces (the report matches them to objects by uid). */
export async function listWarningEvents(
  api: KubeApi,
  namespaces: Iterable<string>,
): Promise<{ events: CoreEvent[]; readErrors: ReadError[] }> {
  const events: CoreEvent[] = [];
  const readErrors: ReadError[] = [];
  for (const namespace of new Set(namespaces)) {
    try {
      const list = await api.list<CoreEvent>(Resources.coreEvents, {
        namespace,
        fieldSelector: 'type=Warning',
        limit: 500,
      });
      events.push(...list.items);
    } catch (err) {
      readErrors.push({ object: `events in namespace ${namespace}`, message: errorText(err) });
    }
  }
  return { events, readErrors };
}

/** The namespaces whose Events concern the objects: the DataUpload's, the source's, and `default` for cluster-scoped ones. */
export function eventNamespaces(du: DataUpload, clusterScoped: boolean): string[] {
  const namespaces = [du.metadata.namespace!, du.spec.sourceNamespace];
  if (clusterScoped) namespaces.push('default');
  return namespaces.filter((ns) => !!ns);
}

/** Reads the backup (and remaining source) objects of a DataUpload and their Warning Events. */
export async function collectExposeObservation(api: KubeApi, du: DataUpload): Promise<ExposeObservation> {
  const readErrors: ReadError[] = [];
  const get = async <T extends KubeObject>(
    subject: string,
    resource: ResourceRef,
    name: string | undefined,
    namespace?: string,
  ) => {
    if (!name) return undefined;
    try {
      return await api.get<T>(resource, name, namespace);
    } catch (err) {
      if (!isNotFound(err)) readErrors.push({ object: subject, message: errorText(err) });
      return undefined;
    }
  };
  const ns = du.metadata.namespace!;
  const name = du.metadata.name!;
  const pod = await get<Pod>('BackupPod', Resources.pods, name, ns);
  const pvc = await get<PersistentVolumeClaim>('BackupPVC', Resources.persistentVolumeClaims, name, ns);
  const pv = await get<PersistentVolume>('BackupPV', Resources.persistentVolumes, pvc?.spec?.volumeName);
  const backupVs = await get<VolumeSnapshot>('BackupVolumeSnapshot', Resources.volumeSnapshots, name, ns);
  const backupVsc = await get<VolumeSnapshotContent>(
    'BackupVolumeSnapshotContent',
    Resources.volumeSnapshotContents,
    name,
  );
  const sourceVs = await get<VolumeSnapshot>(
    'SourceVolumeSnapshot',
    Resources.volumeSnapshots,
    du.spec.csiSnapshot?.volumeSnapshot,
    du.spec.sourceNamespace,
  );
  const sourceVsc = await get<VolumeSnapshotContent>(
    'SourceVolumeSnapshotContent',
    Resources.volumeSnapshotContents,
    sourceVs?.status?.boundVolumeSnapshotContentName,
  );
  const warnings = await listWarningEvents(api, eventNamespaces(du, !!(pv ?? backupVsc ?? sourceVsc)));
  return {
    du,
    pod,
    pvc,
    pv,
    backupVs,
    backupVsc,
    sourceVs,
    sourceVsc,
    events: warnings.events,
    readErrors: [...readErrors, ...warnings.readErrors],
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
