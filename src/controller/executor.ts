/**
 * Performs the one action a plan decided on. Thin on purpose: all judgement lives in `plan()`. Each action is
 * exactly one API write (plus reads), remembered in the write overlay, and classified: a create that finds its object, or a delete that
 * finds nothing, has already happened; a conflict means our copy of the DataUpload was stale.
 */
import type { DataUpload } from '../api/dataupload.js';
import type { ConfigMap, KubeObject, Secret } from '../api/kube.js';
import {
  DATAUPLOAD_API_VERSION,
  DATAUPLOAD_KIND,
  LABEL_BACKUP_PVC_SECRET,
  LABEL_EXPOSE_ON_GOING,
} from '../api/names.js';
import { buildCopy, copyUserLabel, copyUsers, isBackupPvcCopy, sameContent, withoutContent } from '../exposer/index.js';
import type { CopyKind } from '../exposer/index.js';
import { diagnoseExpose, eventNamespaces, listWarningEvents } from '../diagnostics/index.js';
import type { ExposeReport } from '../diagnostics/index.js';
import { isAlreadyExists, isConflict, isNotFound, Resources } from '../runtime/kube-api.js';
import type { KubeApi, ResourceRef } from '../runtime/kube-api.js';
import { CopyCollisionError, StaleCopyError } from './errors.js';
import type { WriteOverlay } from './overlay.js';
import { rfc3339 } from './plan.js';
import type { Action, EventIntent, Observed } from './types.js';

/** A reference to the object an Event is about. */
export interface EventObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

/** Where Events go; `record` never throws and never blocks. */
export interface EventSink {
  record(event: {
    regarding: EventObjectRef;
    related?: EventObjectRef;
    type: 'Normal' | 'Warning';
    reason: string;
    action: string;
    note: string;
    /** When it happened, if earlier than now (ms since the epoch). */
    at?: number;
  }): void;
}

/** One Event as an {@link EventSink} receives it. */
export type EventRecord = Parameters<EventSink['record']>[0];

/** Raised when a DataUpload write hit a newer version; the executor has already refreshed its copy. */
export class StaleDataUploadError extends Error {
  constructor(name: string) {
    super(`DataUpload ${name} changed since it was read; planning again`);
    this.name = 'StaleDataUploadError';
  }
}

/** Collaborators of {@link Executor}. */
export interface ExecutorDeps {
  api: KubeApi;
  overlay: WriteOverlay;
  events: EventSink;
  now: () => number;
  /** Called with the report whenever diagnostics are recorded (logging). */
  onDiagnosed?: (du: DataUpload, report: ExposeReport) => void;
}

/** Executes actions against the API server. */
export class Executor {
  constructor(private readonly deps: ExecutorDeps) {}

  /** Performs `action` for the DataUpload in `observed`. Rejects on errors worth a backoff. */
  async execute(observed: Observed, action: Action): Promise<void> {
    const du = observed.du;
    switch (action.type) {
      case 'patchDataUpload':
        await this.patchDataUpload(du, action.patch);
        if (action.event) this.recordOn(du, action.event);
        return;
      case 'create':
        await this.create(du, action.resource, action.object);
        if (action.event) this.recordOn(du, action.event);
        return;
      case 'patch':
        await this.patch(du, action.resource, action.name, action.namespace, action.patch);
        return;
      case 'delete':
        await this.delete(du, action);
        return;
      case 'finish':
        await this.finish(observed, action);
        return;
      case 'copy':
        await this.copy(action);
        return;
      case 'releaseCopy':
        await this.releaseCopy(action);
        return;
    }
  }

  /**
   * Makes the copy, or joins an existing one of the same content by adding this DataUpload's user label. The
   * source is read live (Secrets are never cached); only the copy's metadata is remembered.
   */
  private async copy(action: Extract<Action, { type: 'copy' }>): Promise<void> {
    const { api, overlay } = this.deps;
    const ref = copyResource(action.kind);
    const source = await api.get<Secret | ConfigMap>(ref, action.name, action.sourceNamespace);
    let existing: (Secret | ConfigMap) | undefined;
    try {
      existing = await api.get<Secret | ConfigMap>(ref, action.name, action.namespace);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const what = `${action.kind} ${action.namespace}/${action.name}`;
    if (!existing) {
      try {
        const created = await api.create(ref, buildCopy(action.kind, source, action.namespace, action.duUid), {
          namespace: action.namespace,
        });
        overlay.noteWritten(ref, withoutContent(created));
        return;
      } catch (err) {
        if (isAlreadyExists(err)) throw new StaleCopyError(what);
        throw err;
      }
    }
    if (existing.metadata.deletionTimestamp) throw new StaleCopyError(`${what} (being deleted)`);
    if (!isBackupPvcCopy(existing)) {
      throw new CopyCollisionError(
        `${what} already exists and is not a copy made for a DataUpload (no label ${LABEL_BACKUP_PVC_SECRET}); ` +
          `the backup PVC needs that name for a copy of ${action.sourceNamespace}/${action.name}`,
      );
    }
    if (!sameContent(action.kind, existing, source)) {
      throw new CopyCollisionError(
        `${what} is a copy with other content than ${action.sourceNamespace}/${action.name} ` +
          `(a ${action.kind} of the same name from another namespace is in use by DataUploads ${copyUsers(existing).join(', ') || 'of Velero'})`,
      );
    }
    if (copyUsers(existing).includes(action.duUid)) {
      overlay.noteWritten(ref, withoutContent(existing));
      return;
    }
    try {
      const patched = await api.patch<Secret | ConfigMap>(
        ref,
        action.name,
        {
          metadata: {
            labels: { [copyUserLabel(action.duUid)]: 'true' },
            resourceVersion: existing.metadata.resourceVersion,
          },
        },
        'merge',
        { namespace: action.namespace },
      );
      overlay.noteWritten(ref, withoutContent(patched));
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) throw new StaleCopyError(what);
      throw err;
    }
  }

  /** Deletes the copy if this DataUpload is its last user, else removes its user label; both guarded. */
  private async releaseCopy(action: Extract<Action, { type: 'releaseCopy' }>): Promise<void> {
    const { api, overlay } = this.deps;
    const ref = copyResource(action.kind);
    const what = `${action.kind} ${action.namespace}/${action.name}`;
    try {
      if (action.last) {
        await api.delete(ref, action.name, {
          namespace: action.namespace,
          preconditions: { uid: action.uid, resourceVersion: action.resourceVersion },
        });
        overlay.noteDeleted(ref, action.namespace, action.name);
      } else {
        const patched = await api.patch<Secret | ConfigMap>(
          ref,
          action.name,
          { metadata: { labels: { [copyUserLabel(action.duUid)]: null }, resourceVersion: action.resourceVersion } },
          'merge',
          { namespace: action.namespace },
        );
        overlay.noteWritten(ref, withoutContent(patched));
      }
    } catch (err) {
      if (isNotFound(err)) {
        overlay.noteDeleted(ref, action.namespace, action.name);
        return;
      }
      // Another DataUpload joined or left meanwhile: decide again from its current users.
      if (isConflict(err)) {
        overlay.forget(ref, action.namespace, action.name);
        throw new StaleCopyError(what);
      }
      throw err;
    }
  }

  private async finish(observed: Observed, action: Extract<Action, { type: 'finish' }>): Promise<void> {
    const du = observed.du;
    let message = action.message;
    if (action.diagnose) {
      const report = await this.diagnose(observed);
      if (action.diagnose.appendCause && report.cause) message = `${message}: ${report.cause}`;
    }
    const now = rfc3339(this.deps.now());
    const status: Record<string, unknown> = {
      phase: action.phase,
      completionTimestamp: now,
      startTimestamp: du.status?.startTimestamp ?? now,
    };
    if (message) status.message = message;
    const labels =
      du.metadata.labels?.[LABEL_EXPOSE_ON_GOING] !== undefined ? { [LABEL_EXPOSE_ON_GOING]: null } : undefined;
    await this.patchDataUpload(du, { status, ...(labels ? { metadata: { labels } } : {}) });
    const note = action.phase === 'Failed' && message ? message : action.event.note;
    this.recordOn(du, { ...action.event, note });
  }

  /**
   * Records one Event per backup object describing its state, before anything is cleaned up, so the Events
   * outlive the objects. Warning Events of those objects are read live: the operator does not cache Events.
   */
  private async diagnose(observed: Observed): Promise<ExposeReport> {
    const du = observed.du;
    const { events, readErrors } = await this.warningEvents(observed);
    const report = diagnoseExpose({
      du,
      pod: observed.backupPod,
      pvc: observed.backupPvc,
      pv: observed.backupPv,
      backupVs: observed.backupVs,
      backupVsc: observed.backupVsc,
      sourceVs: observed.sourceVs,
      sourceVsc: observed.sourceVsc,
      events,
      readErrors,
    });
    for (const finding of report.findings) {
      this.deps.events.record({
        regarding: refOf(du),
        related: finding.regarding,
        type: finding.healthy ? 'Normal' : 'Warning',
        reason: finding.reason,
        action: 'Diagnose',
        note: finding.message,
      });
    }
    this.deps.onDiagnosed?.(du, report);
    return report;
  }

  private warningEvents(observed: Observed): ReturnType<typeof listWarningEvents> {
    const clusterScoped = !!(observed.backupPv ?? observed.backupVsc ?? observed.sourceVsc);
    return listWarningEvents(this.deps.api, eventNamespaces(observed.du, clusterScoped));
  }

  private async patchDataUpload(du: DataUpload, patch: object): Promise<void> {
    const name = du.metadata.name!;
    const namespace = du.metadata.namespace!;
    const body = withResourceVersion(patch, du.metadata.resourceVersion);
    try {
      await this.deps.overlay.track(Resources.dataUploads, namespace, name, () =>
        this.deps.api.patch<DataUpload>(Resources.dataUploads, name, body, 'merge', { namespace }),
      );
    } catch (err) {
      if (!isConflict(err)) throw err;
      await this.refresh(namespace, name);
      throw new StaleDataUploadError(`${namespace}/${name}`);
    }
  }

  /** After a conflict, read the DataUpload live so the next plan starts from the server's version. */
  private async refresh(namespace: string, name: string): Promise<void> {
    try {
      await this.deps.overlay.track(Resources.dataUploads, namespace, name, () =>
        this.deps.api.get<DataUpload>(Resources.dataUploads, name, namespace),
      );
    } catch (err) {
      if (isNotFound(err)) this.deps.overlay.noteDeleted(Resources.dataUploads, namespace, name);
      else this.deps.overlay.forget(Resources.dataUploads, namespace, name);
    }
  }

  private async create(du: DataUpload, resource: ResourceRef, object: KubeObject): Promise<void> {
    const namespace = object.metadata.namespace;
    const name = object.metadata.name!;
    const { api, overlay } = this.deps;
    try {
      await overlay.track(resource, namespace, name, () => api.create(resource, object, { namespace }));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // Our earlier attempt landed but its answer was lost, or the cache lags: adopt what is there.
      await overlay.track(resource, namespace, name, () => api.get(resource, name, namespace));
    }
  }

  private async patch(
    du: DataUpload,
    resource: ResourceRef,
    name: string,
    namespace: string | undefined,
    patch: unknown,
  ): Promise<void> {
    try {
      await this.deps.overlay.track(resource, namespace, name, () =>
        this.deps.api.patch(resource, name, patch, 'merge', { namespace }),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.deps.overlay.noteDeleted(resource, namespace, name);
    }
  }

  private async delete(du: DataUpload, action: Extract<Action, { type: 'delete' }>): Promise<void> {
    const { resource, name, namespace, uid } = action;
    try {
      await this.deps.api.delete(resource, name, {
        namespace,
        propagationPolicy: 'Background',
        ...(uid ? { preconditions: { uid } } : {}),
      });
    } catch (err) {
      // NotFound: already gone. Conflict on the uid precondition: the name now holds someone else's object.
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
    this.deps.overlay.noteDeleted(resource, namespace, name);
  }

  private recordOn(du: DataUpload, event: EventIntent): void {
    this.deps.events.record({ regarding: refOf(du), ...event });
  }
}

/** The resource of a copy kind. */
export function copyResource(kind: CopyKind): ResourceRef {
  return kind === 'Secret' ? Resources.secrets : Resources.configMaps;
}

/** The Event reference of a DataUpload. */
export function refOf(du: DataUpload): EventObjectRef {
  return {
    apiVersion: DATAUPLOAD_API_VERSION,
    kind: DATAUPLOAD_KIND,
    name: du.metadata.name!,
    namespace: du.metadata.namespace,
    uid: du.metadata.uid,
  };
}

function withResourceVersion(patch: object, resourceVersion: string | undefined): object {
  const p = patch as { metadata?: object };
  return { ...p, metadata: { ...(p.metadata ?? {}), resourceVersion } };
}
