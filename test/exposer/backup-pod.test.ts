import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESTRICTED_RUN_AS_ID, backupPodTemplateFromDaemonSet, buildBackupPod } from '../../src/exposer/index.js';
import type { Pod } from '../../src/api/index.js';
import {
  DU_NAME,
  DU_NAMESPACE,
  DU_UID,
  IMAGE,
  SOURCE_SC,
  makeDataUpload,
  makeNodeAgentDaemonSet,
  makePodInput,
  makeResolved,
  makeTemplate,
} from './fixtures.js';

function containerOf(pod: Pod) {
  return pod.spec!.containers[0]!;
}

test('the backup pod from the node-agent DaemonSet matches Velero derived shape, minus hostPath volumes and Never', () => {
  const read = backupPodTemplateFromDaemonSet(makeNodeAgentDaemonSet());
  assert.ok(read.ok);
  const pod = buildBackupPod(makePodInput({ template: read.template }));
  assert.deepEqual(pod, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: DU_NAME,
      namespace: DU_NAMESPACE,
      labels: {
        'azure.workload.identity/use': 'true',
        'velero.io/data-upload': DU_NAME,
        'velero.io/exposer-pod-group': 'snapshot-exposer',
      },
      annotations: { 'iam.amazonaws.com/role': 'velero-role' },
      ownerReferences: [
        { apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: DU_NAME, uid: DU_UID, controller: true },
      ],
    },
    spec: {
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: { 'velero.io/exposer-pod-group': 'snapshot-exposer' } },
        },
      ],
      os: { name: 'linux' },
      // Velero 1.18.3 pins the OS in the affinity, not with a nodeSelector.
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] }] },
            ],
          },
        },
      },
      containers: [
        {
          name: DU_UID,
          image: IMAGE,
          imagePullPolicy: 'Always',
          command: ['/velero', 'data-mover', 'backup'],
          args: [
            `--volume-path=/${DU_UID}`,
            '--volume-mode=Filesystem',
            `--data-upload=${DU_NAME}`,
            '--resource-timeout=10m0s',
            '--log-format=json',
            '--log-level',
            'debug',
          ],
          volumeMounts: [
            { name: DU_UID, mountPath: `/${DU_UID}`, readOnly: false },
            { name: 'scratch', mountPath: '/scratch' },
            { name: 'cloud-credentials', mountPath: '/credentials' },
          ],
          env: [
            { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'VELERO_SCRATCH_DIR', value: '/scratch' },
          ],
          envFrom: [{ secretRef: { name: 'extra-env' } }],
        },
      ],
      serviceAccountName: 'velero',
      terminationGracePeriodSeconds: 0,
      restartPolicy: 'Never',
      securityContext: { runAsUser: 0 },
      tolerations: [
        { key: 'kubernetes.azure.com/scalesetpriority', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
        { key: 'CriticalAddonsOnly', operator: 'Exists' },
      ],
      dnsPolicy: 'ClusterFirstWithHostNet',
      dnsConfig: { nameservers: ['10.0.0.10'], options: [{ name: 'ndots', value: '2' }] },
      imagePullSecrets: [{ name: 'registry-creds' }],
      volumes: [
        { name: DU_UID, persistentVolumeClaim: { claimName: DU_NAME, readOnly: false } },
        { name: 'scratch', emptyDir: {} },
        { name: 'cloud-credentials', secret: { secretName: 'cloud-credentials' } },
      ],
    },
  });
});

test('a restricted Linux backup pod runs as a non-root user with RuntimeDefault seccomp, no privilege escalation and no capabilities', () => {
  const pod = buildBackupPod(makePodInput({ securityContext: 'restricted' }));
  assert.deepEqual(pod.spec?.securityContext, {
    runAsNonRoot: true,
    runAsUser: RESTRICTED_RUN_AS_ID,
    runAsGroup: RESTRICTED_RUN_AS_ID,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.notEqual(RESTRICTED_RUN_AS_ID, 0);
  assert.deepEqual(containerOf(pod).securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
});

test('a restricted Linux backup pod keeps spc_t when the user asked for it', () => {
  const resolved = makeResolved({ [SOURCE_SC]: { readOnly: true, spcNoRelabeling: true } });
  const pod = buildBackupPod(makePodInput({ securityContext: 'restricted', resolved }));
  assert.deepEqual(pod.spec?.securityContext?.seLinuxOptions, { type: 'spc_t' });
  assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
});

test('the default security context is root, like Velero, and the container has none', () => {
  for (const input of [makePodInput(), makePodInput({ securityContext: 'root' })]) {
    const pod = buildBackupPod(input);
    assert.deepEqual(pod.spec?.securityContext, { runAsUser: 0 });
    assert.equal(containerOf(pod).securityContext, undefined);
  }
});

test('a Windows backup pod runs as ContainerAdministrator, or as ContainerUser when restricted, without Linux-only fields', () => {
  const resolved = makeResolved({ [SOURCE_SC]: { readOnly: true, spcNoRelabeling: true } });
  const cases: ['root' | 'restricted', unknown][] = [
    ['root', { windowsOptions: { runAsUserName: 'ContainerAdministrator' } }],
    ['restricted', { runAsNonRoot: true, windowsOptions: { runAsUserName: 'ContainerUser' } }],
  ];
  for (const [securityContext, expected] of cases) {
    const pod = buildBackupPod(makePodInput({ nodeOS: 'windows', securityContext, resolved }));
    assert.deepEqual(pod.spec?.securityContext, expected, securityContext);
    assert.equal(containerOf(pod).securityContext, undefined, securityContext);
    assert.equal(pod.spec?.nodeSelector, undefined);
    assert.deepEqual(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] }],
    });
    assert.deepEqual(pod.spec?.os, { name: 'windows' });
  }
});

test('non-empty podLabels and podAnnotations replace the inherited ones, and the two exposer labels always win', () => {
  const config = {
    podLabels: { team: 'storage', 'velero.io/data-upload': 'spoofed', 'velero.io/exposer-pod-group': 'x' },
    podAnnotations: { note: 'from config' },
  };
  const pod = buildBackupPod(makePodInput({ config }));
  assert.deepEqual(pod.metadata.labels, {
    team: 'storage',
    'velero.io/data-upload': DU_NAME,
    'velero.io/exposer-pod-group': 'snapshot-exposer',
  });
  assert.deepEqual(pod.metadata.annotations, { note: 'from config' });
});

test('empty podLabels and podAnnotations keep the inherited ones', () => {
  const pod = buildBackupPod(makePodInput({ config: { podLabels: {}, podAnnotations: {} } }));
  assert.equal(pod.metadata.labels?.['azure.workload.identity/use'], 'true');
  assert.deepEqual(pod.metadata.annotations, { 'iam.amazonaws.com/role': 'velero-role' });
});

test('a template without labels, annotations, tolerations or optional fields gives a pod without them', () => {
  const pod = buildBackupPod(makePodInput({ template: { image: IMAGE } }));
  assert.deepEqual(pod.metadata.labels, {
    'velero.io/data-upload': DU_NAME,
    'velero.io/exposer-pod-group': 'snapshot-exposer',
  });
  assert.equal('annotations' in pod.metadata, false);
  for (const field of [
    'tolerations',
    'serviceAccountName',
    'dnsPolicy',
    'dnsConfig',
    'imagePullSecrets',
    'nodeSelector',
  ]) {
    assert.equal(field in pod.spec!, false, field);
  }
  const container = containerOf(pod);
  assert.equal(container.imagePullPolicy, 'IfNotPresent');
  for (const field of ['env', 'envFrom', 'resources', 'volumeDevices']) assert.equal(field in container, false, field);
  assert.deepEqual(pod.spec?.volumes, [
    { name: DU_UID, persistentVolumeClaim: { claimName: DU_NAME, readOnly: false } },
  ]);
});

test('a template command replaces the data mover command', () => {
  const pod = buildBackupPod(makePodInput({ template: makeTemplate({ command: ['/custom', 'backup'] }) }));
  assert.deepEqual(containerOf(pod).command, ['/custom', 'backup']);
});

test('the resource timeout is written the way Go prints durations, and an unparsable one is passed through verbatim', () => {
  const cases: [string, string][] = [
    ['10m0s', '10m0s'],
    ['1h', '1h0m0s'],
    ['90s', '1m30s'],
    ['0', '0s'],
    ['ten minutes', 'ten minutes'],
  ];
  for (const [operationTimeout, expected] of cases) {
    const pod = buildBackupPod(makePodInput({ du: makeDataUpload({ operationTimeout }) }));
    assert.equal(containerOf(pod).args?.[3], `--resource-timeout=${expected}`, operationTimeout);
  }
});

test('a Block backup pod keeps the inherited mounts beside the volume device', () => {
  const pod = buildBackupPod(makePodInput({ volumeMode: 'Block' }));
  const container = containerOf(pod);
  assert.deepEqual(container.volumeDevices, [{ name: DU_UID, devicePath: `/${DU_UID}` }]);
  assert.deepEqual(container.volumeMounts, [{ name: 'scratch', mountPath: '/scratch' }]);
});

test('a loadAffinity entry with an empty selector adds nothing to the OS pin', () => {
  const pod = buildBackupPod(makePodInput({ config: { loadAffinity: [{ nodeSelector: {} }] } }));
  assert.deepEqual(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, {
    nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] }] }],
  });
});

test('unparsable podResources values are left out instead of failing the pod', () => {
  const pod = buildBackupPod(makePodInput({ config: { podResources: { cpuRequest: 'lots', memoryRequest: '1Gi' } } }));
  assert.deepEqual(containerOf(pod).resources, { requests: { memory: '1Gi' } });
});

test('ephemeralStorageRequest and ephemeralStorageLimit become the container ephemeral-storage request and limit', () => {
  const pod = buildBackupPod(
    makePodInput({
      config: {
        podResources: {
          cpuRequest: '100m',
          memoryLimit: '1Gi',
          ephemeralStorageRequest: '512Mi',
          ephemeralStorageLimit: '2Gi',
        },
      },
    }),
  );
  assert.deepEqual(containerOf(pod).resources, {
    requests: { cpu: '100m', 'ephemeral-storage': '512Mi' },
    limits: { memory: '1Gi', 'ephemeral-storage': '2Gi' },
  });
});

test('ephemeral storage alone, or "0" for unbounded, stands on its own like the other resources', () => {
  const cases: [string, { ephemeralStorageRequest?: string; ephemeralStorageLimit?: string }, unknown][] = [
    ['only a limit', { ephemeralStorageLimit: '10Gi' }, { limits: { 'ephemeral-storage': '10Gi' } }],
    ['only a request', { ephemeralStorageRequest: '1G' }, { requests: { 'ephemeral-storage': '1G' } }],
    [
      'a request with an unbounded limit',
      { ephemeralStorageRequest: '1Gi', ephemeralStorageLimit: '0' },
      { requests: { 'ephemeral-storage': '1Gi' } },
    ],
    ['both unbounded', { ephemeralStorageRequest: '0', ephemeralStorageLimit: '0' }, undefined],
  ];
  for (const [name, podResources, expected] of cases) {
    const pod = buildBackupPod(makePodInput({ config: { podResources } }));
    assert.deepEqual(containerOf(pod).resources, expected, name);
  }
});

test('a WaitForFirstConsumer source volume topology: every term gets the loadAffinity and OS requirements (Velero 1.18.3)', () => {
  const volumeTopology = {
    nodeSelectorTerms: [
      { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['z1'] }] },
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] },
    ],
  };
  const pod = buildBackupPod(
    makePodInput({ config: { loadAffinity: [{ nodeSelector: { matchLabels: { pool: 'g' } } }] }, volumeTopology }),
  );
  const pool = { key: 'pool', operator: 'In', values: ['g'] };
  assert.deepEqual(
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    [
      {
        matchExpressions: [
          { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['z1'] },
          pool,
          { key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] },
        ],
      },
      {
        matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }],
        matchExpressions: [pool, { key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] }],
      },
    ],
  );
  assert.equal(volumeTopology.nodeSelectorTerms[0]!.matchExpressions!.length, 1, 'the topology is not mutated');
});
