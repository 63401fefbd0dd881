import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildEvent,
  eventName,
  EventRecorder,
  isQualifiedName,
  seriesKey,
  truncateUtf8,
  type EventInput,
  type EventRecorderOptions,
  type EventsV1Event,
} from '../../src/runtime/event-recorder.js';
import { Resources } from '../../src/runtime/kube-api.js';
import { apiError, InMemoryKube } from './in-memory-kube.js';
import { deferred, ManualClock } from './manual-clock.js';

const T0 = Date.parse('2026-11-23T21:50:18.123Z') + 0.456;
const CONTROLLER = 'dataupload-operator.velero.io/controller';

const du = {
  apiVersion: 'velero.io/v2alpha1',
  kind: 'DataUpload',
  name: 'backup-1-x7k2p',
  namespace: 'velero',
  uid: 'u-1',
};

function input(overrides: Partial<EventInput> = {}): EventInput {
  return {
    regarding: du,
    type: 'Warning',
    reason: 'BackupPodUnschedulable',
    action: 'Expose',
    note: '0/3 nodes are available: 3 Insufficient cpu',
    ...overrides,
  };
}

function setup(options: Partial<EventRecorderOptions> = {}) {
  const api = new InMemoryKube();
  const clock = new ManualClock(T0);
  const recorder = new EventRecorder({
    api,
    clock,
    random: () => 0.5,
    reportingController: CONTROLLER,
    reportingInstance: 'dataupload-operator-6c9f-abcde',
    ...options,
  });
  const events = (): EventsV1Event[] => api.all<EventsV1Event>(Resources.events);
  return { api, clock, recorder, events };
}

describe('event building', () => {
  test('a first occurrence becomes an events.k8s.io/v1 Event with MicroTime, source and a nanosecond name', () => {
    const e = buildEvent(
      input(),
      { reportingController: CONTROLLER, reportingInstance: 'pod-1' },
      { name: 'n', now: T0 },
    );
    assert.equal(e.apiVersion, 'events.k8s.io/v1');
    assert.equal(e.metadata.namespace, 'velero');
    assert.equal(e.eventTime, '2026-11-23T21:50:18.123456Z');
    assert.equal(e.reportingController, CONTROLLER);
    assert.equal(e.series, undefined);
    assert.equal(eventName('backup-1-x7k2p', 0x187b0c4f1a2b3c4dn), 'backup-1-x7k2p.187b0c4f1a2b3c4d');
  });

  test('an Event about a cluster-scoped object goes to the default namespace', () => {
    const pv = { apiVersion: 'v1', kind: 'PersistentVolume', name: 'pv-1', uid: 'u-2' };
    const e = buildEvent(
      input({ regarding: pv }),
      { reportingController: CONTROLLER, reportingInstance: 'p' },
      { name: 'n', now: T0 },
    );
    assert.equal(e.metadata.namespace, 'default');
  });

  test('a note longer than 1024 bytes is cut on a character boundary', () => {
    const note = 'é'.repeat(600); // 1200 bytes
    const e = buildEvent(
      input({ note }),
      { reportingController: CONTROLLER, reportingInstance: 'p' },
      { name: 'n', now: T0 },
    );
    assert.equal(Buffer.byteLength(e.note ?? ''), 1024);
    assert.equal(truncateUtf8('aé', 2), 'a');
  });

  test('a very long regarding name still gives a name within 253 characters', () => {
    assert.equal(eventName('a'.repeat(253), 1n).length, 253);
  });

  test('the note is not part of the series key; reason, action and related are', () => {
    const key = (i: EventInput) => seriesKey(i, CONTROLLER, 'p');
    assert.equal(key(input({ note: 'one' })), key(input({ note: 'two' })));
    assert.notEqual(key(input()), key(input({ reason: 'Other' })));
    assert.notEqual(key(input()), key(input({ action: 'Cleanup' })));
    const pod = { apiVersion: 'v1', kind: 'Pod', name: 'backup-1-x7k2p', namespace: 'velero', uid: 'p-1' };
    assert.notEqual(key(input()), key(input({ related: pod })));
  });

  test('reportingController must be a qualified name', () => {
    assert.equal(isQualifiedName(CONTROLLER), true);
    assert.equal(isQualifiedName('dataupload-operator'), true);
    assert.equal(isQualifiedName('Not_A/Prefix/name'), false);
    assert.equal(isQualifiedName('bad prefix/controller'), false);
    assert.throws(
      () => new EventRecorder({ api: new InMemoryKube(), reportingController: 'a b', reportingInstance: 'p' }),
      /must be a qualified name/,
    );
    assert.throws(
      () =>
        new EventRecorder({
          api: new InMemoryKube(),
          reportingController: CONTROLLER,
          reportingInstance: 'p'.repeat(129),
        }),
      /1\.\.128 bytes/,
    );
  });
});

describe('EventRecorder', () => {
  test('the first occurrence is created as one Event without a series', async () => {
    const { api, clock, recorder, events } = setup();
    recorder.record(input());
    await clock.advance(0);
    const [e, ...rest] = events();
    assert.equal(rest.length, 0);
    assert.ok(e);
    assert.match(e.metadata.name ?? '', /^backup-1-x7k2p\.[0-9a-f]+$/);
    assert.equal(e.series, undefined);
    assert.equal(e.note, '0/3 nodes are available: 3 Insufficient cpu');
    assert.deepEqual(e.regarding, du);
    assert.equal(api.callsOf('create', 'events').length, 1);
    recorder.close();
  });

  test('the second occurrence patches series.count 2 at once', async () => {
    const { api, clock, recorder, events } = setup();
    recorder.record(input());
    await clock.advance(0);
    await clock.advance(1_000);
    recorder.record(input({ note: 'a different note' }));
    await clock.advance(0);
    const patches = api.callsOf('patch', 'events');
    assert.equal(patches.length, 1);
    assert.deepEqual(patches[0]?.body, { series: { count: 2, lastObservedTime: '2026-11-23T21:50:19.123456Z' } });
    assert.deepEqual(events()[0]?.series, { count: 2, lastObservedTime: '2026-11-23T21:50:19.123456Z' });
    assert.equal(events()[0]?.note, '0/3 nodes are available: 3 Insufficient cpu', 'the first note stays');
    recorder.close();
  });

  test('100 occurrences become one Event with series.count 100 in a handful of writes', async () => {
    const { clock, recorder, events } = setup({ flushIntervalMs: 2_000 });
    for (let i = 0; i < 100; i++) {
      recorder.record(input());
      await clock.advance(10);
    }
    await clock.advance(2_000);
    const all = events();
    assert.equal(all.length, 1);
    assert.equal(all[0]?.series?.count, 100);
    assert.ok(recorder.writes <= 4, `${recorder.writes} writes`);
    assert.equal(recorder.dropped, 0);
    recorder.close();
  });

  test('different reasons on the same object are separate Events', async () => {
    const { clock, recorder, events } = setup();
    recorder.record(input());
    recorder.record(input({ reason: 'BackupPVCPending' }));
    await clock.advance(0);
    const names = events().map((e) => e.metadata.name);
    assert.equal(names.length, 2);
    assert.notEqual(names[0], names[1], 'names stay unique within one clock tick');
    recorder.close();
  });

  test('a series whose Event vanished is created again, with its count', async () => {
    const { api, clock, recorder, events } = setup();
    recorder.record(input());
    await clock.advance(0);
    const name = events()[0]?.metadata.name ?? '';
    api.remove(Resources.events, name, 'velero');
    recorder.record(input());
    await clock.advance(0);
    const recreated = events();
    assert.equal(recreated.length, 1);
    assert.equal(recreated[0]?.metadata.name, name);
    assert.equal(recreated[0]?.series?.count, 2);
  });

  test('transport errors are retried with backoff; the write lands once the API answers', async () => {
    const { api, clock, recorder, events } = setup();
    let failures = 2;
    api.interceptor = () => {
      if (failures-- > 0) throw apiError(0, 'Transport', 'socket hang up');
    };
    recorder.record(input());
    await clock.advance(0);
    assert.equal(events().length, 0);
    await clock.advance(1_000); // first retry after 1 s ± 25 %
    assert.equal(events().length, 0);
    await clock.advance(2_000); // second retry after 2 s ± 25 %
    assert.equal(events().length, 1);
    assert.equal(recorder.stats().failed, 0);
    assert.equal(recorder.writes, 3);
    recorder.close();
  });

  test('a rejected write (403) is not retried and is counted as failed', async () => {
    const { api, clock, recorder } = setup();
    api.interceptor = () => {
      throw apiError(403, 'Forbidden', 'events.events.k8s.io is forbidden');
    };
    recorder.record(input());
    await clock.advance(60_000);
    assert.equal(recorder.writes, 1);
    assert.equal(recorder.stats().failed, 1);
    recorder.close();
  });

  test('record never throws and never waits, even while the API hangs', async () => {
    const { api, clock, recorder } = setup();
    api.interceptor = () => new Promise<void>(() => undefined);
    const started = performance.now();
    for (let i = 0; i < 50; i++) recorder.record(input({ reason: `Reason${i}` }));
    assert.ok(performance.now() - started < 200);
    await clock.advance(0);
    assert.equal(recorder.stats().pending, 49, 'one write in flight, the rest queued');
    const flushed = recorder.flush(1_000);
    await clock.advance(1_000);
    assert.equal(await flushed, false, 'flush gives up at its timeout');
    recorder.close();
  });

  test('a full queue drops writes and counts them', async () => {
    const { api, clock, recorder } = setup({ maxPending: 3 });
    const gate = deferred();
    api.interceptor = () => gate.promise;
    for (let i = 0; i < 10; i++) recorder.record(input({ reason: `Reason${i}` }));
    await clock.advance(0);
    // one in flight was taken off the queue, 3 queued, the rest dropped
    assert.equal(recorder.dropped, 6);
    gate.resolve();
    assert.equal(await recorder.flush(5_000), true);
    assert.equal(api.all(Resources.events).length, 4);
    recorder.close();
  });

  test('invalid input is dropped and counted, not sent', async () => {
    const { api, clock, recorder } = setup();
    recorder.record(input({ reason: '' }));
    recorder.record(input({ type: 'Error' as 'Warning' }));
    await clock.advance(0);
    assert.equal(api.calls.length, 0);
    assert.equal(recorder.dropped, 2);
    recorder.close();
  });

  test('the series map is capped: the least recently seen series is forgotten first', async () => {
    const { clock, recorder, events } = setup({ maxSeries: 2 });
    recorder.record(input({ reason: 'A' }));
    recorder.record(input({ reason: 'B' }));
    recorder.record(input({ reason: 'A' })); // A is now the most recent
    recorder.record(input({ reason: 'C' })); // evicts B
    await clock.advance(0);
    assert.equal(recorder.stats().series, 2);
    recorder.record(input({ reason: 'B' })); // a new series: a second B Event
    await clock.advance(0);
    assert.equal(events().filter((e) => e.reason === 'B').length, 2);
    assert.equal(events().filter((e) => e.reason === 'A').length, 1);
    recorder.close();
  });

  test('an idle series gets a final write of its count and is forgotten after six minutes', async () => {
    const { clock, recorder, events } = setup({ flushIntervalMs: 60 * 60_000 });
    await clock.advance(1_000);
    recorder.record(input());
    recorder.record(input());
    await clock.advance(0);
    for (let i = 0; i < 3; i++) recorder.record(input());
    await clock.advance(0);
    assert.equal(events()[0]?.series?.count, 2, 'later repeats wait for the flush');
    await clock.advance(6 * 60_000 - 1_000 + 1);
    assert.equal(recorder.stats().series, 1, 'not idle for six minutes yet at the first pass');
    await clock.advance(6 * 60_000);
    assert.equal(events()[0]?.series?.count, 5);
    assert.equal(recorder.stats().series, 0);
    recorder.close();
  });

  test('flush writes pending counts and resolves once the queue is empty', async () => {
    const { clock, recorder, events } = setup({ flushIntervalMs: 60_000 });
    for (let i = 0; i < 7; i++) recorder.record(input());
    await clock.advance(0);
    const flushed = recorder.flush(5_000);
    await clock.advance(0);
    assert.equal(await flushed, true);
    assert.equal(events()[0]?.series?.count, 7);
    recorder.close();
    recorder.record(input());
    assert.equal(recorder.dropped, 1, 'after close, occurrences are dropped');
  });

  test('the heartbeat re-writes active series', async () => {
    const { api, clock, recorder } = setup({ heartbeatMs: 10_000, idleTimeoutMs: 60_000 });
    recorder.record(input());
    recorder.record(input());
    await clock.advance(0);
    const before = api.callsOf('patch', 'events').length;
    await clock.advance(10_000);
    assert.equal(api.callsOf('patch', 'events').length, before + 1);
    recorder.close();
  });

  test('hooks see every occurrence and every write', async () => {
    const seen: string[] = [];
    const { clock, recorder } = setup({
      hooks: { recorded: (type, reason) => seen.push(`${type}/${reason}`), apiWrite: (verb) => seen.push(verb) },
    });
    recorder.record(input());
    recorder.record(input());
    await clock.advance(0);
    assert.deepEqual(seen, ['Warning/BackupPodUnschedulable', 'create', 'Warning/BackupPodUnschedulable', 'patch']);
    recorder.close();
  });
});
