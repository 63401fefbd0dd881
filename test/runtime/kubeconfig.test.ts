import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inCluster, loadKubeConfig } from '../../src/runtime/kubeconfig.js';
import { authFromKubeConfig } from '../../src/runtime/kube-client.js';

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const YAML = `apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: other
    cluster: { server: https://other:6443 }
  - name: c1
    cluster:
      server: https://127.0.0.1:6443/
      certificate-authority: pki/ca.crt
      tls-server-name: kubernetes
contexts:
  - name: dev
    context: { cluster: c1, user: u1 }
users:
  - name: u1
    user:
      client-certificate: pki/client.crt
      client-key-data: a2V5
      as: someone
`;

test(
  'a kubeconfig file: the current context, relative paths resolved against its directory, data kept as written',
  withDir((dir) => {
    const file = join(dir, 'config');
    writeFileSync(file, YAML);
    const kc = loadKubeConfig(file);
    const cluster = kc.getCurrentCluster()!;
    assert.equal(cluster.name, 'c1');
    assert.equal(cluster.server, 'https://127.0.0.1:6443');
    assert.equal(cluster.caFile, join(dir, 'pki/ca.crt'));
    assert.equal(cluster.tlsServerName, 'kubernetes');
    assert.equal(cluster.skipTLSVerify, false);
    const user = kc.getCurrentUser()!;
    assert.equal(user.certFile, join(dir, 'pki/client.crt'));
    assert.equal(user.keyData, 'a2V5');
    assert.equal(user.impersonateUser, 'someone');
  }),
);

test(
  'a token, a token file (re-read, so rotation works) and basic auth give the right Authorization header',
  withDir(async (dir) => {
    const cases: [string, string, string][] = [
      ['token: abc', 'Bearer abc', ''],
      ['tokenFile: tok', 'Bearer from-file', 'from-file'],
      ['{ username: ann, password: pw }', `Basic ${Buffer.from('ann:pw').toString('base64')}`, ''],
    ];
    for (const [user, expected, fileContent] of cases) {
      if (fileContent) writeFileSync(join(dir, 'tok'), `${fileContent}\n`);
      const file = join(dir, 'config');
      writeFileSync(
        file,
        JSON.stringify({
          'current-context': 'x',
          clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:1' } }],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          users: [{ name: 'u', user: JSON.parse(JSON.stringify(yamlish(user))) }],
        }),
      );
      const headers = await authFromKubeConfig(loadKubeConfig(file))();
      assert.equal(headers.Authorization, expected, user);
    }
  }),
);

function yamlish(text: string): Record<string, string> {
  if (text.startsWith('{')) return { username: 'ann', password: 'pw' };
  const [k, v] = text.split(': ');
  return { [k!]: v! };
}

test(
  'KUBECONFIG lists several files: merged, the first one naming an entry wins; ~/.kube/config is next',
  withDir((dir) => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'current-context: x\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\n');
    writeFileSync(
      b,
      'clusters: [{ name: c, cluster: { server: "https://b:1" } }]\nusers: [{ name: u, user: { token: t } }]\n',
    );
    const kc = loadKubeConfig(undefined, { KUBECONFIG: `${a}:${join(dir, 'missing')}:${b}`, HOME: dir });
    assert.equal(kc.getCurrentCluster()?.server, 'https://b:1');
    assert.equal(kc.getCurrentUser()?.token, 't');
    mkdirSync(join(dir, '.kube'));
    writeFileSync(join(dir, '.kube', 'config'), `current-context: x\n${readFirst(a)}${readFirst(b)}`);
    assert.equal(loadKubeConfig(undefined, { HOME: dir }).getCurrentCluster()?.server, 'https://b:1');
  }),
);

function readFirst(file: string): string {
  return readFileSync(file, 'utf8').replace(/^current-context: x\n/, '');
}

test('in a pod: the service address, the mounted CA and the rotated token file', () => {
  const kc = inCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa');
  assert.equal(kc.getCurrentCluster()?.server, 'https://[fd00::1]:443');
  assert.equal(kc.getCurrentCluster()?.caFile, '/sa/ca.crt');
  assert.deepEqual(kc.getCurrentUser()?.authProvider, { name: 'tokenFile', config: { tokenFile: '/sa/token' } });
});

test('nothing to load says how to give one', () => {
  assert.throws(() => loadKubeConfig(undefined, { HOME: '/nonexistent-home' }), /no kubeconfig: pass --kubeconfig/);
});
