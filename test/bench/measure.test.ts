import assert from 'node:assert/strict';
import { mkdtempSync, appendFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  countWrites,
  cpuSeconds,
  cpuSecondsFromStat,
  fileSize,
  formatReport,
  percentile,
  readLinesSince,
  statusFieldBytes,
  type SystemResult,
} from './measure.js';

const OPERATOR = 'system:serviceaccount:velero:dataupload-operator';

function audit(verb: string, resource: string, o: { user?: string; code?: number; sub?: string; stage?: string } = {}) {
  return JSON.stringify({
    kind: 'Event',
    stage: o.stage ?? 'ResponseComplete',
    verb,
    user: { username: o.user ?? OPERATOR },
    objectRef: { resource, ...(o.sub ? { subresource: o.sub } : {}) },
    responseStatus: { code: o.code ?? 200 },
  });
}

describe('cpuSecondsFromStat', () => {
  test('adds utime and stime (fields 14 and 15) and divides by the clock ticks', () => {
    const stat = '1234 (node) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 100 0 0';
    assert.equal(cpuSecondsFromStat(stat, 100), 3);
  });

  test('a command name with spaces and parentheses does not shift the fields', () => {
    const stat = '77 (a (weird) name) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0';
    assert.equal(cpuSecondsFromStat(stat, 10), 1);
  });

  test('this process has used some CPU, and a process that does not exist has no reading', () => {
    assert.ok((cpuSeconds(process.pid) ?? 0) > 0);
    assert.equal(cpuSeconds(2 ** 22 + 7), undefined);
  });
});

describe('statusFieldBytes', () => {
  test('reads a kB field of /proc/<pid>/status in bytes', () => {
    const status = 'Name:\tnode\nVmHWM:\t  153600 kB\nVmRSS:\t  102400 kB\n';
    assert.equal(statusFieldBytes(status, 'VmHWM'), 150 * 1024 * 1024);
    assert.equal(statusFieldBytes(status, 'VmSwap'), undefined);
  });
});

describe('percentile', () => {
  test('nearest rank: p50 of 1..10 is 5, p99 is 10, p100 the maximum', () => {
    const values = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    assert.equal(percentile(values, 50), 5);
    assert.equal(percentile(values, 99), 10);
    assert.equal(percentile(values, 100), 10);
    assert.equal(percentile(values, 0), 1);
  });

  test('no values give NaN', () => {
    assert.ok(Number.isNaN(percentile([], 50)));
  });
});

describe('countWrites', () => {
  test("counts only the given users' accepted writes, Events and Leases apart, and refusals on their own", () => {
    const lines = [
      audit('patch', 'datauploads'),
      audit('patch', 'datauploads', { code: 409 }),
      audit('create', 'pods'),
      audit('create', 'events'),
      audit('patch', 'events'),
      audit('update', 'leases'),
      audit('patch', 'volumesnapshotcontents', { sub: 'status' }),
      audit('create', 'pods', { user: 'system:serviceaccount:velero:velero' }),
      audit('create', 'pods', { stage: 'RequestReceived' }),
      'not json',
    ];
    const counts = countWrites(lines, new Set([OPERATOR]));
    assert.deepEqual(counts, {
      objects: 3,
      events: 2,
      leases: 1,
      refused: 1,
      byVerbAndResource: {
        'patch datauploads': 1,
        'create pods': 1,
        'create events': 1,
        'patch events': 1,
        'update leases': 1,
        'patch volumesnapshotcontents/status': 1,
      },
      refusedByVerbAndResource: { 'patch datauploads 409': 1 },
    });
  });
});

describe('readLinesSince', () => {
  test('returns the complete lines appended after an offset, never a half-written last line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'measure-test-'));
    try {
      const file = join(dir, 'audit.log');
      assert.equal(fileSize(file), 0);
      assert.deepEqual(readLinesSince(file, 0), []);
      appendFileSync(file, 'one\ntwo\n');
      const offset = fileSize(file);
      appendFileSync(file, 'three\nfour\nfi');
      assert.deepEqual(readLinesSince(file, offset), ['three', 'four']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('formatReport', () => {
  const result = (system: string, makespan: number, cpuPerDu: number): SystemResult => ({
    system,
    count: 100,
    prepared: 100,
    failed: 0,
    makespanSeconds: makespan,
    perSecond: 100 / makespan,
    p50Seconds: makespan / 2,
    p99Seconds: makespan,
    writes: {
      objects: 1000,
      events: 300,
      leases: 2,
      refused: 2,
      byVerbAndResource: { 'create pods': 100 },
      refusedByVerbAndResource: { 'patch datauploads 429': 2 },
      perDataUpload: 10,
      eventsPerDataUpload: 3,
    },
    cpuSeconds: cpuPerDu * 100,
    cpuSecondsPerDataUpload: cpuPerDu,
    peakRssBytes: 100 * 1024 * 1024,
    processes: [{ name: 'p', pid: 1, cpuSeconds: cpuPerDu * 100, peakRssBytes: 100 * 1024 * 1024 }],
    controlPlaneCpuSeconds: { 'kube-apiserver': 12.5 },
    benchCpuSeconds: 1,
    loadAverageStart: [1, 1, 1],
    loadAverageEnd: [2, 2, 2],
  });

  test('one row per system, then the ratios ours/floor and velero/ours', () => {
    const text = formatReport([result('ours', 20, 0.02), result('floor', 10, 0.01), result('velero', 60, 0.05)]);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^system\s+N\s+prepared\s+makespan s/);
    assert.match(
      lines[1]!,
      /^ours\s+100\s+100\s+20\.00\s+5\.0\s+10\.00\s+20\.00\s+10\.00\s+3\.00\s+2\s+2\.00\s+20\.00\s+100$/,
    );
    assert.match(text, /^ours\/floor: makespan 2\.00×, p50 2\.00×, p99 2\.00×, writes\/DU 1\.00×, CPU\/DU 2\.00×/m);
    assert.match(text, /^velero\/ours: makespan 3\.00×/m);
    assert.match(text, /^ours: load average 1\.00 1\.00 1\.00 → 2\.00 2\.00 2\.00$/m);
    assert.match(text, /^ {2}writes: create pods 100$/m);
    assert.match(text, /^ {2}refused: patch datauploads 429 2$/m);
  });

  test('a missing system leaves its ratio out', () => {
    const text = formatReport([result('ours', 20, 0.02)]);
    assert.doesNotMatch(text, /ours\/floor/);
  });
});
