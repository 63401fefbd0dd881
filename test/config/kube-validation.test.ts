import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dnsLabelProblems,
  dnsSubdomainProblems,
  labelValueProblems,
  qualifiedNameProblems,
} from '../../src/config/kube-validation.js';

test('qualified names accept what the API server accepts', () => {
  for (const key of ['app', 'app.kubernetes.io/name', 'velero.io/data-upload', 'A_b-c.D', 'x'.repeat(63)]) {
    assert.deepEqual(qualifiedNameProblems(key), [], key);
  }
});

test('qualified names reject what the API server rejects', () => {
  for (const key of [
    '',
    '/a',
    'a/',
    'a/b/c',
    '-a',
    'a-',
    'a b',
    'UPPER.io/x',
    'x'.repeat(64),
    `${'a'.repeat(254)}/x`,
  ]) {
    assert.notDeepEqual(qualifiedNameProblems(key), [], key);
  }
});

test('label values may be empty and at most 63 characters', () => {
  assert.deepEqual(labelValueProblems(''), []);
  assert.deepEqual(labelValueProblems('v1.2_3-a'), []);
  assert.notDeepEqual(labelValueProblems('x'.repeat(64)), []);
  assert.notDeepEqual(labelValueProblems('-a'), []);
});

test('object names follow RFC 1123', () => {
  assert.deepEqual(dnsSubdomainProblems('fast-ssd.example.com'), []);
  assert.notDeepEqual(dnsSubdomainProblems('Fast_SSD'), []);
  assert.deepEqual(dnsLabelProblems('velero'), []);
  assert.notDeepEqual(dnsLabelProblems('velero.io'), []);
  assert.notDeepEqual(dnsLabelProblems('x'.repeat(64)), []);
});
