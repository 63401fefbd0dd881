import { test } from 'node:test';
import assert from 'node:assert/strict';
import { singleLine, truncateUtf8 } from '../../src/diagnostics/text.js';

test('text within the limit is returned as it is', () => {
  assert.equal(truncateUtf8('abc', 3), 'abc');
  assert.equal(truncateUtf8('', 0), '');
});

test('text over the limit is cut to the limit in bytes and ends in an ellipsis', () => {
  const cut = truncateUtf8('x'.repeat(2000), 1024);
  assert.equal(cut.length, 1024);
  assert.ok(cut.endsWith('x...'));
});

test('a cut never splits a multi-byte character or a surrogate pair', () => {
  for (const unit of ['é', '節', '😀']) {
    for (let max = 10; max < 20; max += 1) {
      const cut = truncateUtf8(unit.repeat(50), max);
      assert.ok(Buffer.byteLength(cut, 'utf8') <= max, `${unit} at ${max}`);
      assert.equal(Buffer.from(cut, 'utf8').toString('utf8'), cut, `${unit} at ${max}`);
      assert.ok(cut.endsWith('...'));
    }
  }
});

test('line breaks and the blanks around them become single spaces', () => {
  assert.equal(singleLine('first line \r\n  second\n\nthird\n'), 'first line second third');
});
