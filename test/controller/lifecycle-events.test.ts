import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EventRecord } from '../../src/controller/executor.js';
import { CoalescingEventSink } from '../../src/controller/lifecycle-events.js';

function setup() {
  const recorded: EventRecord[] = [];
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  let now = 1_000;
  const sink = new CoalescingEventSink(
    { record: (e) => recorded.push(e) },
    {
      windowMs: 30_000,
      now: () => now,
      schedule: (fn, ms) => {
        const t = { fn, ms, cancelled: false };
        timers.push(t);
        return () => (t.cancelled = true);
      },
    },
  );
  const event = (uid: string, type: 'Normal' | 'Warning', reason: string): EventRecord => ({
    regarding: { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: uid, namespace: 'velero', uid },
    type,
    reason,
    action: reason,
    note: reason,
  });
  return { sink, recorded, timers, event, tick: (ms: number) => (now += ms) };
}

const reasons = (events: EventRecord[]) => events.map((e) => `${e.regarding.uid}:${e.reason}`);

test('a DataUpload prepared within the window gets one Prepared Event instead of three', () => {
  const { sink, recorded, timers, event, tick } = setup();
  sink.record(event('a', 'Normal', 'Accepted'));
  tick(300);
  sink.record(event('a', 'Normal', 'Exposed'));
  sink.record(event('a', 'Normal', 'Prepared'));
  assert.deepEqual(reasons(recorded), ['a:Prepared']);
  assert.equal(timers.length, 1);
  assert.equal(timers[0]!.cancelled, true);
  assert.equal(sink.size(), 0);
});

test('a DataUpload not prepared within the window gets its trail, stamped with when it happened', () => {
  const { sink, recorded, timers, event, tick } = setup();
  sink.record(event('b', 'Normal', 'Accepted'));
  tick(500);
  sink.record(event('b', 'Normal', 'Exposed'));
  timers[0]!.fn();
  assert.deepEqual(reasons(recorded), ['b:Accepted', 'b:Exposed']);
  assert.deepEqual(
    recorded.map((e) => e.at),
    [1_000, 1_500],
  );
});

test('a Warning, cancel or failure releases the held trail first, in order; other DataUploads are unaffected', () => {
  const { sink, recorded, event } = setup();
  sink.record(event('c', 'Normal', 'Accepted'));
  sink.record(event('d', 'Normal', 'Accepted'));
  sink.record(event('c', 'Normal', 'Exposed'));
  sink.record(event('c', 'Warning', 'PrepareTimeout'));
  assert.deepEqual(reasons(recorded), ['c:Accepted', 'c:Exposed', 'c:PrepareTimeout']);
  sink.record(event('d', 'Normal', 'Canceled'));
  assert.deepEqual(reasons(recorded).slice(3), ['d:Accepted', 'd:Canceled']);
  sink.record(event('e', 'Normal', 'Accepted'));
  sink.releaseAll();
  assert.deepEqual(reasons(recorded).slice(5), ['e:Accepted'], 'shutdown records what is held');
});

test('while the controller is busy Normal Events wait, in order, until it is idle or for at most the maximum delay', () => {
  const recorded: EventRecord[] = [];
  const timers: (() => void)[] = [];
  let now = 0;
  let busy = true;
  const sink = new CoalescingEventSink(
    { record: (e) => recorded.push(e) },
    {
      now: () => now,
      busy: () => busy,
      maxDelayMs: 120_000,
      schedule: (fn) => {
        timers.push(fn);
        return () => undefined;
      },
    },
  );
  const ev = (uid: string, type: 'Normal' | 'Warning', reason: string): EventRecord => ({
    regarding: { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: uid, namespace: 'velero', uid },
    type,
    reason,
    action: reason,
    note: reason,
  });
  sink.record(ev('a', 'Normal', 'Prepared'));
  now = 1_000;
  sink.record(ev('b', 'Warning', 'PrepareTimeout'));
  sink.record(ev('c', 'Normal', 'Prepared'));
  assert.deepEqual(reasons(recorded), ['b:PrepareTimeout'], 'Warnings are never deferred');
  now = 120_500;
  timers.shift()!();
  assert.deepEqual(reasons(recorded), ['b:PrepareTimeout', 'a:Prepared'], 'the maximum delay is kept while busy');
  assert.equal(recorded[1]!.at, 0, 'stamped with when it happened');
  busy = false;
  timers.shift()!();
  assert.deepEqual(reasons(recorded), ['b:PrepareTimeout', 'a:Prepared', 'c:Prepared'], 'idle: the rest goes');
});
