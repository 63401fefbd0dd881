import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  eventConcerns,
  formatWarningsForNote,
  lastSeen,
  occurrences,
  summarizeWarnings,
} from '../../src/diagnostics/events.js';
import type { DiagnosedObject } from '../../src/diagnostics/events.js';
import type { CoreEvent } from '../../src/api/index.js';
import { event } from './fixtures.js';

const pv: DiagnosedObject = { apiVersion: 'v1', kind: 'PersistentVolume', name: 'pvc-1', uid: 'uid-1' };

function pvEvent(overrides: Partial<CoreEvent> = {}): CoreEvent {
  return {
    ...event({ kind: 'PersistentVolume', name: 'pvc-1', reason: 'VolumeFailedDelete', message: 'm' }),
    ...overrides,
  };
}

test('an event matches by uid when both sides know it, else by kind, name and namespace', () => {
  assert.equal(
    eventConcerns(pvEvent({ involvedObject: { kind: 'PersistentVolume', name: 'pvc-1', uid: 'uid-1' } }), pv),
    true,
  );
  assert.equal(
    eventConcerns(pvEvent({ involvedObject: { kind: 'PersistentVolume', name: 'pvc-1', uid: 'uid-0' } }), pv),
    false,
  );
  assert.equal(eventConcerns(pvEvent({ involvedObject: { kind: 'PersistentVolume', name: 'pvc-1' } }), pv), true);
  assert.equal(
    eventConcerns(pvEvent({ involvedObject: { kind: 'PersistentVolume', name: 'pvc-1', namespace: 'x' } }), pv),
    false,
  );
  assert.equal(eventConcerns(pvEvent({ involvedObject: { kind: 'Pod', name: 'pvc-1' } }), pv), false);
});

test('occurrences come from the series count, then the count, else one', () => {
  assert.equal(occurrences(pvEvent({ series: { count: 9 }, count: 2 })), 9);
  assert.equal(occurrences(pvEvent({ count: 2 })), 2);
  assert.equal(occurrences(pvEvent({ count: 0 })), 1);
  assert.equal(occurrences(pvEvent({ count: undefined })), 1);
});

test('the last time comes from the series, then lastTimestamp, eventTime, firstTimestamp and creation', () => {
  const base = pvEvent({ lastTimestamp: null, firstTimestamp: null, eventTime: null, series: undefined });
  assert.equal(
    lastSeen({ ...base, metadata: { creationTimestamp: '2026-01-01T00:00:00Z' } }),
    Date.parse('2026-01-01T00:00:00Z'),
  );
  assert.equal(lastSeen({ ...base, eventTime: '2026-01-02T00:00:00.123456Z' }), Date.parse('2026-01-02T00:00:00.123Z'));
  assert.equal(
    lastSeen({ ...base, lastTimestamp: '2026-01-03T00:00:00Z', series: { lastObservedTime: '2026-01-04T00:00:00Z' } }),
    Date.parse('2026-01-04T00:00:00Z'),
  );
  assert.equal(lastSeen({ ...base, metadata: {} }), 0);
});

test('warnings are deduplicated by reason and message with their counts summed, newest first', () => {
  const events = [
    pvEvent({ count: 2, lastTimestamp: '2026-01-01T00:00:00Z' }),
    pvEvent({ count: 3, lastTimestamp: '2026-01-05T00:00:00Z' }),
    pvEvent({ message: 'other', lastTimestamp: '2026-01-03T00:00:00Z' }),
    pvEvent({ type: 'Normal', message: 'normal events are not warnings', lastTimestamp: '2026-01-09T00:00:00Z' }),
  ];
  assert.deepEqual(summarizeWarnings(events, pv), [
    { reason: 'VolumeFailedDelete', message: 'm', count: 5, lastSeen: Date.parse('2026-01-05T00:00:00Z') },
    { reason: 'VolumeFailedDelete', message: 'other', count: 1, lastSeen: Date.parse('2026-01-03T00:00:00Z') },
  ]);
});

test('a note holds at most three warnings and nothing when there are none', () => {
  const warnings = ['a', 'b', 'c', 'd'].map((reason, index) => ({
    reason,
    message: `m${index}`,
    count: 1,
    lastSeen: 0,
  }));
  assert.equal(formatWarningsForNote(warnings), 'Warning events: a: m0 (x1); b: m1 (x1); c: m2 (x1)');
  assert.equal(formatWarningsForNote([]), '');
  assert.equal(formatWarningsForNote([{ reason: 'R', message: '', count: 2, lastSeen: 0 }]), 'Warning events: R (x2)');
});
