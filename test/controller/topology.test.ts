/** plan() and the source volume's topology (Velero 1.18.3): a WaitForFirstConsumer source class pins the backupPod. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PersistentVolume, StorageClass } from '../../src/api/kube.js';
import type { Action } from '../../src/controller/types.js';
import { context, drive, freshWorld } from './world.js';

const WFFC: StorageClass = {
  apiVersion: 'storage.k8s.io/v1',
  kind: 'StorageClass',
  metadata: { name: 'fast' },
  provisioner: 'fake.csi.local',
  volumeBindingMode: 'WaitForFirstConsumer',
};
const ZONE = { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['zone-a'] };
const SOURCE_PV: PersistentVolume = {
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: { name: 'pv-src' },
  spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [ZONE] }] } } },
};

function podOf(actions: Action[]) {
  const create = actions.find((a) => a.type === 'create' && a.resource.kind === 'Pod');
  return create?.type === 'create' ? (create.object as { spec?: { affinity?: any } }) : undefined;
}

test('a WaitForFirstConsumer source class puts the backupPod on the source volume topology', () => {
  const world = freshWorld();
  world.sourcePvc!.spec!.volumeName = 'pv-src';
  world.sourceStorageClass = WFFC;
  world.sourcePv = SOURCE_PV;
  const pod = podOf(drive(world, context()).actions);
  assert.deepEqual(
    pod?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    [{ matchExpressions: [ZONE, { key: 'kubernetes.io/os', operator: 'NotIn', values: ['windows'] }] }],
  );
});

test('an Immediate source class ignores the PV topology, as Velero does', () => {
  const world = freshWorld();
  world.sourcePvc!.spec!.volumeName = 'pv-src';
  world.sourceStorageClass = { ...WFFC, volumeBindingMode: 'Immediate' };
  world.sourcePv = SOURCE_PV;
  const terms = podOf(drive(world, context()).actions)?.spec?.affinity?.nodeAffinity
    ?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  assert.equal(terms?.length, 1);
  assert.equal(terms?.[0]?.matchExpressions?.length, 1, 'only the OS pin');
});

test('a WaitForFirstConsumer source class whose PV is missing fails before anything is made, naming the PV', () => {
  const world = freshWorld();
  world.sourcePvc!.spec!.volumeName = 'pv-gone';
  world.sourceStorageClass = WFFC;
  const { actions } = drive(world, context());
  const finish = actions.find((a) => a.type === 'finish');
  assert.ok(finish?.type === 'finish');
  assert.match(finish.message, /^failed to get source PV pv-gone: it is needed for the volume topology/);
  assert.ok(!actions.some((a) => a.type === 'create'));
});
