import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FAKE_CSI_DRIVER,
  formatBytes,
  plan,
  Switches,
  type Action,
  type FailureBackoff,
  type Pv,
  type Pvc,
  type SnapshotClass,
  type SnapshotContent,
  type StorageClass,
  type View,
  type VolumeSnapshot,
} from './fake-csi-plan.js';

const NOW = new Date('2026-01-02T03:04:05Z');

interface World {
  storageClasses?: StorageClass[];
  snapshotClasses?: SnapshotClass[];
  pvcs?: Pvc[];
  pvs?: Pv[];
  snapshots?: VolumeSnapshot[];
  contents?: SnapshotContent[];
  sizes?: Record<string, number>;
  /** `<namespace>/<name>` of the Secrets and ConfigMaps that exist. */
  secrets?: string[];
  configMaps?: string[];
}

function viewOf(w: World): View {
  const byName = <T extends { metadata: { name: string } }>(items: T[] | undefined, name: string): T | undefined =>
    items?.find((i) => i.metadata.name === name);
  const byKey = <T extends { metadata: { name: string; namespace?: string } }>(
    items: T[] | undefined,
    ns: string,
    name: string,
  ): T | undefined => items?.find((i) => i.metadata.name === name && i.metadata.namespace === ns);
  return {
    storageClass: (n) => byName(w.storageClasses, n),
    snapshotClass: (n) => byName(w.snapshotClasses, n),
    snapshotClasses: () => w.snapshotClasses ?? [],
    pvc: (ns, n) => byKey(w.pvcs, ns, n),
    pvcs: () => w.pvcs ?? [],
    pv: (n) => byName(w.pvs, n),
    pvs: () => w.pvs ?? [],
    snapshot: (ns, n) => byKey(w.snapshots, ns, n),
    snapshots: () => w.snapshots ?? [],
    content: (n) => byName(w.contents, n),
    contents: () => w.contents ?? [],
    sizeOfHandle: (h) => w.sizes?.[h],
    hasSecret: (ns, n) => (w.secrets ?? []).includes(`${ns}/${n}`),
    hasConfigMap: (ns, n) => (w.configMaps ?? []).includes(`${ns}/${n}`),
  };
}

function planFor(w: World, failures: ReadonlyMap<string, FailureBackoff> = new Map()): Action[] {
  return plan({ view: viewOf(w), failures, now: NOW });
}

function sc(name: string, extra: Partial<StorageClass> = {}): StorageClass {
  return { metadata: { name, uid: `uid-${name}` }, provisioner: FAKE_CSI_DRIVER, ...extra };
}

function vsClass(name: string, parameters: Record<string, string> = {}): SnapshotClass {
  return { metadata: { name, uid: `uid-${name}` }, driver: FAKE_CSI_DRIVER, deletionPolicy: 'Delete', parameters };
}

function pvc(
  name: string,
  o: Partial<Pvc['spec']> & { phase?: string; annotations?: Record<string, string> } = {},
): Pvc {
  const { phase, annotations, ...spec } = o;
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, ...(annotations ? { annotations } : {}) },
    spec: {
      storageClassName: 'fake',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '2Gi' } },
      ...spec,
    },
    status: { phase: phase ?? 'Pending' },
  };
}

function snapshot(name: string, source: VolumeSnapshot['spec']['source'], cls = 'snap'): VolumeSnapshot {
  return { metadata: { name, namespace: 'ns', uid: `uid-${name}` }, spec: { volumeSnapshotClassName: cls, source } };
}

function content(name: string, o: Partial<SnapshotContent['spec']> = {}): SnapshotContent {
  return {
    metadata: { name, uid: `uid-${name}` },
    spec: {
      driver: FAKE_CSI_DRIVER,
      deletionPolicy: 'Delete',
      volumeSnapshotRef: { name: 'vs', namespace: 'ns', uid: 'uid-vs' },
      source: { volumeHandle: 'pvc-uid-src' },
      ...o,
    },
  };
}

const boundSource = pvc('src', { phase: 'Bound', volumeName: 'pvc-uid-src' });
const sourceVolume: Pv = {
  metadata: { name: 'pvc-uid-src', uid: 'u' },
  spec: { csi: { driver: FAKE_CSI_DRIVER, volumeHandle: 'h-src' } },
};

test('a snapshot of a bound claim gets a content named after its UID', () => {
  const actions = planFor({
    storageClasses: [sc('fake')],
    snapshotClasses: [vsClass('snap')],
    pvcs: [boundSource],
    pvs: [sourceVolume],
    snapshots: [snapshot('vs', { persistentVolumeClaimName: 'src' })],
  });
  assert.equal(actions.length, 1);
  const create = actions[0]!;
  assert.equal(create.type, 'create');
  const body = (create as { body: { metadata: { name: string }; spec: SnapshotContent['spec'] } }).body;
  assert.equal(body.metadata.name, 'snapcontent-uid-vs');
  assert.equal(body.spec.source.volumeHandle, 'h-src');
  assert.equal(body.spec.volumeSnapshotRef.uid, 'uid-vs');
  assert.equal(body.spec.deletionPolicy, 'Delete');
});

test('a snapshot of a claim that is not bound yet waits', () => {
  const actions = planFor({
    storageClasses: [sc('fake')],
    snapshotClasses: [vsClass('snap')],
    pvcs: [pvc('src')],
    snapshots: [snapshot('vs', { persistentVolumeClaimName: 'src' })],
  });
  assert.deepEqual(
    actions.map((a) => a.key),
    ['create pv pvc-uid-src'],
    'only the claim is provisioned',
  );
});

test('a snapshot whose class belongs to another driver is left alone', () => {
  const other: SnapshotClass = { ...vsClass('snap'), driver: 'other.csi' };
  const actions = planFor({
    storageClasses: [sc('fake')],
    snapshotClasses: [other],
    pvcs: [boundSource],
    snapshots: [snapshot('vs', { persistentVolumeClaimName: 'src' })],
  });
  assert.deepEqual(actions, []);
});

function statusPatches(actions: Action[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of actions) {
    if (a.type === 'patch')
      out[a.path.includes('volumesnapshotcontents') ? 'vsc' : 'vs'] = (a.body as { status: unknown }).status;
  }
  return out;
}

test('a ready snapshot reports handle, size in bytes on the content and as a quantity on the snapshot', () => {
  const patches = statusPatches(
    planFor({
      storageClasses: [sc('fake')],
      snapshotClasses: [vsClass('snap')],
      pvcs: [boundSource],
      snapshots: [snapshot('vs', { persistentVolumeClaimName: 'src' })],
      contents: [content('snapcontent-uid-vs')],
    }),
  );
  assert.deepEqual(patches.vsc, {
    snapshotHandle: 'snap-uid-vs',
    readyToUse: true,
    restoreSize: 2 * 2 ** 30,
    creationTime: NOW.getTime() * 1_000_000,
    error: null,
  });
  assert.deepEqual(patches.vs, {
    boundVolumeSnapshotContentName: 'snapcontent-uid-vs',
    readyToUse: true,
    restoreSize: '2Gi',
    creationTime: NOW.toISOString(),
    error: null,
  });
});

test('the snapshot-error switch reports the message on both objects and never becomes ready', () => {
  const patches = statusPatches(
    planFor({
      storageClasses: [sc('fake')],
      snapshotClasses: [vsClass('snap', { [Switches.snapshotError]: 'disk on fire' })],
      pvcs: [boundSource],
      snapshots: [snapshot('vs', { persistentVolumeClaimName: 'src' })],
      contents: [content('snapcontent-uid-vs')],
    }),
  ) as { vs: VolumeSnapshot['status']; vsc: SnapshotContent['status'] };
  assert.equal(patches.vs?.readyToUse, false);
  assert.equal(patches.vs?.error?.message, 'disk on fire');
  assert.equal(patches.vsc?.readyToUse, false);
  assert.equal(patches.vsc?.error?.message, 'disk on fire');
});

test('a status that already matches is not written again', () => {
  const vs: VolumeSnapshot = {
    ...snapshot('vs', { persistentVolumeClaimName: 'src' }),
    status: { boundVolumeSnapshotContentName: 'snapcontent-uid-vs', readyToUse: true, restoreSize: '2Gi' },
  };
  const vsc: SnapshotContent = {
    ...content('snapcontent-uid-vs'),
    status: { snapshotHandle: 'snap-uid-vs', readyToUse: true, restoreSize: 2 * 2 ** 30 },
  };
  const actions = planFor({
    storageClasses: [sc('fake')],
    snapshotClasses: [vsClass('snap')],
    pvcs: [boundSource],
    snapshots: [vs],
    contents: [vsc],
  });
  assert.deepEqual(actions, []);
});

test('a pre-provisioned content is bound to its snapshot and reports the size known for its handle', () => {
  const staticContent = content('copy', {
    volumeSnapshotRef: { name: 'vs', namespace: 'ns' },
    source: { snapshotHandle: 'snap-old' },
  });
  const actions = planFor({
    snapshots: [snapshot('vs', { volumeSnapshotContentName: 'copy' })],
    contents: [staticContent],
    sizes: { 'snap-old': 1024 },
  });
  const bind = actions.find((a) => a.type === 'patch' && !a.path.endsWith('/status'));
  assert.deepEqual((bind as { body: unknown }).body, { spec: { volumeSnapshotRef: { uid: 'uid-vs' } } });
  const patches = statusPatches(actions) as { vs: VolumeSnapshot['status']; vsc: SnapshotContent['status'] };
  assert.equal(patches.vsc?.snapshotHandle, 'snap-old');
  assert.equal(patches.vs?.restoreSize, '1Ki');
});

test('a pre-provisioned content that names another snapshot is not bound', () => {
  const actions = planFor({
    snapshots: [snapshot('vs', { volumeSnapshotContentName: 'copy' })],
    contents: [content('copy', { volumeSnapshotRef: { name: 'someone-else', namespace: 'ns' } })],
  });
  assert.deepEqual(actions, []);
});

test('a Delete content whose snapshot is gone is deleted; Retain and not-yet-bound contents stay', () => {
  const actions = planFor({
    contents: [
      content('orphan'),
      content('kept', { deletionPolicy: 'Retain' }),
      content('waiting', { volumeSnapshotRef: { name: 'later', namespace: 'ns' } }),
    ],
  });
  assert.deepEqual(
    actions.map((a) => a.key),
    ['delete vsc orphan'],
  );
});

test('a pending claim of a fake class gets a PV with the claim reference, capacity and class settings', () => {
  const actions = planFor({ storageClasses: [sc('fake', { reclaimPolicy: 'Retain' })], pvcs: [pvc('data')] });
  assert.equal(actions.length, 1);
  const pv = (actions[0] as { body: { metadata: { name: string }; spec: Record<string, unknown> } }).body;
  assert.equal(pv.metadata.name, 'pvc-uid-data');
  assert.deepEqual(pv.spec.capacity, { storage: '2Gi' });
  assert.equal(pv.spec.persistentVolumeReclaimPolicy, 'Retain');
  assert.deepEqual(pv.spec.csi, { driver: FAKE_CSI_DRIVER, volumeHandle: 'pvc-uid-data' });
  assert.equal((pv.spec.claimRef as { uid: string }).uid, 'uid-data');
});

test('claims that must wait get no volume', () => {
  const cases: [string, World][] = [
    [
      'never-provision class',
      { storageClasses: [sc('fake', { parameters: { [Switches.neverProvision]: 'true' } })], pvcs: [pvc('d')] },
    ],
    [
      'WaitForFirstConsumer without a selected node',
      { storageClasses: [sc('fake', { volumeBindingMode: 'WaitForFirstConsumer' })], pvcs: [pvc('d')] },
    ],
    ['another provisioner', { storageClasses: [sc('fake', { provisioner: 'other' })], pvcs: [pvc('d')] }],
    [
      'restore from a snapshot that is not ready',
      {
        storageClasses: [sc('fake')],
        pvcs: [pvc('d', { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'vs' } })],
        snapshots: [snapshot('vs', { persistentVolumeClaimName: 'gone' })],
      },
    ],
  ];
  for (const [name, world] of cases) assert.deepEqual(planFor(world), [], name);
});

test('WaitForFirstConsumer provisions once the scheduler selected a node', () => {
  const actions = planFor({
    storageClasses: [sc('fake', { volumeBindingMode: 'WaitForFirstConsumer' })],
    pvcs: [pvc('d', { annotations: { 'volume.kubernetes.io/selected-node': 'kwok-node-0' } })],
  });
  assert.equal(actions.length, 1);
});

test('a refused access mode is reported, then not again until the backoff expires', () => {
  const world: World = {
    storageClasses: [sc('fake', { parameters: { [Switches.refuseAccessModes]: 'ReadWriteMany, ReadOnlyMany' } })],
    pvcs: [pvc('rox', { accessModes: ['ReadOnlyMany'] })],
  };
  const first = planFor(world);
  assert.equal(first.length, 1);
  assert.equal(first[0]!.type, 'provisioningFailed');
  assert.match((first[0] as { message: string }).message, /access mode ReadOnlyMany is not supported/);
  const waiting = new Map([['uid-rox', { nextAt: NOW.getTime() + 1000 }]]);
  assert.deepEqual(planFor(world, waiting), []);
});

test('a released volume with reclaim policy Delete is deleted', () => {
  const released = (name: string, policy: string): Pv => ({
    metadata: { name, uid: name },
    spec: { persistentVolumeReclaimPolicy: policy, csi: { driver: FAKE_CSI_DRIVER, volumeHandle: name } },
    status: { phase: 'Released' },
  });
  const actions = planFor({ pvs: [released('a', 'Delete'), released('b', 'Retain')] });
  assert.deepEqual(
    actions.map((a) => a.key),
    ['delete pv a'],
  );
});

test('byte counts format like a BinarySI quantity', () => {
  const cases: [number, string][] = [
    [2 ** 30, '1Gi'],
    [1536 * 2 ** 20, '1536Mi'],
    [1e9, '1G'],
    [1000, '1k'],
    [1023, '1023'],
    [0, '0'],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

test('a snapshot without a class is taken when its claim belongs to a fake class, with policy Delete', () => {
  const classless: VolumeSnapshot = {
    metadata: { name: 'vs', namespace: 'ns', uid: 'uid-vs' },
    spec: { source: { persistentVolumeClaimName: 'src' } },
  };
  const actions = planFor({
    storageClasses: [sc('fake')],
    pvcs: [boundSource],
    pvs: [sourceVolume],
    snapshots: [classless],
  });
  const body = (actions[0] as { body: { spec: SnapshotContent['spec'] } }).body;
  assert.equal(body.spec.deletionPolicy, 'Delete');
  assert.equal(body.spec.volumeSnapshotClassName, undefined);
  const foreign = planFor({
    storageClasses: [sc('fake', { provisioner: 'other' })],
    pvcs: [boundSource],
    snapshots: [classless],
  });
  assert.deepEqual(foreign, []);
});

describe('classes that provision from namespace-scoped objects', () => {
  const encrypted = sc('enc', {
    parameters: {
      'csi.storage.k8s.io/provisioner-secret-name': 'kms-token',
      'csi.storage.k8s.io/provisioner-secret-namespace': '${pvc.namespace}',
      [Switches.requiresConfigMap]: 'vault-config',
    },
  });
  const claim: Pvc = {
    metadata: { name: 'backup-1', namespace: 'velero', uid: 'pvc-uid-1' },
    spec: { storageClassName: 'enc', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    status: { phase: 'Pending' },
  };

  test('without the Secret in the claim namespace the claim fails like the external-provisioner says', () => {
    const actions = planFor({ storageClasses: [encrypted], pvcs: [claim], configMaps: ['velero/vault-config'] });
    assert.equal(actions.length, 1);
    assert.equal(actions[0]!.type, 'provisioningFailed');
    assert.match(
      (actions[0] as { message: string }).message,
      /error getting secret kms-token in namespace velero: secrets "kms-token" not found/,
    );
  });

  test('without the ConfigMap it fails too; with both it provisions', () => {
    const noCm = planFor({ storageClasses: [encrypted], pvcs: [claim], secrets: ['velero/kms-token'] });
    assert.match((noCm[0] as { message: string }).message, /configmap velero\/vault-config not found/);
    const both = planFor({
      storageClasses: [encrypted],
      pvcs: [claim],
      secrets: ['velero/kms-token'],
      configMaps: ['velero/vault-config'],
    });
    assert.deepEqual(
      both.map((a) => a.type),
      ['create'],
    );
  });
});
