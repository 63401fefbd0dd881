import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findDuplicateKeys, findJsonErrorOffset, parseJsonText, positionAt } from '../../src/config/json-text.js';

test('valid JSON parses to its value', () => {
  assert.deepEqual(parseJsonText('{"a": [1, true, null, "x"]}'), { ok: true, value: { a: [1, true, null, 'x'] } });
});

test('lines and columns count from 1 and follow newlines', () => {
  assert.deepEqual(positionAt('ab\ncd\r\nef', 0), { line: 1, column: 1 });
  assert.deepEqual(positionAt('ab\ncd\r\nef', 4), { line: 2, column: 2 });
  assert.deepEqual(positionAt('ab\ncd\r\nef', 8), { line: 3, column: 2 });
  assert.deepEqual(positionAt('ab', 99), { line: 1, column: 3 });
});

// Each case: the text, and where its first error is as line:column.
const BROKEN: readonly [string, string][] = [
  ['{"a": 1 "b": 2}', '1:9'],
  ['{\n  "a": 1,\n}', '3:1'],
  ['[1,]', '1:4'],
  ['{"a": tru}', '1:10'],
  ['{"a": 01}', '1:8'],
  ['{"a": "b\nc"}', '1:9'],
  ['{"a": "\\x"}', '1:9'],
  ['{"a": "\\u12g4"}', '1:12'],
  ['{"a": 1}}', '1:9'],
  ['{"a": ', '1:7'],
  ['backupPVC:\n  gp3: {}', '1:1'],
  ["{'a': 1}", '1:2'],
];

for (const [text, where] of BROKEN) {
  test(`broken JSON ${JSON.stringify(text)} is located at ${where}`, () => {
    const result = parseJsonText(text);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(`${result.line}:${result.column}`, where);
    assert.doesNotMatch(result.message, /at position|is not valid JSON/);
  });
}

test('the scanner agrees with the engine wherever the engine gives an offset', () => {
  for (const [text] of BROKEN) {
    try {
      JSON.parse(text);
    } catch (error) {
      const reported = /at position (\d+)/.exec((error as Error).message);
      if (reported) assert.equal(findJsonErrorOffset(text), Number(reported[1]), text);
    }
  }
});

test('the scanner finds no error in valid JSON', () => {
  for (const text of ['{}', '[]', '0', '-1.5e+3', '"\\u00e9\\n"', ' {"a": [{"b": null}, false]} ']) {
    assert.equal(findJsonErrorOffset(text), undefined, text);
  }
});

test('keys repeated within one object are found with their position', () => {
  assert.deepEqual(findDuplicateKeys('{\n  "a": {"b": 1, "b": 2},\n  "a": 3,\n  "c": [{"d": 1}, {"d": 2}]\n}'), [
    { key: 'b', line: 2, column: 17 },
    { key: 'a', line: 3, column: 3 },
  ]);
  assert.deepEqual(findDuplicateKeys('{"\\u0061": 1, "a": 2}'), [{ key: 'a', line: 1, column: 15 }]);
  assert.deepEqual(findDuplicateKeys('{"a": 1, "a": '), []);
});
