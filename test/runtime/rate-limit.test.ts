import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket, exponentialDelay, fullJitter } from '../../src/runtime/rate-limit.js';

test('a token bucket serves its burst at once, then spaces reservations at its rate, then refills while idle', () => {
  let now = 0;
  const bucket = new TokenBucket({ qps: 10, burst: 3, now: () => now });
  assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 0, 0]);
  assert.deepEqual([bucket.reserve(), bucket.reserve()], [100, 200]);
  now += 10_000;
  assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 0, 0, 100]);
});

test('a token bucket rejects a rate or burst that could never serve a request', () => {
  assert.throws(() => new TokenBucket({ qps: 0, burst: 1, now: () => 0 }), RangeError);
  assert.throws(() => new TokenBucket({ qps: 1, burst: 0, now: () => 0 }), RangeError);
});

test('exponential delay doubles per failure, stays at its cap and never overflows', () => {
  const o = { initialMs: 5, maxMs: 1000 };
  assert.deepEqual(
    [0, 1, 2, 3].map((n) => exponentialDelay(o, n)),
    [5, 10, 20, 40],
  );
  assert.equal(exponentialDelay(o, 8), 1000);
  assert.equal(exponentialDelay(o, 10_000), 1000);
});

test('full jitter spreads a delay over [0, ceiling)', () => {
  assert.equal(
    fullJitter(1000, () => 0),
    0,
  );
  assert.equal(
    fullJitter(1000, () => 0.999),
    999,
  );
  assert.equal(
    fullJitter(-5, () => 0.5),
    0,
  );
});
