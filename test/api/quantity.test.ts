import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQuantity, parseQuantity } from '../../src/api/index.js';

test('binary, decimal and exponent quantities parse to base units', () => {
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('10Mi'), 10 * 2 ** 20);
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('2'), 2);
  assert.equal(parseQuantity('1.5G'), 1.5e9);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity('0'), 0);
  assert.equal(parseQuantity(1073741824), 2 ** 30);
});

test('malformed quantities are rejected', () => {
  for (const text of ['', 'Gi', '1 Gi', '1gi', '1GB', 'abc', '--1', '1.2.3']) {
    assert.equal(isQuantity(text), false, text);
  }
});
