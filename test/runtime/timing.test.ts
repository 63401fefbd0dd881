import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatMicroTime, parseMicroTime, sleep, toUnixNanos } from '../../src/runtime/timing.js';
import { ManualClock } from './manual-clock.js';

describe('MicroTime', () => {
  test('epoch milliseconds format with exactly six fractional digits', () => {
    const ms = Date.parse('2026-11-23T21:50:18.123Z') + 0.456;
    assert.equal(formatMicroTime(ms), '2026-11-23T21:50:18.123456Z');
    assert.equal(formatMicroTime(Date.parse('2026-01-01T00:00:00Z')), '2026-01-01T00:00:00.000000Z');
  });

  test('API timestamps of any precision parse to microseconds', () => {
    const ms = Date.parse('2026-11-23T21:50:18.123Z');
    assert.equal(parseMicroTime('2026-11-23T21:50:18.123456Z'), ms + 0.456);
    assert.equal(parseMicroTime('2026-11-23T21:50:18.123456789Z'), ms + 0.456);
    assert.equal(parseMicroTime('2026-11-23T21:50:18Z'), ms - 123);
    assert.equal(parseMicroTime('2026-11-23T22:50:18.123+01:00'), ms);
    assert.equal(parseMicroTime('yesterday'), undefined);
    assert.equal(parseMicroTime(null), undefined);
  });

  test('format and parse round-trip', () => {
    const s = '2026-11-23T21:50:18.000001Z';
    assert.equal(formatMicroTime(parseMicroTime(s) ?? 0), s);
  });

  test('unix nanoseconds are exact beyond double precision', () => {
    assert.equal(toUnixNanos(1_700_000_000_123.456), 1_700_000_000_123_456_000n);
  });
});

describe('sleep', () => {
  test('resolves after the delay on the injected clock, or at once on abort', async () => {
    const clock = new ManualClock(0);
    let done = false;
    void sleep(clock, 1_000).then(() => (done = true));
    await clock.advance(999);
    assert.equal(done, false);
    await clock.advance(1);
    assert.equal(done, true);
    const abort = new AbortController();
    const aborted = sleep(clock, 60_000, abort.signal);
    abort.abort();
    await aborted;
    assert.equal(clock.pendingTimers(), 0, 'the timer was cancelled');
  });
});
