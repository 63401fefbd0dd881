/**
 * The expose report: why a DataUpload's backup pod did not get ready, told through the objects of the expose.
 *
 * Velero's DiagnoseExpose only logs these facts on whichever node noticed the timeout. Here they are a pure function
 * of what the controller observed: one {@link Finding} per object becomes one Event on the DataUpload (reason and
 * note), {@link ExposeReport.cause} goes into `status.message`, and {@link ExposeReport.lines} is the full report for
 * the `diagnose` command and the logs.
 *
 * Findings, one per object that exists or should exist, in this order:
 * - `BackupPod` (always): `BackupPodRunning`, `BackupPodSucceeded` (healthy); `BackupPodUnschedulable`,
 *   `BackupPodImagePullFailed`, `BackupPodContainerWaiting`, `BackupPodFailed`, `BackupPodNotReady`,
 *   `BackupPodMissing`, `BackupPodUnreadable`.
 * - `BackupPVC` (always): `BackupPVCBound` (healthy); `BackupPVCNotBound`, `BackupPVCLost`, `BackupPVCMissing`,
 *   `BackupPVCUnreadable`.
 * - `BackupPV` (when observed, or when the PVC names a volume): `BackupPVBound` (healthy); `BackupPVNotBound`,
 *   `BackupPVMissing`, `BackupPVUnreadable`.
 * - `BackupVolumeSnapshot` (always): `VolumeSnapshotReady` (healthy); `VolumeSnapshotNotReady`,
 *   `VolumeSnapshotError`, `VolumeSnapshotMissing`, `VolumeSnapshotUnreadable`.
 * - `BackupVolumeSnapshotContent` (when observed, or when the backup VolumeSnapshot exists):
 *   `VolumeSnapshotContentReady` (healthy); `VolumeSnapshotContentNotReady`, `VolumeSnapshotContentError`,
 *   `VolumeSnapshotContentMissing`, `VolumeSnapshotContentUnreadable`.
 * - `SourceVolumeSnapshot` (when observed, or while no backup snapshot exists yet, because the source is deleted
 *   once it has been re-homed): the VolumeSnapshot reasons, or a VolumeSnapshotContent reason when the source
 *   content is what fails. The source content has no subject of its own; it is folded into this finding.
 *
 * The cause names the deepest failing dependency: source snapshot, backup content, backup snapshot, PV, PVC, pod.
 * One exception: a Pending PVC without Warning events next to an unschedulable pod is a consequence (the storage
 * class waits for the first consumer), so the scheduler's message is the cause.
 *
 * The reasons are {@link ExposeFindingReason}; they are stable Event reasons.
 */
import type {
  CoreEvent,
  DataUpload,
  KubeObject,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/index.js';
import { SNAPSHOT_API_VERSION } from '../api/index.js';
import type { DiagnosedObject, WarningSummary } from './events.js';
import { compareNewestFirst, formatWarningsForNote, summarizeWarnings } from './events.js';
import type { ObjectLabel, ObjectState } from './objects.js';
import { describeContent, describePod, describePv, describePvc, describeSnapshot, namespacedName } from './objects.js';
import { ExposeFindingReason as Reason } from './reasons.js';
import { CAUSE_MAX_BYTES, EVENT_NOTE_MAX_BYTES, orNone, singleLine, truncateUtf8 } from './text.js';

/** Everything the controller read about one DataUpload's expose. Nothing here is modified. */
export interface ExposeObservation {
  du: DataUpload;
  /** The backup pod, PVC and backup VolumeSnapshot are named after the DataUpload, in its namespace. */
  pod?: Pod;
  pvc?: PersistentVolumeClaim;
  /** The PV the backup PVC is bound to. */
  pv?: PersistentVolume;
  backupVs?: VolumeSnapshot;
  backupVsc?: VolumeSnapshotContent;
  /** The snapshot named by `spec.csiSnapshot`; gone once it has been re-homed to the backup snapshot. */
  sourceVs?: VolumeSnapshot;
  sourceVsc?: VolumeSnapshotContent;
  /** Events about the objects above; Events about anything else are ignored. */
  events: CoreEvent[];
  /**
   * Objects that could not be read. `object` is a {@link FindingSubject} (`BackupPod`, ...) or
   * `SourceVolumeSnapshotContent`; short forms such as `pod`, `pvc`, `pv`, `vs`, `vsc`, `sourceVs` and `sourceVsc`
   * are accepted too. Any other name is only reported as a line.
   */
  readErrors?: { object: string; message: string }[];
}

/** Which object of the expose a finding is about. */
export type FindingSubject =
  | 'BackupPod'
  | 'BackupPVC'
  | 'BackupPV'
  | 'BackupVolumeSnapshot'
  | 'BackupVolumeSnapshotContent'
  | 'SourceVolumeSnapshot';

/** The state of one object: an Event on the DataUpload, Warning when not healthy. */
export interface Finding {
  subject: FindingSubject;
  healthy: boolean;
  /** One of {@link ExposeFindingReason}. */
  reason: string;
  /** The Event note: one line, at most 1024 bytes. */
  message: string;
  /** The object itself, or the object that was expected when it is missing (then without uid). */
  regarding?: DiagnosedObject;
}

/** The result of {@link diagnoseExpose}. */
export interface ExposeReport {
  findings: Finding[];
  /** The most likely root cause: one line, at most 512 bytes, never empty. */
  cause: string;
  /** The whole report, one line per object, condition, container, Warning and read error. */
  lines: string[];
}

type ReadKey = FindingSubject | 'SourceVolumeSnapshotContent';

/** One object's assessment before it becomes a Finding. */
interface Assessment {
  subject: FindingSubject;
  reason: Reason;
  healthy: boolean;
  regarding: DiagnosedObject;
  parts: string[];
  lines: string[];
  warnings: WarningSummary[];
  cause: string;
}

const POD_TYPE = { apiVersion: 'v1', kind: 'Pod' } as const;
const PVC_TYPE = { apiVersion: 'v1', kind: 'PersistentVolumeClaim' } as const;
const PV_TYPE = { apiVersion: 'v1', kind: 'PersistentVolume' } as const;
const VS_TYPE = { apiVersion: SNAPSHOT_API_VERSION, kind: 'VolumeSnapshot' } as const;
const VSC_TYPE = { apiVersion: SNAPSHOT_API_VERSION, kind: 'VolumeSnapshotContent' } as const;

const LABELS: Readonly<Record<ReadKey, ObjectLabel>> = Object.freeze({
  BackupPod: { long: 'backup pod', short: 'Pod' },
  BackupPVC: { long: 'backup PVC', short: 'PVC' },
  BackupPV: { long: 'backup PV', short: 'PV' },
  BackupVolumeSnapshot: { long: 'backup VolumeSnapshot', short: 'VS' },
  BackupVolumeSnapshotContent: { long: 'backup VolumeSnapshotContent', short: 'VSC' },
  SourceVolumeSnapshot: { long: 'source VolumeSnapshot', short: 'source VS' },
  SourceVolumeSnapshotContent: { long: 'source VolumeSnapshotContent', short: 'source VSC' },
});

/** Read-error names, lower-cased without punctuation, to the object they are about. */
const READ_KEY_ALIASES: ReadonlyMap<string, ReadKey> = new Map<string, ReadKey>([
  ['backuppod', 'BackupPod'],
  ['pod', 'BackupPod'],
  ['backuppvc', 'BackupPVC'],
  ['pvc', 'BackupPVC'],
  ['persistentvolumeclaim', 'BackupPVC'],
  ['backuppv', 'BackupPV'],
  ['pv', 'BackupPV'],
  ['persistentvolume', 'BackupPV'],
  ['backupvolumesnapshot', 'BackupVolumeSnapshot'],
  ['backupvs', 'BackupVolumeSnapshot'],
  ['vs', 'BackupVolumeSnapshot'],
  ['volumesnapshot', 'BackupVolumeSnapshot'],
  ['backupvolumesnapshotcontent', 'BackupVolumeSnapshotContent'],
  ['backupvsc', 'BackupVolumeSnapshotContent'],
  ['vsc', 'BackupVolumeSnapshotContent'],
  ['volumesnapshotcontent', 'BackupVolumeSnapshotContent'],
  ['sourcevolumesnapshot', 'SourceVolumeSnapshot'],
  ['sourcevs', 'SourceVolumeSnapshot'],
  ['sourcevolumesnapshotcontent', 'SourceVolumeSnapshotContent'],
  ['sourcevsc', 'SourceVolumeSnapshotContent'],
]);

/** The order in which failing objects are blamed: the deepest dependency first. */
const CAUSE_ORDER: readonly FindingSubject[] = [
  'SourceVolumeSnapshot',
  'BackupVolumeSnapshotContent',
  'BackupVolumeSnapshot',
  'BackupPV',
  'BackupPVC',
  'BackupPod',
];

/** Reasons for an object that is expected but absent, or that could not be read. */
const ABSENT_REASONS: Readonly<Record<ReadKey, { missing: Reason; unreadable: Reason }>> = Object.freeze({
  BackupPod: { missing: Reason.BackupPodMissing, unreadable: Reason.BackupPodUnreadable },
  BackupPVC: { missing: Reason.BackupPVCMissing, unreadable: Reason.BackupPVCUnreadable },
  BackupPV: { missing: Reason.BackupPVMissing, unreadable: Reason.BackupPVUnreadable },
  BackupVolumeSnapshot: { missing: Reason.VolumeSnapshotMissing, unreadable: Reason.VolumeSnapshotUnreadable },
  BackupVolumeSnapshotContent: {
    missing: Reason.VolumeSnapshotContentMissing,
    unreadable: Reason.VolumeSnapshotContentUnreadable,
  },
  SourceVolumeSnapshot: { missing: Reason.VolumeSnapshotMissing, unreadable: Reason.VolumeSnapshotUnreadable },
  SourceVolumeSnapshotContent: {
    missing: Reason.VolumeSnapshotContentMissing,
    unreadable: Reason.VolumeSnapshotContentUnreadable,
  },
});

/** What to assess for one object: the object if observed, else where it was expected (undefined: not expected). */
interface Slot<T extends KubeObject> {
  key: ReadKey;
  subject: FindingSubject;
  type: { apiVersion: string; kind: string };
  object: T | undefined;
  expected: { name: string; namespace?: string } | undefined;
  describe: (object: T, warnings: readonly WarningSummary[], label: ObjectLabel) => ObjectState;
}

/** Inputs every slot assessment shares. */
interface Context {
  events: readonly CoreEvent[];
  readErrors: ReadonlyMap<ReadKey, string>;
}

/**
 * Diagnoses an expose from the observed objects: one finding per object, the root cause and the full report.
 * Pure and deterministic: the same observation always gives the same report, whatever the order of its events.
 */
export function diagnoseExpose(obs: ExposeObservation): ExposeReport {
  const context: Context = { events: obs.events, readErrors: matchedReadErrors(obs.readErrors ?? []) };
  const assessments = slotsOf(obs, context.readErrors).flatMap((group) => {
    const assessed = group.map((slot) => assess(slot, context)).filter((item) => item !== undefined);
    return assessed.length > 1 ? [foldInto(assessed)] : assessed;
  });
  const cause = truncateUtf8(singleLine(chooseCause(assessments, obs.du)), CAUSE_MAX_BYTES);
  const lines = [
    `begin diagnose CSI exposer for DataUpload ${namespacedName(obs.du.metadata)}`,
    `cause: ${cause}`,
    ...assessments.flatMap((assessment) => assessment.lines),
    ...unmatchedReadErrorLines(obs.readErrors ?? []),
    'end diagnose CSI exposer',
  ];
  return { findings: assessments.map(toFinding), cause, lines };
}

/** The report as multi-line text, for the `diagnose` command and for logs. */
export function formatExposeReport(report: ExposeReport): string {
  return report.lines.join('\n');
}

/** The objects to assess, in report order; slots in one group are folded into one finding. */
function slotsOf(obs: ExposeObservation, readErrors: ReadonlyMap<ReadKey, string>): Slot<KubeObject>[][] {
  const name = obs.du.metadata.name ?? '';
  const namespace = obs.du.metadata.namespace;
  const own = { name, ...(namespace ? { namespace } : {}) };
  const volumeName = obs.pvc?.spec?.volumeName;
  const contentName =
    obs.backupVs?.status?.boundVolumeSnapshotContentName ?? obs.backupVs?.spec.source.volumeSnapshotContentName ?? name;
  const source = obs.du.spec.csiSnapshot;
  const sourceRehomed =
    obs.backupVs !== undefined || obs.backupVsc !== undefined || readErrors.has('BackupVolumeSnapshot');
  const sourceExpected =
    source && !sourceRehomed ? { name: source.volumeSnapshot, namespace: obs.du.spec.sourceNamespace } : undefined;
  const sourceContentName = obs.sourceVs?.status?.boundVolumeSnapshotContentName;
  const slots: Slot<KubeObject>[][] = [
    [slot({ key: 'BackupPod', type: POD_TYPE, object: obs.pod, expected: own, describe: describePod })],
    [slot({ key: 'BackupPVC', type: PVC_TYPE, object: obs.pvc, expected: own, describe: describePvc })],
    [
      slot({
        key: 'BackupPV',
        type: PV_TYPE,
        object: obs.pv,
        expected: volumeName ? { name: volumeName } : undefined,
        describe: describePv,
      }),
    ],
    [
      slot({
        key: 'BackupVolumeSnapshot',
        type: VS_TYPE,
        object: obs.backupVs,
        expected: own,
        describe: describeSnapshot,
      }),
    ],
    [
      slot({
        key: 'BackupVolumeSnapshotContent',
        type: VSC_TYPE,
        object: obs.backupVsc,
        expected: obs.backupVs ? { name: contentName } : undefined,
        describe: describeContent,
      }),
    ],
    [
      slot({
        key: 'SourceVolumeSnapshot',
        type: VS_TYPE,
        object: obs.sourceVs,
        expected: sourceExpected,
        describe: describeSnapshot,
      }),
      slot({
        key: 'SourceVolumeSnapshotContent',
        type: VSC_TYPE,
        object: obs.sourceVsc,
        // Only a read error makes the source content worth a finding when it is absent; its VolumeSnapshot speaks for it.
        expected: sourceContentName ? { name: sourceContentName } : undefined,
        describe: describeContent,
      }),
    ],
  ];
  return slots;
}

/** Builds a slot; the source content reports under the source snapshot's subject. */
function slot<T extends KubeObject>(spec: Omit<Slot<T>, 'subject'>): Slot<KubeObject> {
  const subject: FindingSubject = spec.key === 'SourceVolumeSnapshotContent' ? 'SourceVolumeSnapshot' : spec.key;
  return { ...spec, subject } as Slot<KubeObject>;
}

/** The assessment of one slot: the observed object, an unreadable one, a missing one, or nothing. */
function assess(slot: Slot<KubeObject>, context: Context): Assessment | undefined {
  const label = LABELS[slot.key];
  const readError = context.readErrors.get(slot.key);
  const errorLines = readError === undefined ? [] : [readErrorLine(label, slot, readError)];
  if (slot.object) {
    const regarding = referenceTo(slot.object, slot.type, slot.expected?.namespace);
    const warnings = summarizeWarnings(context.events, regarding);
    const state = slot.describe(slot.object, warnings, label);
    const lines = [...state.lines, ...warningLines(label, warnings), ...errorLines];
    return { subject: slot.subject, ...state, lines, regarding, warnings };
  }
  if (readError === undefined && (slot.expected === undefined || slot.key === 'SourceVolumeSnapshotContent')) {
    return undefined;
  }
  const regarding = { ...slot.type, name: slot.expected?.name ?? '<unknown>', ...namespaceOf(slot.expected) };
  const warnings = summarizeWarnings(context.events, regarding);
  const id = namespacedName(regarding);
  const reasons = ABSENT_REASONS[slot.key];
  const absent =
    readError === undefined
      ? { reason: reasons.missing, parts: [`${label.long} ${id} not found`], lines: [`${label.short} ${id} not found`] }
      : {
          reason: reasons.unreadable,
          parts: [`${label.long} ${id} could not be read: ${readError}`],
          lines: errorLines,
        };
  const cause =
    readError === undefined ? `${label.long} ${id} not found` : `cannot read ${label.long} ${id}: ${readError}`;
  const lines = [...absent.lines, ...warningLines(label, warnings)];
  return { subject: slot.subject, healthy: false, regarding, warnings, cause, ...absent, lines };
}

function namespaceOf(place: { namespace?: string } | undefined): { namespace?: string } {
  return place?.namespace ? { namespace: place.namespace } : {};
}

/** The reference of an observed object; its own namespace, or the expected one when the object omits it. */
function referenceTo(
  object: KubeObject,
  type: { apiVersion: string; kind: string },
  expectedNamespace: string | undefined,
): DiagnosedObject {
  const namespace = object.metadata.namespace ?? expectedNamespace;
  return {
    ...type,
    name: object.metadata.name ?? '',
    ...(namespace ? { namespace } : {}),
    ...(object.metadata.uid ? { uid: object.metadata.uid } : {}),
  };
}

function warningLines(label: ObjectLabel, warnings: readonly WarningSummary[]): string[] {
  return warnings.map(
    (warning) =>
      `${label.short} event reason ${warning.reason}, message ${orNone(warning.message)} (x${warning.count})`,
  );
}

function readErrorLine(label: ObjectLabel, slot: Slot<KubeObject>, message: string): string {
  const name = slot.object?.metadata.name ?? slot.expected?.name;
  const namespace = slot.object?.metadata.namespace ?? slot.expected?.namespace;
  const id = name ? namespacedName({ name, namespace }) : '<unknown>';
  return `error getting ${label.long} ${id}, err: ${singleLine(message)}`;
}

/**
 * Folds the source content into the source snapshot's finding. The content decides the finding when it is observed
 * and is the one that fails, or when it carries the error behind a snapshot that is merely not ready.
 */
function foldInto([snapshot, content]: Assessment[]): Assessment {
  if (!snapshot || !content) throw new Error('foldInto needs a snapshot and a content assessment');
  const contentFails =
    content.reason === Reason.VolumeSnapshotContentError || content.reason === Reason.VolumeSnapshotContentNotReady;
  const contentExplains =
    contentFails &&
    (snapshot.healthy ||
      (snapshot.reason === Reason.VolumeSnapshotNotReady && content.reason === Reason.VolumeSnapshotContentError));
  const decider = contentExplains ? content : snapshot;
  return {
    ...decider,
    parts: [...snapshot.parts, ...content.parts],
    lines: [...snapshot.lines, ...content.lines],
    warnings: [...snapshot.warnings, ...content.warnings].sort(compareNewestFirst),
  };
}

/** The cause of the deepest failing object, or a statement that everything looks healthy. */
function chooseCause(assessments: readonly Assessment[], du: DataUpload): string {
  const bySubject = new Map(assessments.map((assessment) => [assessment.subject, assessment]));
  const pod = bySubject.get('BackupPod');
  for (const subject of CAUSE_ORDER) {
    const assessment = bySubject.get(subject);
    if (!assessment || assessment.healthy || waitsForUnschedulablePod(assessment, pod)) continue;
    return assessment.cause;
  }
  if (pod) return `all exposed objects are healthy: ${pod.cause}`;
  return `no problem found in the exposed objects of DataUpload ${namespacedName(du.metadata)}`;
}

/**
 * A Pending PVC with no Warning is what a WaitForFirstConsumer class shows until its pod is scheduled; when the pod
 * cannot be scheduled, the scheduler's message says why and the PVC is only waiting.
 */
function waitsForUnschedulablePod(assessment: Assessment, pod: Assessment | undefined): boolean {
  return (
    assessment.reason === Reason.BackupPVCNotBound &&
    assessment.warnings.length === 0 &&
    pod?.reason === Reason.BackupPodUnschedulable
  );
}

function toFinding(assessment: Assessment): Finding {
  const note = [...assessment.parts, formatWarningsForNote(assessment.warnings)].filter(Boolean).join('; ');
  return {
    subject: assessment.subject,
    healthy: assessment.healthy,
    reason: assessment.reason,
    message: truncateUtf8(singleLine(note), EVENT_NOTE_MAX_BYTES),
    regarding: assessment.regarding,
  };
}

/** Read errors by the object they are about; the first message wins when one object is named twice. */
function matchedReadErrors(readErrors: readonly { object: string; message: string }[]): Map<ReadKey, string> {
  const matched = new Map<ReadKey, string>();
  for (const { object, message } of readErrors) {
    const key = readKeyOf(object);
    if (key && !matched.has(key)) matched.set(key, message);
  }
  return matched;
}

function unmatchedReadErrorLines(readErrors: readonly { object: string; message: string }[]): string[] {
  const seen = new Set<ReadKey>();
  const lines: string[] = [];
  for (const { object, message } of readErrors) {
    const key = readKeyOf(object);
    if (key && !seen.has(key)) {
      seen.add(key);
      continue;
    }
    lines.push(`error getting ${singleLine(object)}, err: ${singleLine(message)}`);
  }
  return lines;
}

function readKeyOf(object: string): ReadKey | undefined {
  return READ_KEY_ALIASES.get(object.toLowerCase().replace(/[^a-z]/g, ''));
}
