import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGoDuration, parseGoDuration } from '../../src/api/index.js';

const cases: [string, number][] = [
  ['10m0s', 600_000],
  ['30m', 1_800_000],
  ['1h30m', 5_400_000],
  ['1.5s', 1500],
  ['300ms', 300],
  ['2h45m10.5s', 9_910_500],
  ['0', 0],
  ['-1m', -60_000],
];
for (const [text, ms] of cases) {
  test(`"${text}" parses to ${ms} ms`, () => assert.equal(parseGoDuration(text), ms));
}

test('text that is not a Go duration parses to undefined', () => {
  for (const text of ['', '10', 'm', '10 m', '10min', '1d', 'abc', '1h-3m']) {
    assert.equal(parseGoDuration(text), undefined, text);
  }
});

test('durations format like Go Duration.String()', () => {
  assert.equal(formatGoDuration(600_000), '10m0s');
  assert.equal(formatGoDuration(3_600_000), '1h0m0s');
  assert.equal(formatGoDuration(5_400_000), '1h30m0s');
  assert.equal(formatGoDuration(1500), '1.5s');
  assert.equal(formatGoDuration(300), '300ms');
  assert.equal(formatGoDuration(0), '0s');
  assert.equal(formatGoDuration(0.0015), '1.5µs');
  assert.equal(formatGoDuration(-60_000), '-1m0s');
});
