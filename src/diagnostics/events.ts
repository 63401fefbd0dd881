/**
 * Which core/v1 Events concern an object, and a short, deduplicated summary of its Warning events.
 */
import type { CoreEvent } from '../api/index.js';
import { singleLine } from './text.js';

/** The object a finding is about: what an Event's `involvedObject` and a Finding's `regarding` name. */
export interface DiagnosedObject {
  apiVersion: string;
  kind: string;
  name: string;
  /** Empty or missing for cluster-scoped objects (PersistentVolume, VolumeSnapshotContent). */
  namespace?: string;
  uid?: string;
}

/** One distinct Warning (same reason and message), with the occurrences of all its Events added up. */
export interface WarningSummary {
  reason: string;
  message: string;
  count: number;
  /** Milliseconds since the epoch of the newest occurrence; 0 when the Event carries no time at all. */
  lastSeen: number;
}

/** At most this many Warnings are appended to an Event note; the `lines` report lists them all. */
export const MAX_WARNINGS_IN_NOTE = 3;

/**
 * Whether `event` is about `object`. Both UIDs known: they must be equal, so Events of an earlier object with the
 * same name are not blamed on this one. Otherwise kind, name and namespace must match.
 */
export function eventConcerns(event: CoreEvent, object: DiagnosedObject): boolean {
  const involved = event.involvedObject;
  if (involved.uid && object.uid) return involved.uid === object.uid;
  return (
    involved.kind === object.kind &&
    involved.name === object.name &&
    (involved.namespace ?? '') === (object.namespace ?? '')
  );
}

/** How many times an Event happened: the series count (events.k8s.io), the legacy count, or once. */
export function occurrences(event: CoreEvent): number {
  const count = event.series?.count ?? event.count;
  return count !== undefined && count > 0 ? count : 1;
}

/** When an Event last happened, in milliseconds; the newest timestamp the Event carries, 0 if none parses. */
export function lastSeen(event: CoreEvent): number {
  const candidates = [
    event.series?.lastObservedTime,
    event.lastTimestamp,
    event.eventTime,
    event.firstTimestamp,
    event.metadata.creationTimestamp,
  ];
  for (const candidate of candidates) {
    const time = candidate ? Date.parse(candidate) : NaN;
    if (!Number.isNaN(time)) return time;
  }
  return 0;
}

/**
 * The Warning events about `object`, deduplicated by reason and message (counts summed, newest time kept), newest
 * first. Ties are broken by reason and message, so the order never depends on the order of `events`.
 */
export function summarizeWarnings(events: readonly CoreEvent[], object: DiagnosedObject): WarningSummary[] {
  const byKey = new Map<string, WarningSummary>();
  for (const event of events) {
    if (event.type !== 'Warning' || !eventConcerns(event, object)) continue;
    const reason = event.reason ?? '';
    const message = singleLine(event.message ?? '');
    const key = JSON.stringify([reason, message]);
    const previous = byKey.get(key);
    byKey.set(key, {
      reason,
      message,
      count: (previous?.count ?? 0) + occurrences(event),
      lastSeen: Math.max(previous?.lastSeen ?? 0, lastSeen(event)),
    });
  }
  return [...byKey.values()].sort(compareNewestFirst);
}

/** Orders Warnings newest first, then by reason and message, so equal times still sort the same way every time. */
export function compareNewestFirst(a: WarningSummary, b: WarningSummary): number {
  if (a.lastSeen !== b.lastSeen) return b.lastSeen - a.lastSeen;
  if (a.reason !== b.reason) return a.reason < b.reason ? -1 : 1;
  return a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
}

/** `<reason>: <message> (xN)`, the way one Warning appears in notes and report lines. */
export function formatWarning(warning: WarningSummary): string {
  const text = warning.message ? `${warning.reason}: ${warning.message}` : warning.reason;
  return `${text} (x${warning.count})`;
}

/** `Warning events: a (x2); b (x1)` with the newest {@link MAX_WARNINGS_IN_NOTE}, or `''` when there are none. */
export function formatWarningsForNote(warnings: readonly WarningSummary[]): string {
  if (warnings.length === 0) return '';
  return `Warning events: ${warnings.slice(0, MAX_WARNINGS_IN_NOTE).map(formatWarning).join('; ')}`;
}
