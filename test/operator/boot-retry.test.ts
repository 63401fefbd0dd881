import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { parseOperatorOptions } from '../../src/config/options.js';
import {
  BootError,
  loadBackupPodTemplate,
  loadNodeAgentConfig,
  readWithRetry,
  type ReadRetry,
} from '../../src/operator.js';
import { KubeApiError, Resources } from '../../src/runtime/kube-api.js';
import { createLogger, silentLogger } from '../../src/runtime/logger.js';
import { apiError, InMemoryKube } from '../runtime/in-memory-kube.js';

/** The production policy's attempts, with delays short enough for a unit test. */
const FAST: ReadRetry = Object.freeze({ retries: 4, minTimeoutMs: 1, maxTimeoutMs: 5 });

function options(args: string[]) {
  const parsed = parseOperatorOptions(args, {}, () => 'test-pod');
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return parsed.options;
}

/** A fake API whose reads of one resource fail with `error` the first `times` times. */
function flakyKube(resource: string, error: () => Error, times: number): InMemoryKube {
  const kube = new InMemoryKube();
  let failures = 0;
  kube.interceptor = (call) => {
    if (call.verb === 'get' && call.resource === resource && failures < times) {
      failures++;
      throw error();
    }
  };
  return kube;
}

async function withConfigMap(kube: InMemoryKube): Promise<InMemoryKube> {
  await kube.create(
    Resources.configMaps,
    { metadata: { name: 'node-agent-config', namespace: 'velero' }, data: { 'c.json': '{"backupPVC":{}}' } },
    { namespace: 'velero' },
  );
  return kube;
}

const CONFIG_FLAGS = ['--node-agent-configmap', 'node-agent-config'];

test('a ConfigMap read that fails with 503, 429 or no answer is retried, and boot goes on', async () => {
  for (const error of [
    () => apiError(503, 'ServiceUnavailable'),
    () => apiError(429, 'TooManyRequests'),
    () => new KubeApiError({ code: 0, reason: 'ConnectionRefused', message: 'connect ECONNREFUSED' }),
  ]) {
    const kube = await withConfigMap(flakyKube('configmaps', error, 2));
    const config = await loadNodeAgentConfig(kube, options(CONFIG_FLAGS), silentLogger(), FAST);
    assert.deepEqual(config, { backupPVC: {} });
    assert.equal(kube.callsOf('get', 'configmaps').length, 3);
  }
});

test('a read that stays unavailable gives up after five attempts with the last error', async () => {
  const kube = await withConfigMap(flakyKube('configmaps', () => apiError(503, 'ServiceUnavailable', 'etcd down'), 99));
  await assert.rejects(
    loadNodeAgentConfig(kube, options(CONFIG_FLAGS), silentLogger(), FAST),
    (err: unknown) =>
      err instanceof BootError &&
      err.message === 'cannot read node-agent ConfigMap velero/node-agent-config: etcd down',
  );
  assert.equal(kube.callsOf('get', 'configmaps').length, 5);
});

test('NotFound and Forbidden are answers, not outages: no retry', async () => {
  const missing = new InMemoryKube();
  await assert.rejects(loadNodeAgentConfig(missing, options(CONFIG_FLAGS), silentLogger(), FAST), /not found/);
  assert.equal(missing.callsOf('get', 'configmaps').length, 1);
  const forbidden = await withConfigMap(flakyKube('configmaps', () => apiError(403, 'Forbidden', 'forbidden'), 1));
  await assert.rejects(loadNodeAgentConfig(forbidden, options(CONFIG_FLAGS), silentLogger(), FAST), /forbidden/);
  assert.equal(forbidden.callsOf('get', 'configmaps').length, 1);
});

test('each retry is logged as a warning naming the object and the attempt', async () => {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({ write: (chunk: Buffer, _encoding, done) => done(void lines.push(String(chunk))) }),
  });
  const kube = await withConfigMap(flakyKube('configmaps', () => apiError(500, 'InternalError', 'boom'), 1));
  await loadNodeAgentConfig(kube, options(CONFIG_FLAGS), logger, FAST);
  const retries = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.level === 'warn');
  assert.equal(retries.length, 1);
  assert.equal(retries[0]!.msg, 'cannot read node-agent ConfigMap velero/node-agent-config yet; retrying');
  assert.equal(retries[0]!.attempt, 1);
  assert.equal(retries[0]!.err, 'boom');
});

test('the node-agent DaemonSet read is retried too; its absence still falls back to the flags', async () => {
  const kube = flakyKube('daemonsets', () => apiError(504, 'Timeout'), 1);
  const template = await loadBackupPodTemplate(
    kube,
    options(['--backup-pod-image', 'velero/velero:v1.18.0']),
    silentLogger(),
    FAST,
  );
  assert.equal(template.image, 'velero/velero:v1.18.0');
  assert.equal(kube.callsOf('get', 'daemonsets').length, 2);
});

test('readWithRetry returns the first success and reports only the retries it makes', async () => {
  const attempts: number[] = [];
  let calls = 0;
  const value = await readWithRetry(
    () => (++calls < 3 ? Promise.reject(apiError(503, 'ServiceUnavailable')) : Promise.resolve('ok')),
    (_err, attempt) => attempts.push(attempt),
    FAST,
  );
  assert.equal(value, 'ok');
  assert.deepEqual(attempts, [1, 2]);
  const none: number[] = [];
  await assert.rejects(
    readWithRetry(
      () => Promise.reject(apiError(422, 'Invalid')),
      (_err, attempt) => none.push(attempt),
      FAST,
    ),
    (err: unknown) => err instanceof KubeApiError && err.code === 422,
  );
  assert.deepEqual(none, []);
});
