import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backupPodTemplateFromDaemonSet,
  backupPodTemplateFromOptions,
  mergeBackupPodTemplate,
  type BackupPodTemplate,
} from '../../src/exposer/index.js';
import { IMAGE, makeNodeAgentDaemonSet, makeTemplate } from './fixtures.js';

function readOk(ds = makeNodeAgentDaemonSet()): { template: BackupPodTemplate; warnings: string[] } {
  const read = backupPodTemplateFromDaemonSet(ds);
  if (!read.ok) assert.fail(read.message);
  return read;
}

test('the node-agent DaemonSet yields the template the backup pod inherits', () => {
  assert.deepEqual(readOk().template, {
    image: IMAGE,
    imagePullPolicy: 'Always',
    serviceAccountName: 'velero',
    env: [
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'VELERO_SCRATCH_DIR', value: '/scratch' },
    ],
    envFrom: [{ secretRef: { name: 'extra-env' } }],
    volumes: [
      { name: 'scratch', emptyDir: {} },
      { name: 'cloud-credentials', secret: { secretName: 'cloud-credentials' } },
    ],
    volumeMounts: [
      { name: 'scratch', mountPath: '/scratch' },
      { name: 'cloud-credentials', mountPath: '/credentials' },
    ],
    dnsPolicy: 'ClusterFirstWithHostNet',
    dnsConfig: { nameservers: ['10.0.0.10'], options: [{ name: 'ndots', value: '2' }] },
    imagePullSecrets: [{ name: 'registry-creds' }],
    logArgs: ['--log-format=json', '--log-level', 'debug'],
    tolerations: [
      { key: 'kubernetes.azure.com/scalesetpriority', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
      { key: 'CriticalAddonsOnly', operator: 'Exists' },
    ],
    labels: { 'azure.workload.identity/use': 'true' },
    annotations: { 'iam.amazonaws.com/role': 'velero-role' },
  });
});

test('hostPath volumes and their mounts are not inherited, with one warning naming them', () => {
  const { template, warnings } = readOk();
  assert.equal(
    template.volumes?.some((v) => v.hostPath !== undefined),
    false,
  );
  assert.equal(
    template.volumeMounts?.some((m) => m.name.startsWith('host-')),
    false,
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /"host-pods", "host-plugins".*velero\/node-agent/);
});

test('a DaemonSet without hostPath volumes reads without warnings', () => {
  const ds = makeNodeAgentDaemonSet();
  const spec = ds.spec!.template.spec!;
  spec.volumes = spec.volumes!.filter((v) => v.hostPath === undefined);
  assert.deepEqual(readOk(ds).warnings, []);
});

test('a pod template without exactly one container, or without an image, is refused with Velero message', () => {
  const cases: [string, (ds: ReturnType<typeof makeNodeAgentDaemonSet>) => void, RegExp][] = [
    [
      'two containers',
      (ds) => ds.spec!.template.spec!.containers.push({ name: 'sidecar' }),
      /found 2 \(node-agent, sidecar\)/,
    ],
    ['no container', (ds) => (ds.spec!.template.spec!.containers = []), /found 0$/],
    ['no pod spec', (ds) => delete ds.spec!.template.spec, /found 0$/],
    ['no DaemonSet spec', (ds) => delete ds.spec, /found 0$/],
    ['no image', (ds) => delete ds.spec!.template.spec!.containers[0]!.image, /container "node-agent" .* has no image/],
  ];
  for (const [name, damage, detail] of cases) {
    const ds = makeNodeAgentDaemonSet();
    damage(ds);
    const read = backupPodTemplateFromDaemonSet(ds);
    assert.equal(read.ok, false, name);
    const message = read.ok ? '' : read.message;
    assert.match(message, /^unexpected pod template from node-agent: /, name);
    assert.match(message, detail, name);
  }
});

test('only the first toleration per allow-listed key is inherited, in allow-list order', () => {
  const ds = makeNodeAgentDaemonSet();
  ds.spec!.template.spec!.tolerations = [
    { key: 'CriticalAddonsOnly', operator: 'Exists' },
    { key: 'CriticalAddonsOnly', operator: 'Equal', value: 'x' },
    { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' },
  ];
  assert.deepEqual(readOk(ds).template.tolerations, [{ key: 'CriticalAddonsOnly', operator: 'Exists' }]);
  ds.spec!.template.spec!.tolerations = [{ key: 'other', operator: 'Exists' }];
  assert.equal(readOk(ds).template.tolerations, undefined);
});

test('only allow-listed pod-template labels and annotations are inherited', () => {
  const ds = makeNodeAgentDaemonSet();
  ds.spec!.template.metadata = { labels: { name: 'node-agent' }, annotations: { 'prometheus.io/scrape': 'true' } };
  const { template } = readOk(ds);
  assert.equal(template.labels, undefined);
  assert.equal(template.annotations, undefined);
});

test('the pull policy is the DaemonSet container one, or IfNotPresent when it has none', () => {
  const ds = makeNodeAgentDaemonSet();
  assert.equal(readOk(ds).template.imagePullPolicy, 'Always');
  delete ds.spec!.template.spec!.containers[0]!.imagePullPolicy;
  assert.equal(readOk(ds).template.imagePullPolicy, 'IfNotPresent');
});

test('log args keep --log-format before --log-level, in both the = and the two-word forms', () => {
  const cases: [string[], string[] | undefined][] = [
    [
      ['server', '--log-level=info', '--log-format=text'],
      ['--log-format=text', '--log-level=info'],
    ],
    [
      ['server', '--log-level', 'debug', '--log-format', 'json'],
      ['--log-format', 'json', '--log-level', 'debug'],
    ],
    [['server', '--log-level', '--features='], ['--log-level']],
    [['server', '--features=EnableCSI'], undefined],
    [[], undefined],
  ];
  for (const [args, expected] of cases) {
    const ds = makeNodeAgentDaemonSet();
    ds.spec!.template.spec!.containers[0]!.args = args;
    assert.deepEqual(readOk(ds).template.logArgs, expected, args.join(' '));
  }
});

test('a template from options holds only the options that are set', () => {
  assert.deepEqual(backupPodTemplateFromOptions({ image: 'img' }), { image: 'img' });
  assert.deepEqual(backupPodTemplateFromOptions({ image: 'img', serviceAccountName: '', imagePullPolicy: 'Always' }), {
    image: 'img',
    imagePullPolicy: 'Always',
  });
});

test('options override the inherited values they set and keep the rest', () => {
  const base = makeTemplate();
  const merged = mergeBackupPodTemplate(
    base,
    backupPodTemplateFromOptions({ image: 'mirror/velero:v1.17.0', serviceAccountName: 'mover' }),
  );
  assert.deepEqual(merged, { ...base, image: 'mirror/velero:v1.17.0', serviceAccountName: 'mover' });
});

test('an empty image option does not erase the inherited image, while an empty array override replaces the list', () => {
  const base = makeTemplate();
  const merged = mergeBackupPodTemplate(base, { image: '', tolerations: [], imagePullPolicy: undefined });
  assert.equal(merged.image, base.image);
  assert.equal(merged.imagePullPolicy, base.imagePullPolicy);
  assert.deepEqual(merged.tolerations, []);
});
