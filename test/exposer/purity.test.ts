/**
 * Every builder is pure: it runs on deeply frozen inputs without writing to them, returns deep-equal objects for
 * equal inputs, and shares no object with its inputs (so a caller editing the output cannot touch a cache or the
 * config).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backupPodTemplateFromDaemonSet,
  backupPodTemplateFromOptions,
  backupPvcSize,
  buildBackupPod,
  buildBackupPvc,
  buildBackupVolumeSnapshot,
  buildBackupVolumeSnapshotContent,
  mergeBackupPodTemplate,
  resolveBackupPvcConfig,
  selectLoadAffinity,
  toNodeAffinity,
  volumeModeOf,
} from '../../src/exposer/index.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import {
  SOURCE_SC,
  assertSharesNothing,
  deepFreeze,
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

const fullConfig: NodeAgentConfig = {
  backupPVC: {
    [SOURCE_SC]: { storageClass: 'ro-class', readOnly: true, spcNoRelabeling: true, annotations: { a: 'b' } },
  },
  loadAffinity: [
    {
      storageClass: 'ro-class',
      nodeSelector: {
        matchLabels: { zone: 'z1', disk: 'ssd' },
        matchExpressions: [{ key: 'pool', operator: 'In', values: ['backup'] }],
      },
    },
  ],
  podResources: { cpuRequest: '100m', memoryLimit: '1Gi' },
  priorityClassName: 'low',
  podLabels: { team: 'storage' },
  podAnnotations: { note: 'x' },
};

interface Case {
  name: string;
  make: () => unknown;
  run: (input: never) => unknown;
  /** Builders that return (parts of) their input by design are exempt from the sharing check. */
  mayShare?: boolean;
}

const cases: Case[] = [
  {
    name: 'resolveBackupPvcConfig',
    make: () => ({ sc: SOURCE_SC, backupPVC: fullConfig.backupPVC }),
    run: (i: { sc: string; backupPVC: NodeAgentConfig['backupPVC'] }) => resolveBackupPvcConfig(i.sc, i.backupPVC),
  },
  {
    name: 'selectLoadAffinity',
    make: () => ({ list: fullConfig.loadAffinity }),
    run: (i: { list: NodeAgentConfig['loadAffinity'] }) => selectLoadAffinity(i.list, 'ro-class'),
    mayShare: true,
  },
  {
    name: 'toNodeAffinity',
    make: () => fullConfig.loadAffinity![0],
    run: (i: NonNullable<NodeAgentConfig['loadAffinity']>[number]) => toNodeAffinity(i),
  },
  {
    name: 'backupPvcSize',
    make: () => ({ vs: makeSourceVs({ restoreSize: null }), pvc: makeSourcePvc() }),
    run: (i: { vs: ReturnType<typeof makeSourceVs>; pvc: ReturnType<typeof makeSourcePvc> }) =>
      backupPvcSize(i.vs, i.pvc),
  },
  {
    name: 'volumeModeOf',
    make: () => makeSourcePvc({ volumeMode: 'Block' }),
    run: (i: ReturnType<typeof makeSourcePvc>) => volumeModeOf(i),
  },
  {
    name: 'buildBackupVolumeSnapshot',
    make: () => ({ du: makeDataUpload(), sourceVs: makeSourceVs() }),
    run: (i: Parameters<typeof buildBackupVolumeSnapshot>[0]) => buildBackupVolumeSnapshot(i),
  },
  {
    name: 'buildBackupVolumeSnapshotContent',
    make: () => ({ du: makeDataUpload(), backupVs: makeCreatedBackupVs(), sourceVsc: makeSourceVsc() }),
    run: (i: Parameters<typeof buildBackupVolumeSnapshotContent>[0]) => buildBackupVolumeSnapshotContent(i),
  },
  {
    name: 'buildBackupPvc',
    make: () => ({
      du: makeDataUpload(),
      resolved: makeResolved(fullConfig.backupPVC),
      volumeMode: 'Filesystem',
      size: '1Gi',
    }),
    run: (i: Parameters<typeof buildBackupPvc>[0]) => buildBackupPvc(i),
  },
  {
    name: 'backupPodTemplateFromDaemonSet',
    make: () => makeNodeAgentDaemonSet(),
    run: (i: ReturnType<typeof makeNodeAgentDaemonSet>) => backupPodTemplateFromDaemonSet(i),
  },
  {
    name: 'backupPodTemplateFromOptions',
    make: () => ({ image: 'img', serviceAccountName: 'sa', imagePullPolicy: 'Always' }),
    run: (i: Parameters<typeof backupPodTemplateFromOptions>[0]) => backupPodTemplateFromOptions(i),
  },
  {
    name: 'mergeBackupPodTemplate',
    make: () => ({ base: makeTemplate(), overrides: makeTemplate({ image: 'other', tolerations: [] }) }),
    run: (i: { base: ReturnType<typeof makeTemplate>; overrides: ReturnType<typeof makeTemplate> }) =>
      mergeBackupPodTemplate(i.base, i.overrides),
  },
  {
    name: 'buildBackupPod (root, Linux)',
    make: () => makePodInput({ config: fullConfig, resolved: makeResolved(fullConfig.backupPVC) }),
    run: (i: Parameters<typeof buildBackupPod>[0]) => buildBackupPod(i),
  },
  {
    name: 'buildBackupPod (restricted, Windows, Block)',
    make: () =>
      makePodInput({ config: fullConfig, nodeOS: 'windows', volumeMode: 'Block', securityContext: 'restricted' }),
    run: (i: Parameters<typeof buildBackupPod>[0]) => buildBackupPod(i),
  },
];

for (const c of cases) {
  test(`${c.name} leaves its deeply frozen input unchanged`, () => {
    const input = deepFreeze(c.make());
    const before = structuredClone(input);
    assert.doesNotThrow(() => c.run(input as never));
    assert.deepEqual(input, before);
  });

  test(`${c.name} gives deep-equal results for equal inputs`, () => {
    const input = c.make();
    assert.deepEqual(c.run(input as never), c.run(c.make() as never));
    assert.deepEqual(c.run(input as never), c.run(input as never));
  });

  if (!c.mayShare) {
    test(`${c.name} returns objects that share nothing with its input`, () => {
      const input = deepFreeze(c.make());
      assertSharesNothing(c.run(input as never), input);
    });
  }
}

test('building many pods from one frozen config never accumulates affinity terms', () => {
  const config = deepFreeze(structuredClone(fullConfig));
  const first = buildBackupPod(makePodInput({ config, resolved: makeResolved(config.backupPVC) }));
  for (let i = 0; i < 5; i++) buildBackupPod(makePodInput({ config, resolved: makeResolved(config.backupPVC) }));
  const last = buildBackupPod(makePodInput({ config, resolved: makeResolved(config.backupPVC) }));
  assert.deepEqual(last.spec?.affinity, first.spec?.affinity);
  assert.equal(
    last.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]
      ?.matchExpressions?.length,
    4,
    'the selector requirements plus one OS pin, however many pods were built',
  );
});
