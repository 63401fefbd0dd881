/**
 * `plan(observed, context)`: the DataUpload controller's decisions, as a pure function.
 *
 * Every pass re-derives where a DataUpload stands from the objects that exist, so an operator restart at any
 * point resumes correctly, and nothing waits: a wait is a `requeueAfterMs` computed from stored timestamps.
 * Phases follow Velero: New → Accepted → Prepared, with Canceled and Failed from any non-terminal phase;
 * InProgress and Canceling belong to the data mover.
 */
import type { V1NodeSelector } from '@kubernetes/client-node';
import { isBuiltInDataMover, isTerminalPhase, Phase, phaseOf } from '../api/dataupload.js';
import type { DataUpload } from '../api/dataupload.js';
import type { PersistentVolume, Pod, VolumeSnapshot, VolumeSnapshotContent } from '../api/kube.js';
import {
  ACCEPTOR_NAME,
  ANNOTATION_ACCEPTED_BY,
  DATAUPLOAD_FINALIZER,
  LABEL_EXPOSE_ON_GOING,
  LABEL_NODE_OS,
} from '../api/names.js';
import {
  backupPvcSize,
  buildBackupPod,
  buildBackupPvc,
  buildBackupVolumeSnapshot,
  buildBackupVolumeSnapshotContent,
  resolveBackupPvcConfig,
  volumeModeOf,
} from '../exposer/index.js';
import type { CopyKind } from '../exposer/index.js';
import { parseQuantity } from '../api/quantity.js';
import { Resources } from '../runtime/kube-api.js';
import type { ResourceRef } from '../runtime/kube-api.js';
import { describeRefusal, isRefusedAction } from './errors.js';
import { snapshotHandlesOf } from './indexes.js';
import type { Action, Decision, EventIntent, Observed, PlanContext } from './types.js';
import { invalidSpecReason } from './validate.js';

/** Why a New DataUpload waits for a slot of `--max-concurrent-exposes`. */
export const EXPOSE_WINDOW_FULL = 'ExposeWindowFull';
/**
 * Requeue while the expose window is full. A DataUpload that is Prepared or ends wakes a waiter at once; this
 * catches the slots freed by time (a DataUpload exposing for longer than a minute stops holding one).
 */
export const EXPOSE_WINDOW_RETRY_MS = 10_000;
/** Requeue delay while the prepare queue is full (Velero's value). */
export const PREPARE_QUEUE_RETRY_MS = 5_000;
/** How long a backup pod waits at most for its PVC to be bound (see `bindingHeadStart`). */
export const BIND_HEAD_START_MS = 5_000;
/** Safety requeue while waiting for an object to disappear; watch events normally come first. */
export const DELETION_RETRY_MS = 2_000;
/** How long a terminal DataUpload keeps its finalizer while its children are still being deleted. */
export const CLEANUP_GRACE_MS = 5 * 60_000;
/** Message Velero writes when a live DataUpload is deleted. */
export const DELETED_MESSAGE = 'Cancel dataupload because it is being deleted';
/** Message prefix Velero writes on a prepare timeout. */
export const TIMEOUT_MESSAGE = 'timeout on preparing data upload';

/** Decides the next step for one DataUpload. */
export function plan(o: Observed, ctx: PlanContext): Decision {
  const du = o.du;
  if (!isBuiltInDataMover(du)) {
    return done('NotBuiltInDataMover', `spec.datamover is ${JSON.stringify(du.spec.datamover)}, not ours`);
  }
  const phase = phaseOf(du);
  if (isTerminalPhase(phase)) return planTerminal(o, ctx);
  if (!hasFinalizer(du)) {
    // A New DataUpload that would only wait for a slot gets its finalizer when its turn comes, so a burst does not
    // start with a finalizer write for every DataUpload. A cancel, an invalid spec or a deletion go on at once.
    const slot = phase === Phase.New && !du.spec.cancel && !du.metadata.deletionTimestamp && !invalidSpecReason(du);
    const gate = slot ? acceptGate(o, ctx) : undefined;
    if (gate) return gate;
    return act(
      {
        type: 'patchDataUpload',
        patch: { metadata: { finalizers: [...(du.metadata.finalizers ?? []), DATAUPLOAD_FINALIZER] } },
      },
      'AddFinalizer',
      `adding finalizer ${DATAUPLOAD_FINALIZER}`,
    );
  }
  if (du.metadata.deletionTimestamp && !du.spec.cancel) {
    return act(
      { type: 'patchDataUpload', patch: { spec: { cancel: true }, status: { message: DELETED_MESSAGE } } },
      'CancelOnDelete',
      DELETED_MESSAGE,
    );
  }
  if ((phase === Phase.Accepted || phase === Phase.Prepared) && !acceptedByUs(du)) {
    return done(
      'AcceptedByOther',
      `accepted by ${du.status?.acceptedByNode ?? 'another controller'}, which exposes it`,
    );
  }
  switch (phase) {
    case Phase.New:
      return planNew(o, ctx);
    case Phase.Accepted:
      return planAccepted(o, ctx);
    case Phase.Prepared:
      return du.spec.cancel
        ? cancel(du, 'canceled while Prepared')
        : done('HandedOver', 'Prepared: the data mover takes it from here');
    default:
      return done('HandedOver', `phase ${phase} belongs to the data mover`);
  }
}

/** Why a New DataUpload must wait before it is accepted: the prepare queue or the expose window is full. */
function acceptGate(o: Observed, ctx: PlanContext): Decision | undefined {
  const queueLength = ctx.config.loadConcurrency?.prepareQueueLength ?? 0;
  if (queueLength > 0 && o.exposeOnGoing >= queueLength) {
    return wait(
      'PrepareQueueFull',
      `${o.exposeOnGoing} DataUploads are being prepared, loadConcurrency.prepareQueueLength is ${queueLength}`,
      PREPARE_QUEUE_RETRY_MS,
    );
  }
  const window = ctx.maxConcurrentExposes ?? 0;
  if (window > 0 && (o.exposing ?? 0) >= window) {
    // Woken by the controller when an exposing DataUpload is Prepared or ends (no polling); the requeue is a backstop.
    return wait(
      EXPOSE_WINDOW_FULL,
      `${o.exposing} DataUploads are being exposed, --max-concurrent-exposes is ${window}`,
      EXPOSE_WINDOW_RETRY_MS,
    );
  }
  return undefined;
}

function planNew(o: Observed, ctx: PlanContext): Decision {
  const du = o.du;
  if (du.spec.cancel) return cancel(du, 'canceled before it was accepted');
  const invalid = invalidSpecReason(du);
  if (invalid) return fail(invalid, warning('InvalidSpec', 'Validate', invalid));
  const gate = acceptGate(o, ctx);
  if (gate) return gate;
  const acceptedTimestamp = rfc3339(ctx.now);
  return act(
    {
      type: 'patchDataUpload',
      phase: Phase.Accepted,
      patch: {
        metadata: {
          labels: { [LABEL_EXPOSE_ON_GOING]: 'true' },
          annotations: { [ANNOTATION_ACCEPTED_BY]: ACCEPTOR_NAME },
        },
        status: { phase: Phase.Accepted, acceptedByNode: ctx.nodeName, acceptedTimestamp },
      },
      event: normal('Accepted', 'Accept', `accepted by ${ctx.nodeName}; exposing snapshot ${sourceSnapshotName(du)}`),
    },
    'Accept',
    `accepting as ${ctx.nodeName}`,
  );
}

function planAccepted(o: Observed, ctx: PlanContext): Decision {
  const du = o.du;
  if (du.spec.cancel) return cancel(du, 'canceled while Accepted');
  const invalid = invalidSpecReason(du);
  if (invalid) return fail(invalid, warning('InvalidSpec', 'Validate', invalid));
  const refusal = o.refused?.[0];
  if (refusal) {
    // Retrying cannot help (see errors.ts): fail now instead of holding the queue slot until the timeout.
    const message = describeRefusal(refusal);
    return fail(message, warning(refusal.hint ? 'MissingPermission' : 'ExposeRejected', 'Expose', message));
  }
  const deadline = acceptedAt(du) + ctx.prepareTimeoutMs;
  if (ctx.now >= deadline) {
    return act(
      {
        type: 'finish',
        phase: Phase.Failed,
        message: TIMEOUT_MESSAGE,
        event: warning('PrepareTimeout', 'Fail', `${TIMEOUT_MESSAGE} within ${ctx.prepareTimeoutMs / 1000}s`),
        diagnose: { appendCause: true },
      },
      'PrepareTimeout',
      TIMEOUT_MESSAGE,
    );
  }
  const pod = o.backupPod;
  if (pod && ownedBy(pod, du)) {
    const unrecoverable = podUnrecoverableReason(pod);
    if (unrecoverable) {
      const message = `found a du ${du.metadata.namespace}/${du.metadata.name} with expose error: ${unrecoverable}. mark it as cancel`;
      return act(
        {
          type: 'finish',
          phase: Phase.Canceled,
          message,
          event: warning('BackupPodUnrecoverable', 'Cancel', unrecoverable),
          diagnose: { appendCause: false },
        },
        'BackupPodUnrecoverable',
        message,
      );
    }
    if (pod.status?.phase === 'Running') {
      const node = pod.spec?.nodeName ?? '';
      return act(
        {
          type: 'patchDataUpload',
          phase: Phase.Prepared,
          patch: { status: { phase: Phase.Prepared, node } },
          event: normal('Prepared', 'Prepare', preparedNote(o, ctx, pod, node)),
        },
        'Prepared',
        `backup pod running on ${node}`,
      );
    }
  }
  return planExpose(o, ctx, deadline);
}

/** The expose steps of Velero's CSI snapshot exposer, each taken only when the objects show it is still due. */
function planExpose(o: Observed, ctx: PlanContext, deadline: number): Decision {
  const du = o.du;
  const csi = du.spec.csiSnapshot!;
  const untilDeadline = Math.max(0, deadline - ctx.now);
  if (!o.sourcePvc) {
    return fail(
      `source PVC ${du.spec.sourceNamespace}/${du.spec.sourcePVC} (spec.sourcePVC) not found`,
      warning('SourcePVCNotFound', 'Expose', `source PVC ${du.spec.sourceNamespace}/${du.spec.sourcePVC} not found`),
    );
  }
  if (volumeTopology(o) === 'missing') {
    const pvName = o.sourcePvc.spec?.volumeName;
    const message = pvName
      ? `failed to get source PV ${pvName}: it is needed for the volume topology of WaitForFirstConsumer storage class ${csi.storageClass}`
      : `source PVC ${du.spec.sourceNamespace}/${du.spec.sourcePVC} has no volume backing this claim (storage class ${csi.storageClass} binds WaitForFirstConsumer)`;
    return fail(message, warning('SourcePVNotFound', 'Expose', message));
  }
  const nodeOS = deduceNodeOs(o);
  if (!o.nodesByOs[nodeOS]) {
    const message = `no appropriate node to run data upload for PVC ${du.spec.sourceNamespace}/${du.spec.sourcePVC}: node with OS ${nodeOS} doesn't exist`;
    return fail(`failed to set exposer parameters: ${message}`, warning('NoNodeForOS', 'Expose', message));
  }

  if (!o.backupPvc) {
    const copy = planCopies(o, ctx);
    if (copy) return copy;
  }

  if (!o.backupVs) {
    const vs = o.sourceVs;
    const vsName = `${du.spec.sourceNamespace}/${csi.volumeSnapshot}`;
    if (!vs) {
      const message = `source VolumeSnapshot ${vsName} (spec.csiSnapshot.volumeSnapshot) not found`;
      return fail(message, warning('SourceSnapshotNotFound', 'Expose', message));
    }
    if (vs.status?.readyToUse !== true) {
      const error = vs.status?.error?.message;
      return wait(
        'WaitingForSnapshot',
        `waiting for VolumeSnapshot ${vsName} to be ready${error ? `, error: ${error}` : ''}`,
        untilDeadline,
      );
    }
    if (!vs.status.boundVolumeSnapshotContentName) {
      const message = `invalid snapshot info in volume snapshot ${vsName}: no bound VolumeSnapshotContent`;
      return fail(message, warning('InvalidSnapshot', 'Expose', message));
    }
    if (!o.sourceVsc) {
      const message = `VolumeSnapshotContent ${vs.status.boundVolumeSnapshotContentName} of VolumeSnapshot ${vsName} not found`;
      return fail(message, warning('InvalidSnapshot', 'Expose', message));
    }
    return act(
      { type: 'create', resource: Resources.volumeSnapshots, object: buildBackupVolumeSnapshot({ du, sourceVs: vs }) },
      'CreateBackupVolumeSnapshot',
      `creating VolumeSnapshot ${du.metadata.namespace}/${du.metadata.name}`,
    );
  }

  if (!o.backupVsc) {
    const vsc = o.sourceVsc;
    if (!vsc?.status?.snapshotHandle) {
      const message = vsc
        ? `VolumeSnapshotContent ${vsc.metadata.name} has no snapshot handle`
        : `the VolumeSnapshotContent of VolumeSnapshot ${du.spec.sourceNamespace}/${csi.volumeSnapshot} is gone before it was re-homed`;
      return fail(message, warning('InvalidSnapshot', 'Expose', message));
    }
    return act(
      {
        type: 'create',
        resource: Resources.volumeSnapshotContents,
        object: buildBackupVolumeSnapshotContent({ du, backupVs: o.backupVs, sourceVsc: vsc }),
      },
      'CreateBackupVolumeSnapshotContent',
      `creating VolumeSnapshotContent ${du.metadata.name} on handle ${vsc.status.snapshotHandle}`,
    );
  }

  const rehoming = planRehoming(o);
  if (rehoming) return rehoming;

  if (!o.backupPvc) {
    const holder = sizeHolder(o);
    if (!holder) {
      return wait(
        'WaitingForBackupSnapshot',
        `waiting for VolumeSnapshot ${du.metadata.namespace}/${du.metadata.name} to be bound, to size the backup PVC`,
        untilDeadline,
      );
    }
    const resolved = resolveBackupPvcConfig(csi.storageClass, ctx.config.backupPVC);
    const { size } = backupPvcSize(holder, o.sourcePvc);
    return act(
      {
        type: 'create',
        resource: Resources.persistentVolumeClaims,
        object: buildBackupPvc({ du, resolved, volumeMode: volumeModeOf(o.sourcePvc), size }),
      },
      'CreateBackupPVC',
      `creating backup PVC (storage class ${resolved.storageClass}, ${resolved.accessModes.join(',')}, ${size})`,
    );
  }

  if (!o.backupPod) {
    const bindWait = bindingHeadStart(o, ctx);
    if (bindWait !== undefined) {
      return wait(
        'WaitingForBackupPVCBinding',
        `waiting for backup PVC ${du.metadata.namespace}/${du.metadata.name} to be bound before creating the backup pod`,
        bindWait,
      );
    }
    const resolved = resolveBackupPvcConfig(csi.storageClass, ctx.config.backupPVC);
    const topology = volumeTopology(o);
    const pod = buildBackupPod({
      du,
      template: ctx.podTemplate,
      resolved,
      volumeMode: volumeModeOf(o.sourcePvc),
      nodeOS,
      config: ctx.config,
      securityContext: ctx.securityContext,
      ...(topology && topology !== 'missing' ? { volumeTopology: topology } : {}),
    });
    const note =
      `created backup PVC ${du.metadata.namespace}/${du.metadata.name} ` +
      `(storage class ${resolved.storageClass}, ${resolved.accessModes.join(',')}) and backup pod`;
    return act(
      { type: 'create', resource: Resources.pods, object: pod, event: normal('Exposed', 'Expose', note) },
      'CreateBackupPod',
      `creating backup pod ${du.metadata.namespace}/${du.metadata.name}`,
    );
  }

  return wait('WaitingForBackupPod', describePodWait(o.backupPod), untilDeadline);
}

/**
 * How long the backup pod may still wait for its PVC to be bound, or undefined to create it now.
 *
 * A pod whose PVC of an `Immediate` class is not bound yet cannot be scheduled: the scheduler tries it again on
 * every PVC or PV event in the cluster (about 20 failed attempts per pod in a burst of a thousand, measured) and
 * the pod runs no sooner. So the pod waits until the PVC is bound, for at most {@link BIND_HEAD_START_MS} (a
 * quarter of the prepare timeout if that is less) after the PVC was created: a PVC that does not bind by then
 * (a class that cannot provision, a slow restore) gets its pod anyway, so the scheduler says why, and the timeout
 * diagnostics show it. No wait for a `WaitForFirstConsumer` class (it binds after scheduling), nor for a class this
 * process does not know.
 */
function bindingHeadStart(o: Observed, ctx: PlanContext): number | undefined {
  const pvc = o.backupPvc;
  const bindsLater = o.backupStorageClass?.volumeBindingMode === 'WaitForFirstConsumer';
  if (!pvc || !o.backupStorageClass || bindsLater || pvc.status?.phase === 'Bound') return undefined;
  const created = Date.parse(pvc.metadata.creationTimestamp ?? '');
  if (Number.isNaN(created)) return undefined;
  const left = created + Math.min(BIND_HEAD_START_MS, ctx.prepareTimeoutMs / 4) - ctx.now;
  return left > 0 ? left : undefined;
}

/**
 * The Secrets and ConfigMaps the backupPVC's driver needs in the DataUpload's namespace
 * (`backupPVC.<class>.secretNames` / `configMapNames`): copied, or joined when another DataUpload's copy is there,
 * before anything else is made (as Velero does), and kept until the backup volume is gone.
 */
function planCopies(o: Observed, ctx: PlanContext): Decision | undefined {
  const du = o.du;
  const storageClass = du.spec.csiSnapshot!.storageClass;
  const resolved = resolveBackupPvcConfig(storageClass, ctx.config.backupPVC);
  const wanted: [CopyKind, readonly string[], string][] = [
    ['Secret', resolved.secretNames, 'secretNames'],
    ['ConfigMap', resolved.configMapNames, 'configMapNames'],
  ];
  const uid = du.metadata.uid ?? '';
  for (const [kind, names, field] of wanted) {
    if (names.length === 0) continue;
    const problem = ctx.copyProblems?.[kind];
    if (problem) {
      const message = `backupPVC["${storageClass}"].${field} needs copies of ${kind}s, but ${problem}`;
      return fail(message, warning('MissingPermission', 'Expose', message));
    }
    for (const name of names) {
      const copy = o.copies?.find((c) => c.kind === kind && c.name === name);
      if (copy && copy.users.includes(uid) && !copy.deleting) continue;
      return act(
        {
          type: 'copy',
          kind,
          name,
          sourceNamespace: du.spec.sourceNamespace,
          namespace: du.metadata.namespace!,
          duUid: uid,
        },
        `Copy${kind}`,
        `copying ${kind} ${du.spec.sourceNamespace}/${name} to namespace ${du.metadata.namespace}`,
      );
    }
  }
  return undefined;
}

/** Retain the source content, then delete the source snapshot and content (the backup content now owns the handle). */
function planRehoming(o: Observed): Decision | undefined {
  const vsc = o.sourceVsc;
  if (vsc && vsc.spec.deletionPolicy !== 'Retain' && !vsc.metadata.deletionTimestamp) {
    return act(
      {
        type: 'patch',
        resource: Resources.volumeSnapshotContents,
        name: vsc.metadata.name!,
        patch: { spec: { deletionPolicy: 'Retain' } },
      },
      'RetainSourceContent',
      `setting deletionPolicy Retain on VolumeSnapshotContent ${vsc.metadata.name}`,
    );
  }
  const vs = o.sourceVs;
  if (vs) {
    if (vs.metadata.deletionTimestamp) {
      return wait(
        'WaitingForSourceSnapshotDeletion',
        `waiting for VolumeSnapshot ${objName(vs)} to be deleted`,
        DELETION_RETRY_MS,
      );
    }
    return act(
      {
        type: 'delete',
        resource: Resources.volumeSnapshots,
        name: vs.metadata.name!,
        namespace: vs.metadata.namespace,
        uid: vs.metadata.uid,
      },
      'DeleteSourceSnapshot',
      `deleting source VolumeSnapshot ${objName(vs)}`,
    );
  }
  if (vsc) {
    if (vsc.metadata.deletionTimestamp) {
      return wait(
        'WaitingForSourceContentDeletion',
        `waiting for VolumeSnapshotContent ${vsc.metadata.name} to be deleted`,
        DELETION_RETRY_MS,
      );
    }
    return act(
      { type: 'delete', resource: Resources.volumeSnapshotContents, name: vsc.metadata.name!, uid: vsc.metadata.uid },
      'DeleteSourceContent',
      `deleting source VolumeSnapshotContent ${vsc.metadata.name}`,
    );
  }
  return undefined;
}

/**
 * Terminal DataUploads: delete what exposing left behind, then drop the finalizer. The finalizer stays until every
 * child is gone (at most {@link CLEANUP_GRACE_MS} for deletions that were asked for but hang), so deleting a
 * DataUpload mid-cleanup cannot orphan a snapshot, which has no owner reference.
 */
function planTerminal(o: Observed, ctx: PlanContext): Decision {
  const du = o.du;
  // What another acceptor exposed, it cleans up; we only clean up what we exposed or ended before acceptance.
  const ours = acceptedByUs(du) || !du.status?.acceptedByNode;
  const finishedAt =
    Date.parse(du.status?.completionTimestamp ?? '') || Date.parse(du.metadata.creationTimestamp ?? '') || ctx.now;
  const graceOver = ctx.now - finishedAt >= CLEANUP_GRACE_MS;
  const cleanup: CleanupResult = ours ? planCleanup(o, graceOver) : { pending: [], skipped: [] };
  if (cleanup.step) return act(cleanup.step.action, cleanup.step.reason, cleanup.step.message);
  if (cleanup.pending.length > 0 && !graceOver) {
    return wait('WaitingForCleanup', `waiting for ${cleanup.pending.join(', ')} to be deleted`, DELETION_RETRY_MS);
  }
  if (hasFinalizer(du)) {
    const skipped = cleanup.skipped.join('; ');
    return act(
      {
        type: 'patchDataUpload',
        patch: { metadata: { finalizers: (du.metadata.finalizers ?? []).filter((f) => f !== DATAUPLOAD_FINALIZER) } },
        ...(skipped ? { event: warning('CleanupRejected', 'Cleanup', `left behind: ${skipped}`) } : {}),
      },
      'RemoveFinalizer',
      `removing finalizer ${DATAUPLOAD_FINALIZER}${skipped ? `; left behind: ${skipped}` : ''}`,
    );
  }
  return done('Terminal', `phase ${phaseOf(du)}`);
}

interface CleanupStep {
  action: Action;
  reason: string;
  message: string;
}

interface CleanupResult {
  /** The next write, if any is left. */
  step?: CleanupStep;
  /** Objects whose deletion was asked for and has not finished. */
  pending: string[];
  /** Writes the API server refused for good in this pass: what cleanup had to leave behind. */
  skipped: string[];
}

/** The first cleanup write that is due and that the API server has not refused in this pass. */
function planCleanup(o: Observed, graceOver: boolean): CleanupResult {
  const result: CleanupResult = { pending: [], skipped: [] };
  for (const step of cleanupSteps(o, result.pending, graceOver)) {
    const refusal = o.refused?.find((r) => isRefusedAction(r, step.action));
    if (!refusal) return { ...result, step };
    result.skipped.push(describeRefusal(refusal));
  }
  return result;
}

/**
 * Every cleanup write that is due, in order; the caller takes the first it can. Deletions that are already under
 * way are added to `pending`. The order is Velero's (pod, PVC with its PV set to Delete, snapshots), and among the
 * snapshots it keeps one rule from the objects that exist, whatever step exposing had reached:
 *
 * **The storage snapshot is released exactly once, by the backup content.** Once the backup content exists it
 * shares its snapshot handle with the source content. So the source content is first set to Retain (if exposing
 * had not got there yet), the source snapshot is deleted, then the source content (Retain: the storage snapshot
 * stays), and only then the backup snapshot, whose content (Delete) releases the storage snapshot. The source
 * content is found by that handle as long as the backup content exists, so the backup snapshot is deleted last:
 * a restart at any point still finds everything. Before the backup content exists, the source snapshot and its
 * content are left to their own deletion policy, as in Velero's cleanup.
 */
function* cleanupSteps(o: Observed, pending: string[], graceOver: boolean): Generator<CleanupStep> {
  const du = o.du;
  const pod = o.backupPod && ownedBy(o.backupPod, du) ? o.backupPod : undefined;
  if (pod) {
    if (!pod.metadata.deletionTimestamp) yield deleteStep(Resources.pods, pod, 'DeleteBackupPod');
    else pending.push(`pod ${objName(pod)}`);
  }
  const pvc = o.backupPvc && ownedBy(o.backupPvc, du) ? o.backupPvc : undefined;
  // The backup PV: bound to our PVC, or (once the PVC is gone) still claiming it. Velero sets Delete, then deletes
  // the PVC and lets the provisioner delete the volume.
  const pv = o.backupPv && (pvc || claimsBackupPvc(o.backupPv, du)) ? o.backupPv : undefined;
  if (pv && pv.spec?.persistentVolumeReclaimPolicy !== 'Delete' && !pv.metadata.deletionTimestamp) {
    yield {
      action: {
        type: 'patch',
        resource: Resources.persistentVolumes,
        name: pv.metadata.name!,
        patch: { spec: { persistentVolumeReclaimPolicy: 'Delete' } },
      },
      reason: 'SetBackupPVReclaimDelete',
      message: `setting reclaim policy Delete on PV ${pv.metadata.name}`,
    };
  }
  if (pvc) {
    if (!pvc.metadata.deletionTimestamp) yield deleteStep(Resources.persistentVolumeClaims, pvc, 'DeleteBackupPVC');
    else pending.push(`PVC ${objName(pvc)}`);
  }
  // A PVC whose deletion the API server refused stays, and so does its volume: nothing to wait for.
  const pvcStays =
    !!pvc && !!o.refused?.some((r) => r.verb === 'delete' && r.resource === Resources.persistentVolumeClaims);
  if (pv && !pvcStays && (!pvc || pvc.metadata.deletionTimestamp || pv.metadata.deletionTimestamp)) {
    pending.push(`PV ${objName(pv)}`);
  }
  // Copies outlive the volume: the driver may need the Secret to delete it. At the end of the grace they go anyway.
  if ((!pvc && !pv) || pvcStays || graceOver) {
    const uid = du.metadata.uid ?? '';
    for (const copy of o.copies ?? []) {
      if (!copy.users.includes(uid) || copy.deleting) continue;
      yield {
        action: {
          type: 'releaseCopy',
          kind: copy.kind,
          name: copy.name,
          namespace: copy.namespace,
          uid: copy.uid,
          resourceVersion: copy.resourceVersion,
          duUid: uid,
          last: copy.users.length === 1,
        },
        reason: copy.users.length === 1 ? `Delete${copy.kind}Copy` : `Release${copy.kind}Copy`,
        message:
          copy.users.length === 1
            ? `deleting ${copy.kind} copy ${copy.namespace}/${copy.name}`
            : `leaving ${copy.kind} copy ${copy.namespace}/${copy.name} to its ${copy.users.length - 1} other user(s)`,
      };
    }
  } else if ((o.copies ?? []).length > 0) pending.push('the backup volume, before its Secret/ConfigMap copies');

  const backupVsc = o.backupVsc;
  const sourceVsc = o.sourceVsc && backupVsc && sharesHandle(o.sourceVsc, backupVsc) ? o.sourceVsc : undefined;
  if (sourceVsc && !sourceVsc.metadata.deletionTimestamp && sourceVsc.spec.deletionPolicy !== 'Retain') {
    yield retainStep(sourceVsc, 'RetainSourceContent');
  }
  if (
    sourceVsc?.metadata.deletionTimestamp &&
    sourceVsc.spec.deletionPolicy !== 'Retain' &&
    backupVsc &&
    !backupVsc.metadata.deletionTimestamp &&
    backupVsc.spec.deletionPolicy !== 'Retain'
  ) {
    // Someone deleted the source content before it was retained: it releases the storage snapshot, not the backup one.
    yield retainStep(backupVsc, 'RetainBackupContent');
  }
  const source = o.sourceVs;
  if (source && createdBeforeFinish(source, du)) {
    if (!source.metadata.deletionTimestamp) yield deleteStep(Resources.volumeSnapshots, source, 'DeleteSourceSnapshot');
    else pending.push(`VolumeSnapshot ${objName(source)}`);
  }
  if (sourceVsc) {
    if (!sourceVsc.metadata.deletionTimestamp) {
      yield deleteStep(Resources.volumeSnapshotContents, sourceVsc, 'DeleteSourceContent');
    } else pending.push(`VolumeSnapshotContent ${objName(sourceVsc)}`);
  }
  const vs = o.backupVs;
  if (vs) {
    if (!vs.metadata.deletionTimestamp) yield deleteStep(Resources.volumeSnapshots, vs, 'DeleteBackupSnapshot');
    else pending.push(`VolumeSnapshot ${objName(vs)}`);
  }
  // The snapshot controller deletes the backup content with its snapshot (policy Delete). One left alone once its
  // snapshot is gone would leak the storage snapshot (or, when Retain, the object), so delete it ourselves.
  if (backupVsc && !vs) {
    if (!backupVsc.metadata.deletionTimestamp) {
      yield deleteStep(Resources.volumeSnapshotContents, backupVsc, 'DeleteBackupContent');
    } else pending.push(`VolumeSnapshotContent ${objName(backupVsc)}`);
  }
}

function retainStep(vsc: VolumeSnapshotContent, reason: string): CleanupStep {
  return {
    action: {
      type: 'patch',
      resource: Resources.volumeSnapshotContents,
      name: vsc.metadata.name!,
      patch: { spec: { deletionPolicy: 'Retain' } },
    },
    reason,
    message: `setting deletionPolicy Retain on VolumeSnapshotContent ${vsc.metadata.name}`,
  };
}

/** Whether a PV's claim is (was) the DataUpload's backup PVC. */
function claimsBackupPvc(pv: PersistentVolume, du: DataUpload): boolean {
  const claim = pv.spec?.claimRef;
  return claim?.namespace === du.metadata.namespace && claim?.name === du.metadata.name;
}

/** Whether two contents refer to the same storage snapshot. */
function sharesHandle(a: VolumeSnapshotContent, b: VolumeSnapshotContent): boolean {
  const handles = snapshotHandlesOf(b);
  return snapshotHandlesOf(a).some((h) => handles.includes(h));
}

function deleteStep(
  resource: ResourceRef,
  obj: { metadata: { name?: string; namespace?: string; uid?: string } },
  reason: string,
): CleanupStep {
  return {
    action: {
      type: 'delete',
      resource,
      name: obj.metadata.name!,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
    },
    reason,
    message: `deleting ${resource.kind} ${objName(obj)}`,
  };
}

/**
 * A DataUpload that was deleted while New, before anyone accepted it, as the Canceled DataUpload whose cleanup is
 * still due: Velero's CSI plugin made its source snapshot for it, and nobody else will delete that. Its last state
 * may even carry our finalizer: a finalizer patched in while the API server deletes an object that had none is not
 * honoured (the leak e2e test caught one: the finalizer write succeeded, the next write found the DataUpload gone).
 * `undefined` for any other deleted DataUpload (its acceptor cleaned up, or will).
 */
export function tombstoneOf(du: DataUpload, now: number): DataUpload | undefined {
  const abandoned = isBuiltInDataMover(du) && phaseOf(du) === Phase.New && !du.status?.acceptedByNode;
  if (!abandoned) return undefined;
  const when = rfc3339(now);
  return {
    ...du,
    metadata: { ...du.metadata, finalizers: [], deletionTimestamp: du.metadata.deletionTimestamp ?? when },
    status: { ...du.status, phase: Phase.Canceled, completionTimestamp: when, message: DELETED_MESSAGE },
  };
}

/**
 * Why a backup pod can never run, or `undefined`. Same rule as Velero's `IsPodUnrecoverable`: phase Failed or
 * Unknown, or a container stuck on an image pull. Unschedulable is deliberately not fatal (slow binding, autoscalers).
 */
export function podUnrecoverableReason(pod: Pod): string | undefined {
  const phase = pod.status?.phase;
  if (phase === 'Failed' || phase === 'Unknown') {
    const messages = (pod.status?.containerStatuses ?? [])
      .map((c) => c.state?.terminated?.message)
      .filter((m): m is string => !!m);
    return `Pod is in abnormal state [${phase}], message [${messages.join('/')}]`;
  }
  for (const c of pod.status?.containerStatuses ?? []) {
    const reason = c.state?.waiting?.reason;
    if (reason === 'ImagePullBackOff' || reason === 'ErrImageNeverPull') {
      return `Container ${c.name} in Pod ${podName(pod)} is in pull image failed with reason ${reason}`;
    }
  }
  return undefined;
}

/**
 * The source volume's topology, as Velero 1.18.3 reads it: only for a WaitForFirstConsumer source class, the source
 * PV's required node affinity (`undefined` when it has none). `'missing'` when the class needs it but the source PV
 * is not there; Velero fails such a DataUpload too. A source class that no longer exists is read as not
 * WaitForFirstConsumer (Velero fails on it; the snapshot can still be exposed).
 */
export function volumeTopology(
  o: Pick<Observed, 'sourcePv' | 'sourceStorageClass'>,
): V1NodeSelector | 'missing' | undefined {
  if (o.sourceStorageClass?.volumeBindingMode !== 'WaitForFirstConsumer') return undefined;
  if (!o.sourcePv) return 'missing';
  const required = o.sourcePv.spec?.nodeAffinity?.required;
  return required?.nodeSelectorTerms?.length ? required : undefined;
}

/** Velero's node OS rule, minus VolumeAttachments: Block is linux; else the selected node's OS; else linux. */
export function deduceNodeOs(o: Pick<Observed, 'sourcePvc' | 'selectedNode'>): 'linux' | 'windows' {
  if (o.sourcePvc?.spec?.volumeMode === 'Block') return 'linux';
  return o.selectedNode?.metadata.labels?.[LABEL_NODE_OS] === 'windows' ? 'windows' : 'linux';
}

/**
 * The `Prepared` Event's note, which also stands in for the `Accepted` and `Exposed` Events of a DataUpload
 * prepared promptly (see lifecycle-events.ts): where it runs, what was exposed, and how long each stage took.
 */
function preparedNote(o: Observed, ctx: PlanContext, pod: Pod, node: string): string {
  const du = o.du;
  const resolved = resolveBackupPvcConfig(du.spec.csiSnapshot?.storageClass ?? '', ctx.config.backupPVC);
  const created = Date.parse(du.metadata.creationTimestamp ?? '');
  const accepted = Date.parse(du.status?.acceptedTimestamp ?? '');
  const exposed = Date.parse(pod.metadata.creationTimestamp ?? '');
  const seconds = (from: number, to: number) =>
    Number.isNaN(from) || Number.isNaN(to) ? '?' : `${Math.max(0, Math.round((to - from) / 1000))}s`;
  return (
    `backup pod ${podName(pod)} is running on node ${node}; snapshot ${sourceSnapshotName(du)} exposed as backup PVC ` +
    `${du.metadata.namespace}/${du.metadata.name} (storage class ${resolved.storageClass}, ${resolved.accessModes.join(',')}); ` +
    `accepted by ${du.status?.acceptedByNode ?? ctx.nodeName} ${seconds(created, accepted)} after creation, ` +
    `exposed ${seconds(accepted, exposed)} later, running ${seconds(exposed, ctx.now)} after that`
  );
}

function describePodWait(pod: Pod): string {
  const phase = pod.status?.phase ?? 'Pending';
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled?.message) return `backup pod ${podName(pod)} is ${phase}: ${unscheduled.message}`;
  const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting?.reason)?.state?.waiting;
  if (waiting)
    return `backup pod ${podName(pod)} is ${phase}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
  return `backup pod ${podName(pod)} is ${phase}`;
}

/**
 * The snapshot whose `restoreSize` sizes the backup PVC. Velero reads it from the source snapshot, but that one
 * is deleted before the PVC is made, so after a restart (or simply in this level-triggered flow) the size must
 * come from the re-homed snapshot or its content. Until one of them says, wait: a PVC smaller than the snapshot
 * would never provision. Only a bound snapshot without any size falls back to the source PVC's request.
 */
function sizeHolder(o: Observed): VolumeSnapshot | undefined {
  const hasSize = (size: string | number | undefined): size is string | number =>
    size !== undefined && (parseQuantity(size) ?? 0) > 0;
  if (o.sourceVs && hasSize(o.sourceVs.status?.restoreSize)) return o.sourceVs;
  const backupVs = o.backupVs;
  if (!backupVs) return undefined;
  if (hasSize(backupVs.status?.restoreSize)) return backupVs;
  const contentSize = o.backupVsc?.status?.restoreSize;
  if (hasSize(contentSize)) return { ...backupVs, status: { ...backupVs.status, restoreSize: contentSize } };
  return backupVs.status?.readyToUse ? backupVs : undefined;
}

function cancel(du: DataUpload, why: string): Decision {
  return act(
    {
      type: 'finish',
      phase: Phase.Canceled,
      message: du.status?.message ?? '',
      event: normal('Canceled', 'Cancel', du.status?.message ? `${why}: ${du.status.message}` : why),
    },
    'Cancel',
    why,
  );
}

function fail(message: string, event: EventIntent): Decision {
  return act({ type: 'finish', phase: Phase.Failed, message, event }, event.reason, message);
}

function acceptedByUs(du: DataUpload): boolean {
  return du.metadata.annotations?.[ANNOTATION_ACCEPTED_BY] === ACCEPTOR_NAME;
}

function hasFinalizer(du: DataUpload): boolean {
  return du.metadata.finalizers?.includes(DATAUPLOAD_FINALIZER) ?? false;
}

function ownedBy(obj: { metadata: { ownerReferences?: { uid: string }[] } }, du: DataUpload): boolean {
  return obj.metadata.ownerReferences?.some((ref) => ref.uid === du.metadata.uid) ?? false;
}

/** The source snapshot belongs to this DataUpload only if it predates the DataUpload's end. */
function createdBeforeFinish(vs: VolumeSnapshot, du: DataUpload): boolean {
  const created = Date.parse(vs.metadata.creationTimestamp ?? '');
  const finished = Date.parse(du.status?.completionTimestamp ?? '');
  return Number.isNaN(created) || Number.isNaN(finished) || created <= finished;
}

function acceptedAt(du: DataUpload): number {
  const accepted = Date.parse(du.status?.acceptedTimestamp ?? '');
  return Number.isNaN(accepted) ? Date.parse(du.metadata.creationTimestamp ?? '') || 0 : accepted;
}

function sourceSnapshotName(du: DataUpload): string {
  return `${du.spec.sourceNamespace}/${du.spec.csiSnapshot?.volumeSnapshot ?? '?'}`;
}

function podName(pod: Pod): string {
  return objName(pod);
}

function objName(obj: { metadata: { name?: string; namespace?: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata.name ?? '');
}

/** RFC 3339 with second precision, as `metav1.Time` serializes. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function act(action: Action, reason: string, message: string): Decision {
  return { kind: 'act', action, reason, message };
}

function wait(reason: string, message: string, requeueAfterMs?: number): Decision {
  return { kind: 'wait', reason, message, requeueAfterMs };
}

function done(reason: string, message: string): Decision {
  return { kind: 'done', reason, message };
}

function normal(reason: string, action: string, note: string): EventIntent {
  return { type: 'Normal', reason, action, note };
}

function warning(reason: string, action: string, note: string): EventIntent {
  return { type: 'Warning', reason, action, note };
}
