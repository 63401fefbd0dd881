/**
 * How each object of an expose looks: its state (reason, health), the sentence parts of its Event note, its report
 * lines in Velero's DiagnoseExpose style, and the cause to report when it is the deepest failing object.
 * Pure functions of one object and its Warning events.
 */
import type {
  Condition,
  ContainerStatus,
  ObjectMeta,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/index.js';
import type { WarningSummary } from './events.js';
import { ExposeFindingReason as Reason } from './reasons.js';
import { orNone, singleLine } from './text.js';

/** What one object looks like, before its Warning events are appended to the note. */
export interface ObjectState {
  reason: Reason;
  healthy: boolean;
  /** Sentence parts of the Event note, joined with `; `. The first names the object. */
  parts: string[];
  /** Report lines, without the Warning event lines. */
  lines: string[];
  /** One line naming the problem, used when this is the deepest failing object. */
  cause: string;
}

/** How an object is named in notes, causes and report lines. */
export interface ObjectLabel {
  /** In notes and causes, e.g. `backup VolumeSnapshot`. */
  long: string;
  /** At the start of report lines, e.g. `VS` (Velero's wording). */
  short: string;
}

/** Container waiting reasons that mean the image cannot be had; Velero cancels on some of them. */
const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'RegistryUnavailable',
  'SignatureValidationFailed',
]);

/** Container waiting reasons that are ordinary steps of starting, not problems by themselves. */
const STARTING_REASONS: ReadonlySet<string> = new Set(['ContainerCreating', 'PodInitializing']);

/** `namespace/name`, or just `name` for cluster-scoped objects. */
export function namespacedName(metadata: Pick<ObjectMeta, 'name' | 'namespace'>): string {
  const name = orNone(metadata.name);
  return metadata.namespace ? `${metadata.namespace}/${name}` : name;
}

/** `detail` after a colon, or nothing: `prefix: detail`. */
function withDetail(prefix: string, detail: string | undefined): string {
  return detail ? `${prefix}: ${singleLine(detail)}` : prefix;
}

/** The message of the newest Warning (its reason when it has no message), or undefined. */
function newestWarningText(warnings: readonly WarningSummary[], reason?: string): string | undefined {
  const newest = warnings.find((warning) => reason === undefined || warning.reason === reason);
  if (!newest) return undefined;
  return newest.message || newest.reason;
}

// ---- Pod --------------------------------------------------------------------------------------------------------

function conditionPart(condition: Condition): string {
  const head = `condition ${condition.type}=${condition.status}`;
  const withReason = condition.reason ? `${head} (${condition.reason})` : head;
  return withDetail(withReason, condition.message);
}

function conditionLine(owner: string, condition: Condition): string {
  return (
    `${owner} condition ${condition.type}, status ${condition.status}, reason ${orNone(condition.reason)}, ` +
    `message ${orNone(singleLine(condition.message ?? ''))}`
  );
}

function containerPart(status: ContainerStatus): string | undefined {
  const { waiting, terminated } = status.state ?? {};
  if (waiting) return withDetail(`container ${status.name} waiting: ${orNone(waiting.reason)}`, waiting.message);
  if (terminated) {
    const head = `container ${status.name} terminated: ${orNone(terminated.reason)}, exit code ${terminated.exitCode ?? '<none>'}`;
    return withDetail(head, terminated.message);
  }
  return undefined;
}

function containerLine(status: ContainerStatus): string | undefined {
  const { waiting, terminated } = status.state ?? {};
  if (waiting) {
    return `Pod container ${status.name}, waiting, reason ${orNone(waiting.reason)}, message ${orNone(singleLine(waiting.message ?? ''))}`;
  }
  if (terminated) {
    return (
      `Pod container ${status.name}, terminated, reason ${orNone(terminated.reason)}, ` +
      `exit code ${terminated.exitCode ?? '<none>'}, message ${orNone(singleLine(terminated.message ?? ''))}`
    );
  }
  return undefined;
}

function allContainers(pod: Pod): ContainerStatus[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

/** Reason, health and cause of a backup pod, from the most specific symptom to the most general. */
function classifyPod(pod: Pod, warnings: readonly WarningSummary[]): Pick<ObjectState, 'reason' | 'healthy' | 'cause'> {
  const id = namespacedName(pod.metadata);
  const phase = pod.status?.phase;
  const containers = allContainers(pod);
  if (phase === 'Failed' || phase === 'Unknown') {
    const terminated = containers.find((status) => status.state?.terminated)?.state?.terminated;
    const detail =
      pod.status?.message ??
      (terminated ? withDetail(orNone(terminated.reason), terminated.message) : newestWarningText(warnings));
    return { reason: Reason.BackupPodFailed, healthy: false, cause: withDetail(`backup pod ${phase}`, detail) };
  }
  if (phase === 'Succeeded') {
    return { reason: Reason.BackupPodSucceeded, healthy: true, cause: `backup pod ${id} is Succeeded` };
  }
  const imagePull = containers.find((status) => IMAGE_PULL_REASONS.has(status.state?.waiting?.reason ?? ''));
  if (imagePull) {
    const waiting = imagePull.state?.waiting;
    const cause = withDetail(`backup pod ${orNone(waiting?.reason)}`, waiting?.message);
    return { reason: Reason.BackupPodImagePullFailed, healthy: false, cause };
  }
  const scheduled = pod.status?.conditions?.find((condition) => condition.type === 'PodScheduled');
  if (scheduled?.status === 'False') {
    const detail = scheduled.message || newestWarningText(warnings, 'FailedScheduling') || scheduled.reason;
    const cause = withDetail(`backup pod ${orNone(phase)}`, detail);
    return { reason: Reason.BackupPodUnschedulable, healthy: false, cause };
  }
  if (phase === 'Running')
    return { reason: Reason.BackupPodRunning, healthy: true, cause: `backup pod ${id} is Running` };
  const stuck = containers.find((status) => {
    const reason = status.state?.waiting?.reason;
    return reason !== undefined && !STARTING_REASONS.has(reason);
  });
  if (stuck) {
    const waiting = stuck.state?.waiting;
    const cause = withDetail(`backup pod ${orNone(waiting?.reason)}`, waiting?.message);
    return { reason: Reason.BackupPodContainerWaiting, healthy: false, cause };
  }
  const warning = newestWarningText(warnings);
  const cause = warning ? `backup pod ${orNone(phase)}: ${warning}` : `backup pod ${id} is ${orNone(phase)}`;
  return { reason: Reason.BackupPodNotReady, healthy: false, cause };
}

/** The backup pod: phase, node, every condition that is not True, and every waiting or terminated container. */
export function describePod(pod: Pod, warnings: readonly WarningSummary[]): ObjectState {
  const id = namespacedName(pod.metadata);
  const status = pod.status ?? {};
  const node = pod.spec?.nodeName;
  let head = `backup pod ${id}: phase ${orNone(status.phase)}, node ${orNone(node)}`;
  if (status.reason) head += `, reason ${status.reason}`;
  if (status.message) head += `, message ${status.message}`;
  const conditions = status.conditions ?? [];
  const containers = allContainers(pod);
  const parts = [
    head,
    ...conditions.filter((condition) => condition.status !== 'True').map(conditionPart),
    ...containers.map(containerPart).filter((part) => part !== undefined),
  ];
  const lines = [
    `Pod ${id}, phase ${orNone(status.phase)}, node name ${orNone(node)}, reason ${orNone(status.reason)}, ` +
      `message ${orNone(singleLine(status.message ?? ''))}`,
    ...conditions.map((condition) => conditionLine('Pod', condition)),
    ...containers.map(containerLine).filter((line) => line !== undefined),
  ];
  return { ...classifyPod(pod, warnings), parts, lines };
}

// ---- PVC and PV -------------------------------------------------------------------------------------------------

/** The backup PVC: phase, storage class, access modes, data source and the volume it is bound to. */
export function describePvc(pvc: PersistentVolumeClaim, warnings: readonly WarningSummary[]): ObjectState {
  const id = namespacedName(pvc.metadata);
  const phase = pvc.status?.phase;
  const storageClass = pvc.spec?.storageClassName;
  const accessModes = (pvc.spec?.accessModes ?? []).join(',');
  const volume = pvc.spec?.volumeName;
  const source = pvc.spec?.dataSource;
  const sourceText = source ? `${source.kind}/${source.name}` : undefined;
  const head =
    `backup PVC ${id}: phase ${orNone(phase)}, storage class ${orNone(storageClass)}, ` +
    `access modes ${orNone(accessModes)}, volume ${orNone(volume)}, data source ${orNone(sourceText)}`;
  const lines = [
    `PVC ${id}, phase ${orNone(phase)}, binding to ${orNone(volume)}, storage class ${orNone(storageClass)}, ` +
      `access modes ${orNone(accessModes)}`,
    ...(pvc.status?.conditions ?? []).map((condition) => conditionLine('PVC', condition)),
  ];
  return { ...classifyPvc(pvc, warnings), parts: [head], lines };
}

function classifyPvc(
  pvc: PersistentVolumeClaim,
  warnings: readonly WarningSummary[],
): Pick<ObjectState, 'reason' | 'healthy' | 'cause'> {
  const id = namespacedName(pvc.metadata);
  const phase = pvc.status?.phase;
  if (phase === 'Bound') return { reason: Reason.BackupPVCBound, healthy: true, cause: `backup PVC ${id} is Bound` };
  const warning = newestWarningText(warnings);
  if (phase === 'Lost') {
    const cause = warning
      ? `backup PVC Lost: ${warning}`
      : `backup PVC ${id} is Lost: volume ${orNone(pvc.spec?.volumeName)} is gone`;
    return { reason: Reason.BackupPVCLost, healthy: false, cause };
  }
  const cause = warning
    ? `backup PVC ${orNone(phase)}: ${warning}`
    : `backup PVC ${id} is ${orNone(phase)}: no volume is bound yet`;
  return { reason: Reason.BackupPVCNotBound, healthy: false, cause };
}

/** The PV of the backup PVC: phase, reason and message, and the claim it belongs to. */
export function describePv(pv: PersistentVolume, warnings: readonly WarningSummary[]): ObjectState {
  const name = orNone(pv.metadata.name);
  const { phase, reason, message } = pv.status ?? {};
  const claim = pv.spec?.claimRef;
  const claimText = claim ? `${orNone(claim.namespace)}/${orNone(claim.name)}` : undefined;
  let head = `backup PV ${name}: phase ${orNone(phase)}, claim ${orNone(claimText)}`;
  if (reason) head += `, reason ${reason}`;
  if (message) head += `, message ${message}`;
  const lines = [
    `PV ${name}, phase ${orNone(phase)}, reason ${orNone(reason)}, message ${orNone(singleLine(message ?? ''))}`,
  ];
  if (phase === 'Bound') {
    return { reason: Reason.BackupPVBound, healthy: true, parts: [head], lines, cause: `backup PV ${name} is Bound` };
  }
  const cause = withDetail(`backup PV ${name} is ${orNone(phase)}`, message || newestWarningText(warnings));
  return { reason: Reason.BackupPVNotBound, healthy: false, parts: [head], lines, cause };
}

// ---- VolumeSnapshot and VolumeSnapshotContent --------------------------------------------------------------------

function readyText(ready: boolean | undefined): string {
  return ready === undefined ? '<unset>' : String(ready);
}

/** A VolumeSnapshot: readyToUse, the content it is bound to, and its error. */
export function describeSnapshot(
  vs: VolumeSnapshot,
  warnings: readonly WarningSummary[],
  label: ObjectLabel,
): ObjectState {
  const id = namespacedName(vs.metadata);
  const { readyToUse, boundVolumeSnapshotContentName: content, error } = vs.status ?? {};
  const errorText = error?.message ? singleLine(error.message) : undefined;
  let head = `${label.long} ${id}: readyToUse ${readyText(readyToUse)}, bound content ${orNone(content)}`;
  if (errorText) head += `, error ${errorText}`;
  const lines = [
    `${label.short} ${id}, bind to ${orNone(content)}, readyToUse ${readyText(readyToUse)}, errMessage ${orNone(errorText)}`,
  ];
  const base = { parts: [head], lines };
  if (readyToUse === true) {
    return { ...base, reason: Reason.VolumeSnapshotReady, healthy: true, cause: `${label.long} ${id} is ready` };
  }
  if (errorText) {
    return {
      ...base,
      reason: Reason.VolumeSnapshotError,
      healthy: false,
      cause: `${label.long} ${id} failed: ${errorText}`,
    };
  }
  const cause = withDetail(`${label.long} ${id} is not ready to use`, newestWarningText(warnings));
  return { ...base, reason: Reason.VolumeSnapshotNotReady, healthy: false, cause };
}

/** A VolumeSnapshotContent: readyToUse, its error, and the storage snapshot handle. */
export function describeContent(
  vsc: VolumeSnapshotContent,
  warnings: readonly WarningSummary[],
  label: ObjectLabel,
): ObjectState {
  const name = orNone(vsc.metadata.name);
  const { readyToUse, snapshotHandle, error } = vsc.status ?? {};
  const handle = snapshotHandle ?? vsc.spec.source.snapshotHandle;
  const errorText = error?.message ? singleLine(error.message) : undefined;
  let head = `${label.long} ${name}: readyToUse ${readyText(readyToUse)}, snapshot handle ${orNone(handle)}`;
  if (errorText) head += `, error ${errorText}`;
  const lines = [
    `${label.short} ${name}, readyToUse ${readyText(readyToUse)}, errMessage ${orNone(errorText)}, handle ${orNone(handle)}`,
  ];
  const base = { parts: [head], lines };
  if (readyToUse === true) {
    return {
      ...base,
      reason: Reason.VolumeSnapshotContentReady,
      healthy: true,
      cause: `${label.long} ${name} is ready`,
    };
  }
  if (errorText) {
    const cause = `${label.long} ${name} failed: ${errorText}`;
    return { ...base, reason: Reason.VolumeSnapshotContentError, healthy: false, cause };
  }
  const cause = withDetail(`${label.long} ${name} is not ready to use`, newestWarningText(warnings));
  return { ...base, reason: Reason.VolumeSnapshotContentNotReady, healthy: false, cause };
}
