import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deepFreeze } from '../../src/config/deep-freeze.js';

test('every object and array reachable from the value is frozen', () => {
  const value = deepFreeze({ a: { b: [{ c: 1 }] }, d: 'x' });
  assert.equal(Object.isFrozen(value.a.b[0]), true);
  assert.throws(() => value.a.b.push({ c: 2 }), TypeError);
});

test('children of an already frozen object are frozen too', () => {
  const inner = { c: 1 };
  const outer = Object.freeze({ inner });
  deepFreeze(outer);
  assert.equal(Object.isFrozen(inner), true);
});

test('cycles and primitives are handled', () => {
  const cyclic: { self?: unknown } = {};
  cyclic.self = cyclic;
  assert.equal(deepFreeze(cyclic), cyclic);
  assert.equal(deepFreeze(3), 3);
  assert.equal(deepFreeze(null), null);
});
