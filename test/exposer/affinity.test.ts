import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectLoadAffinity, toNodeAffinity } from '../../src/exposer/index.js';
import type { LoadAffinity } from '../../src/config/types.js';
import { deepFreeze } from './fixtures.js';

const s1: LoadAffinity = { storageClass: 'Y', nodeSelector: { matchLabels: { pool: 's1' } } };
const s2: LoadAffinity = { storageClass: 'Y', nodeSelector: { matchLabels: { pool: 's2' } } };
const g1: LoadAffinity = { nodeSelector: { matchLabels: { pool: 'g1' } } };
const g2: LoadAffinity = { storageClass: '', nodeSelector: { matchLabels: { pool: 'g2' } } };
const other: LoadAffinity = { storageClass: 'Z', nodeSelector: { matchLabels: { pool: 'z' } } };

test('the loadAffinity entry is chosen by the final storage class, then the first class-less entry, else none', () => {
  const cases: [string, LoadAffinity[] | undefined, string, LoadAffinity | undefined][] = [
    ['the first entry of the class wins', [g1, s1, s2], 'Y', s1],
    ['the first class-less entry otherwise', [other, g1, g2], 'Y', g1],
    ['an empty storageClass counts as class-less', [other, g2, g1], 'Y', g2],
    ['no entry fits', [other, s1], 'X', undefined],
    ['no list', undefined, 'Y', undefined],
    ['an empty list', [], 'Y', undefined],
  ];
  for (const [name, list, sc, expected] of cases) assert.equal(selectLoadAffinity(list, sc), expected, name);
});

test('matchLabels become In requirements sorted by key, followed by copies of matchExpressions', () => {
  const affinity = toNodeAffinity({
    nodeSelector: {
      matchLabels: { zone: 'z1', 'a/b': 'c', disk: 'ssd' },
      matchExpressions: [
        { key: 'pool', operator: 'NotIn', values: ['infra'] },
        { key: 'gpu', operator: 'DoesNotExist' },
      ],
    },
  });
  assert.deepEqual(affinity.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
    {
      matchExpressions: [
        { key: 'a/b', operator: 'In', values: ['c'] },
        { key: 'disk', operator: 'In', values: ['ssd'] },
        { key: 'zone', operator: 'In', values: ['z1'] },
        { key: 'pool', operator: 'NotIn', values: ['infra'] },
        { key: 'gpu', operator: 'DoesNotExist' },
      ],
    },
  ]);
});

test('the same labels in a different insertion order give the same affinity', () => {
  const a = toNodeAffinity({ nodeSelector: { matchLabels: { b: '2', a: '1', c: '3' } } });
  const b = toNodeAffinity({ nodeSelector: { matchLabels: { c: '3', a: '1', b: '2' } } });
  assert.deepEqual(a, b);
});

test('a selector without requirements gives an empty affinity, never an empty term that matches no node', () => {
  assert.deepEqual(toNodeAffinity({ nodeSelector: {} }), {});
  assert.deepEqual(toNodeAffinity({ nodeSelector: { matchLabels: {}, matchExpressions: [] } }), {});
});

test('converting a frozen entry twice neither throws nor grows it', () => {
  const entry = deepFreeze<LoadAffinity>({
    nodeSelector: { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'k', operator: 'In', values: ['v'] }] },
  });
  const first = toNodeAffinity(entry);
  const second = toNodeAffinity(entry);
  assert.deepEqual(first, second);
  assert.equal(entry.nodeSelector.matchExpressions?.length, 1);
  const values =
    first.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchExpressions?.[1]
      ?.values;
  assert.notEqual(values, entry.nodeSelector.matchExpressions?.[0]?.values);
});
