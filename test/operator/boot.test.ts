import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOperatorOptions } from '../../src/config/options.js';
import { BootError, loadBackupPodTemplate, loadNodeAgentConfig } from '../../src/operator.js';
import { Resources } from '../../src/runtime/kube-api.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { InMemoryKube } from '../runtime/in-memory-kube.js';

function options(args: string[]) {
  const parsed = parseOperatorOptions(args, {}, () => 'test-pod');
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return parsed.options;
}

async function kubeWith(data: Record<string, string> | undefined): Promise<InMemoryKube> {
  const kube = new InMemoryKube();
  if (data) {
    await kube.create(
      Resources.configMaps,
      { metadata: { name: 'node-agent-config', namespace: 'velero' }, data },
      { namespace: 'velero' },
    );
  }
  return kube;
}

test('a missing node-agent ConfigMap stops the operator at boot, naming it (checklist 47)', async () => {
  const kube = await kubeWith(undefined);
  await assert.rejects(
    loadNodeAgentConfig(kube, options(['--node-agent-configmap', 'node-agent-config']), silentLogger()),
    (err: unknown) =>
      err instanceof BootError && err.message === 'node-agent ConfigMap velero/node-agent-config not found',
  );
});

test('an invalid node-agent ConfigMap stops the operator at boot with every problem and its JSON path', async () => {
  const kube = await kubeWith({
    'config.json': '{"backupPVC":{"gp3":{"readOnly":"yes"}},"loadConcurrency":{"globalConfig":"2"}}',
  });
  await assert.rejects(
    loadNodeAgentConfig(kube, options(['--node-agent-configmap', 'node-agent-config']), silentLogger()),
    (err: unknown) =>
      err instanceof BootError &&
      err.message.startsWith('invalid node-agent ConfigMap velero/node-agent-config:') &&
      err.message.includes('backupPVC["gp3"].readOnly: expected boolean, got "yes"') &&
      err.message.includes('loadConcurrency.globalConfig'),
  );
});

test('a valid ConfigMap is loaded frozen, and a missing priority class is dropped like Velero does', async () => {
  const kube = await kubeWith({ 'config.json': '{"priorityClassName":"nope","backupPVC":{"gp3":{"readOnly":true}}}' });
  const config = await loadNodeAgentConfig(
    kube,
    options(['--node-agent-configmap', 'node-agent-config']),
    silentLogger(),
  );
  assert.equal(config.priorityClassName, undefined);
  assert.equal(config.backupPVC?.gp3?.readOnly, true);
  assert.ok(Object.isFrozen(config));
});

test('without --node-agent-configmap the operator runs with Velero defaults', async () => {
  assert.deepEqual(await loadNodeAgentConfig(await kubeWith(undefined), options([]), silentLogger()), {});
});

test('with no node-agent DaemonSet to inherit from, a backup pod image is required', async () => {
  await assert.rejects(
    loadBackupPodTemplate(new InMemoryKube(), options([]), silentLogger()),
    (err: unknown) => err instanceof BootError && err.message.startsWith('--backup-pod-image is required'),
  );
  const template = await loadBackupPodTemplate(
    new InMemoryKube(),
    options(['--backup-pod-image', 'velero/velero:v1.18.0']),
    silentLogger(),
  );
  assert.equal(template.image, 'velero/velero:v1.18.0');
});

test('the node-agent DaemonSet is inherited, with the image flag taking precedence', async () => {
  const kube = new InMemoryKube();
  await kube.create(
    Resources.daemonSets,
    {
      metadata: { name: 'node-agent', namespace: 'velero' },
      spec: {
        template: {
          spec: {
            serviceAccountName: 'velero',
            containers: [{ name: 'node-agent', image: 'velero/velero:v1.17.0', args: ['--log-level=debug'] }],
          },
        },
      },
    },
    { namespace: 'velero' },
  );
  const template = await loadBackupPodTemplate(
    kube,
    options(['--backup-pod-image', 'velero/velero:v1.18.0']),
    silentLogger(),
  );
  assert.equal(template.image, 'velero/velero:v1.18.0');
  assert.equal(template.serviceAccountName, 'velero');
});
