/**
 * Velero compatibility checklist (spec section 9), items 13–31 and 51, one test per item, as far as the pure
 * builders decide them. Item 16 (retain, then delete the source VS/VSC before the PVC) is the controller's order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backupPodTemplateFromDaemonSet,
  backupPvcSize,
  buildBackupPod,
  buildBackupPvc,
  buildBackupVolumeSnapshot,
  buildBackupVolumeSnapshotContent,
  resolveBackupPvcConfig,
  volumeModeOf,
} from '../../src/exposer/index.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import {
  DU_NAME,
  DU_NAMESPACE,
  DU_UID,
  IMAGE,
  SOURCE_SC,
  makeCreatedBackupVs,
  makeDataUpload,
  makeNodeAgentDaemonSet,
  makePodInput,
  makeResolved,
  makeSourcePvc,
  makeSourceVs,
  makeSourceVsc,
  makeTemplate,
} from './fixtures.js';

const OWNER = { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: DU_NAME, uid: DU_UID, controller: true };

function pvcFor(backupPVC: NodeAgentConfig['backupPVC'], volumeMode: 'Filesystem' | 'Block' = 'Filesystem') {
  return buildBackupPvc({ du: makeDataUpload(), resolved: makeResolved(backupPVC), volumeMode, size: '10Gi' });
}

function containerOf(pod: ReturnType<typeof buildBackupPod>) {
  assert.equal(pod.spec?.containers.length, 1);
  return pod.spec.containers[0]!;
}

test('item 13: the backup VolumeSnapshot is <du> in the DataUpload namespace, bound to content <du>, with the source annotations and class and no owner', () => {
  const vs = buildBackupVolumeSnapshot({ du: makeDataUpload(), sourceVs: makeSourceVs() });
  assert.deepEqual(vs, {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: {
      name: DU_NAME,
      namespace: DU_NAMESPACE,
      annotations: { 'velero.io/source-pvc': 'mypvc', 'example.com/team': 'storage' },
    },
    spec: { source: { volumeSnapshotContentName: DU_NAME }, volumeSnapshotClassName: 'csi-rbd-vsc' },
  });
});

test('item 14: the backup VolumeSnapshotContent is cluster-scoped <du> with deletionPolicy Delete on the source handle, referencing the created backup VolumeSnapshot by uid and resourceVersion', () => {
  const vsc = buildBackupVolumeSnapshotContent({
    du: makeDataUpload(),
    backupVs: makeCreatedBackupVs(),
    sourceVsc: makeSourceVsc(),
  });
  assert.equal(vsc.metadata.name, DU_NAME);
  assert.equal(vsc.metadata.namespace, undefined);
  assert.equal(vsc.metadata.ownerReferences, undefined);
  assert.deepEqual(vsc.spec, {
    volumeSnapshotRef: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      name: DU_NAME,
      namespace: DU_NAMESPACE,
      uid: 'backup-vs-uid',
      resourceVersion: '5001',
    },
    source: { snapshotHandle: '0001-0009-rbd-snap-42' },
    deletionPolicy: 'Delete',
    driver: 'rbd.csi.ceph.com',
    volumeSnapshotClassName: 'csi-rbd-vsc',
  });
  assert.deepEqual(vsc.metadata.annotations, {
    'snapshot.storage.kubernetes.io/deletion-secret-name': 'csi-rbd-secret',
  });
});

test('item 15: the backup VolumeSnapshotContent copies the managed-by label of the source content and no other label', () => {
  const cases: [string, Record<string, string>, Record<string, string> | undefined][] = [
    [
      'with managed-by',
      { 'snapshot.storage.kubernetes.io/managed-by': 'agent-a', 'velero.io/backup-name': 'b' },
      { 'snapshot.storage.kubernetes.io/managed-by': 'agent-a' },
    ],
    ['without managed-by', { 'velero.io/backup-name': 'b' }, undefined],
  ];
  for (const [name, labels, expected] of cases) {
    const vsc = buildBackupVolumeSnapshotContent({
      du: makeDataUpload(),
      backupVs: makeCreatedBackupVs(),
      sourceVsc: makeSourceVsc({ labels }),
    });
    assert.deepEqual(vsc.metadata.labels, expected, name);
  }
});

test('item 17: a readOnly backupPVC entry gives a ReadOnlyMany PVC of the source class and a read-only pod volume and mount', () => {
  const backupPVC = { [SOURCE_SC]: { readOnly: true } };
  const pvc = pvcFor(backupPVC);
  assert.deepEqual(pvc.spec?.accessModes, ['ReadOnlyMany']);
  assert.equal(pvc.spec?.storageClassName, SOURCE_SC);
  const pod = buildBackupPod(makePodInput({ resolved: makeResolved(backupPVC) }));
  assert.deepEqual(pod.spec?.volumes?.[0], {
    name: DU_UID,
    persistentVolumeClaim: { claimName: DU_NAME, readOnly: true },
  });
  assert.deepEqual(containerOf(pod).volumeMounts?.[0], { name: DU_UID, mountPath: `/${DU_UID}`, readOnly: true });
});

test('item 18: without a backupPVC entry for the source class the PVC is ReadWriteOnce with the source class and the pod volume is writable', () => {
  const configs: NodeAgentConfig['backupPVC'][] = [
    undefined,
    {},
    { 'other-class': { readOnly: true, storageClass: 'z' } },
  ];
  for (const backupPVC of configs) {
    const pvc = pvcFor(backupPVC);
    assert.deepEqual(pvc.spec?.accessModes, ['ReadWriteOnce']);
    assert.equal(pvc.spec?.storageClassName, SOURCE_SC);
    const pod = buildBackupPod(makePodInput({ resolved: makeResolved(backupPVC) }));
    assert.equal(pod.spec?.volumes?.[0]?.persistentVolumeClaim?.readOnly, false);
  }
});

test('item 19: the backupPVC entry is looked up by the source class, and its storageClass replaces the class unless empty', () => {
  const cases: [string, NodeAgentConfig['backupPVC'], string, string[]][] = [
    ['a storageClass override', { [SOURCE_SC]: { storageClass: 'Y' } }, 'Y', ['ReadWriteOnce']],
    ['an empty storageClass', { [SOURCE_SC]: { storageClass: '' } }, SOURCE_SC, ['ReadWriteOnce']],
    // The entry of the final class Y must not apply: only the source class is a key.
    [
      'an entry for the final class',
      { [SOURCE_SC]: { storageClass: 'Y' }, Y: { readOnly: true } },
      'Y',
      ['ReadWriteOnce'],
    ],
  ];
  for (const [name, backupPVC, storageClass, accessModes] of cases) {
    const pvc = pvcFor(backupPVC);
    assert.equal(pvc.spec?.storageClassName, storageClass, name);
    assert.deepEqual(pvc.spec?.accessModes, accessModes, name);
  }
});

test('item 20: readOnly with spcNoRelabeling gives a Linux pod the SELinux type spc_t; without readOnly it is ignored with a warning', () => {
  const withRo = makeResolved({ [SOURCE_SC]: { readOnly: true, spcNoRelabeling: true } });
  assert.deepEqual(buildBackupPod(makePodInput({ resolved: withRo })).spec?.securityContext, {
    runAsUser: 0,
    seLinuxOptions: { type: 'spc_t' },
  });
  assert.deepEqual(withRo.warnings, []);
  const withoutRo = makeResolved({ [SOURCE_SC]: { readOnly: false, spcNoRelabeling: true } });
  assert.equal(withoutRo.spcNoRelabeling, false);
  assert.equal(withoutRo.warnings.length, 1);
  assert.match(withoutRo.warnings[0]!, /spcNoRelabeling.*readOnly/);
  assert.deepEqual(buildBackupPod(makePodInput({ resolved: withoutRo })).spec?.securityContext, { runAsUser: 0 });
});

test('item 21: the backupPVC requests the snapshot restoreSize when non-zero, else the source PVC request', () => {
  const cases: [string, string | number | null, string, boolean][] = [
    ['a quantity restoreSize', '5Gi', '5Gi', false],
    [
      'a byte-count restoreSize (as a content holds it), written as the snapshot controller would',
      1073741824,
      '1Gi',
      false,
    ],
    ['a zero restoreSize', '0', '8Gi', true],
    ['a numeric zero restoreSize', 0, '8Gi', true],
    ['no restoreSize', null, '8Gi', true],
  ];
  for (const [name, restoreSize, size, warns] of cases) {
    const result = backupPvcSize(makeSourceVs({ restoreSize }), makeSourcePvc());
    assert.equal(result.size, size, name);
    assert.equal(result.warning !== undefined, warns, name);
    const pvc = buildBackupPvc({
      du: makeDataUpload(),
      resolved: makeResolved(),
      volumeMode: 'Filesystem',
      size: result.size,
    });
    assert.deepEqual(pvc.spec?.resources, { requests: { storage: size } }, name);
  }
});

test('item 22: the backupPVC is provisioned from the backup VolumeSnapshot, copies the source volume mode and is controlled by the DataUpload', () => {
  for (const mode of ['Filesystem', 'Block'] as const) {
    const pvc = pvcFor(undefined, volumeModeOf(makeSourcePvc({ volumeMode: mode })));
    assert.deepEqual(pvc.spec?.dataSource, {
      apiGroup: 'snapshot.storage.k8s.io',
      kind: 'VolumeSnapshot',
      name: DU_NAME,
    });
    assert.equal(pvc.spec?.dataSourceRef, undefined);
    assert.equal(pvc.spec?.volumeMode, mode);
    assert.deepEqual(pvc.metadata.ownerReferences, [OWNER]);
    assert.equal(pvc.metadata.name, DU_NAME);
    assert.equal(pvc.metadata.namespace, DU_NAMESPACE);
    assert.equal(pvc.metadata.labels, undefined);
  }
});

test('item 23: the backup pod is <du> with the DataUpload and exposer labels, one container named <du uid> running /velero data-mover backup on the node-agent image (pulled IfNotPresent, not Never)', () => {
  const pod = buildBackupPod(makePodInput());
  assert.equal(pod.metadata.name, DU_NAME);
  assert.equal(pod.metadata.namespace, DU_NAMESPACE);
  assert.equal(pod.metadata.labels?.['velero.io/data-upload'], DU_NAME);
  assert.equal(pod.metadata.labels?.['velero.io/exposer-pod-group'], 'snapshot-exposer');
  assert.deepEqual(pod.metadata.ownerReferences, [OWNER]);
  const container = containerOf(pod);
  assert.equal(container.name, DU_UID);
  assert.equal(container.image, IMAGE);
  assert.equal(container.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(container.command, ['/velero', 'data-mover', 'backup']);
});

test('item 24: the backup pod args are volume path, volume mode, DataUpload, resource timeout, then the log-format and log-level args', () => {
  const pod = buildBackupPod(makePodInput({ du: makeDataUpload({ operationTimeout: '10m' }) }));
  assert.deepEqual(containerOf(pod).args, [
    `--volume-path=/${DU_UID}`,
    '--volume-mode=Filesystem',
    `--data-upload=${DU_NAME}`,
    '--resource-timeout=10m0s',
    '--log-format=json',
    '--log-level',
    'debug',
  ]);
});

test('item 25: the backup pod never restarts, has no grace period, runs as root on Linux, is pinned to the node OS and spreads across hosts', () => {
  const spec = buildBackupPod(makePodInput()).spec!;
  assert.equal(spec.restartPolicy, 'Never');
  assert.equal(spec.terminationGracePeriodSeconds, 0);
  assert.deepEqual(spec.securityContext, { runAsUser: 0 });
  assert.equal(spec.nodeSelector, undefined, 'Velero 1.18.3 pins the OS with the affinity');
  assert.deepEqual(spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
    { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] }] },
  ]);
  assert.deepEqual(spec.os, { name: 'linux' });
  assert.deepEqual(spec.topologySpreadConstraints, [
    {
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { 'velero.io/exposer-pod-group': 'snapshot-exposer' } },
    },
  ]);
});

test('item 26: the backup pod inherits the node-agent service account, env, envFrom, volumes, mounts, DNS and pull secrets, and a DaemonSet with two containers is refused', () => {
  const read = backupPodTemplateFromDaemonSet(makeNodeAgentDaemonSet());
  assert.ok(read.ok);
  const pod = buildBackupPod(makePodInput({ template: read.template }));
  const spec = pod.spec!;
  const container = containerOf(pod);
  assert.equal(spec.serviceAccountName, 'velero');
  assert.deepEqual(
    container.env?.map((e) => e.name),
    ['NODE_NAME', 'VELERO_SCRATCH_DIR'],
  );
  assert.deepEqual(container.envFrom, [{ secretRef: { name: 'extra-env' } }]);
  // hostPath volumes are deliberately not inherited (spec section 8 item 8).
  assert.deepEqual(
    spec.volumes?.map((v) => v.name),
    [DU_UID, 'scratch', 'cloud-credentials'],
  );
  assert.deepEqual(
    container.volumeMounts?.map((m) => m.name),
    [DU_UID, 'scratch', 'cloud-credentials'],
  );
  assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.deepEqual(spec.dnsConfig, { nameservers: ['10.0.0.10'], options: [{ name: 'ndots', value: '2' }] });
  assert.deepEqual(spec.imagePullSecrets, [{ name: 'registry-creds' }]);

  const twoContainers = makeNodeAgentDaemonSet();
  twoContainers.spec!.template.spec!.containers.push({ name: 'sidecar', image: 'busybox' });
  const refused = backupPodTemplateFromDaemonSet(twoContainers);
  assert.equal(refused.ok, false);
  assert.match(!refused.ok ? refused.message : '', /^unexpected pod template from node-agent/);
});

test('item 27: only the first node-agent toleration per allow-listed key is copied, and Windows pods also tolerate os=windows for NoSchedule and NoExecute', () => {
  const read = backupPodTemplateFromDaemonSet(makeNodeAgentDaemonSet());
  assert.ok(read.ok);
  const expected = [
    { key: 'kubernetes.azure.com/scalesetpriority', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
    { key: 'CriticalAddonsOnly', operator: 'Exists' },
  ];
  const linux = buildBackupPod(makePodInput({ template: read.template }));
  assert.deepEqual(linux.spec?.tolerations, expected);
  const windows = buildBackupPod(makePodInput({ template: read.template, nodeOS: 'windows' }));
  assert.deepEqual(windows.spec?.tolerations, [
    ...expected,
    { key: 'os', operator: 'Equal', value: 'windows', effect: 'NoSchedule' },
    { key: 'os', operator: 'Equal', value: 'windows', effect: 'NoExecute' },
  ]);
});

test('item 28: a loadAffinity matchLabels entry becomes one required In term, and a second entry without storageClass is ignored', () => {
  const config: NodeAgentConfig = {
    loadAffinity: [{ nodeSelector: { matchLabels: { a: 'b' } } }, { nodeSelector: { matchLabels: { c: 'd' } } }],
  };
  const pod = buildBackupPod(makePodInput({ config }));
  assert.deepEqual(pod.spec?.affinity, {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: 'a', operator: 'In', values: ['b'] },
              { key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] },
            ],
          },
        ],
      },
    },
  });
});

test('item 29: the loadAffinity entry of the final backupPVC class applies, even after mapping, and the class-less entry applies otherwise', () => {
  const config: NodeAgentConfig = {
    loadAffinity: [
      { storageClass: 'Y', nodeSelector: { matchLabels: { pool: 's1' } } },
      { nodeSelector: { matchLabels: { pool: 'g' } } },
    ],
  };
  const cases: [string, NodeAgentConfig['backupPVC'], string][] = [
    ['no mapping, source class X', undefined, 'g'],
    ['X mapped to Y', { [SOURCE_SC]: { storageClass: 'Y' } }, 's1'],
    ['X mapped to Z', { [SOURCE_SC]: { storageClass: 'Z' } }, 'g'],
  ];
  for (const [name, backupPVC, pool] of cases) {
    const pod = buildBackupPod(makePodInput({ config, resolved: makeResolved(backupPVC) }));
    const term = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0];
    assert.deepEqual(
      term?.matchExpressions,
      [
        { key: 'pool', operator: 'In', values: [pool] },
        { key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] },
      ],
      name,
    );
  }
  const direct = buildBackupPod(
    makePodInput({
      config,
      du: makeDataUpload({ storageClass: 'Y' }),
      resolved: resolveBackupPvcConfig('Y', undefined),
    }),
  );
  assert.deepEqual(
    direct.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]
      ?.matchExpressions,
    [
      { key: 'pool', operator: 'In', values: ['s1'] },
      { key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] },
    ],
  );
});

test('item 30: podResources set the container requests and limits, "0" is left out, and (unlike Velero) a partial section still applies', () => {
  const cases: [string, NodeAgentConfig['podResources'], unknown][] = [
    [
      'all four values',
      { cpuRequest: '500m', memoryRequest: '512Mi', cpuLimit: '1', memoryLimit: '1Gi' },
      { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    ],
    [
      'a zero limit',
      { cpuRequest: '500m', memoryRequest: '512Mi', cpuLimit: '0', memoryLimit: '1Gi' },
      { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '1Gi' } },
    ],
    ['only a memory limit', { memoryLimit: '2Gi' }, { limits: { memory: '2Gi' } }],
    ['all zero', { cpuRequest: '0', memoryRequest: '0', cpuLimit: '0', memoryLimit: '0' }, undefined],
    ['no section', undefined, undefined],
  ];
  for (const [name, podResources, expected] of cases) {
    const pod = buildBackupPod(makePodInput({ config: podResources === undefined ? {} : { podResources } }));
    assert.deepEqual(containerOf(pod).resources, expected, name);
  }
});

test('item 31: a priorityClassName dropped at startup leaves the pod without one, and a validated one is set', () => {
  assert.equal(buildBackupPod(makePodInput({ config: {} })).spec?.priorityClassName, undefined);
  assert.equal(buildBackupPod(makePodInput({ config: { priorityClassName: '' } })).spec?.priorityClassName, undefined);
  assert.equal(
    buildBackupPod(makePodInput({ config: { priorityClassName: 'backup-low' } })).spec?.priorityClassName,
    'backup-low',
  );
});

test('item 51: a Block source PVC gives a Block backupPVC and a pod with a volume device at /<du uid> instead of a mount', () => {
  const volumeMode = volumeModeOf(makeSourcePvc({ volumeMode: 'Block' }));
  assert.equal(volumeMode, 'Block');
  assert.equal(pvcFor(undefined, volumeMode).spec?.volumeMode, 'Block');
  const pod = buildBackupPod(makePodInput({ volumeMode, template: makeTemplate({ volumeMounts: undefined }) }));
  const container = containerOf(pod);
  assert.deepEqual(container.volumeDevices, [{ name: DU_UID, devicePath: `/${DU_UID}` }]);
  assert.equal(container.volumeMounts, undefined);
  assert.ok(container.args?.includes('--volume-mode=Block'));
});
