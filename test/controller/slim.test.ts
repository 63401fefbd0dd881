import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../../src/api/kube.js';
import { cacheTransforms } from '../../src/controller/slim.js';

const slim = cacheTransforms('velero');
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

test('a Node keeps its name, version and labels only (not its image list and status)', () => {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'n1',
      uid: 'u',
      resourceVersion: '5',
      labels: { 'kubernetes.io/os': 'linux' },
      annotations: { a: 'b' },
    },
    status: { images: [{ names: ['x'], sizeBytes: 1 }] },
  };
  assert.deepEqual(slim.nodes(node), {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', uid: 'u', resourceVersion: '5', labels: { 'kubernetes.io/os': 'linux' } },
  });
});

test('a source PVC keeps what exposing reads: class, modes, size, volume, phase and the selected node', () => {
  const pvc = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: 'data',
      namespace: 'app',
      uid: 'u',
      resourceVersion: '3',
      creationTimestamp: 't',
      labels: { app: 'db' },
      annotations: { 'volume.kubernetes.io/selected-node': 'n1', [LAST_APPLIED]: '{...}', other: 'x' },
      finalizers: ['kubernetes.io/pvc-protection'],
    },
    spec: {
      storageClassName: 'fast',
      accessModes: ['ReadWriteOnce'],
      volumeMode: 'Block',
      volumeName: 'pv-1',
      resources: { requests: { storage: '1Gi' } },
      selector: { matchLabels: { a: 'b' } },
    },
    status: { phase: 'Bound', capacity: { storage: '1Gi' } },
  };
  const out = slim.persistentVolumeClaims(structuredClone(pvc))!;
  assert.deepEqual(out.metadata, {
    name: 'data',
    namespace: 'app',
    uid: 'u',
    resourceVersion: '3',
    creationTimestamp: 't',
    annotations: { 'volume.kubernetes.io/selected-node': 'n1' },
  });
  assert.deepEqual(out.spec, {
    storageClassName: 'fast',
    accessModes: ['ReadWriteOnce'],
    volumeMode: 'Block',
    volumeName: 'pv-1',
    resources: { requests: { storage: '1Gi' } },
  });
  assert.deepEqual(out.status, { phase: 'Bound' });
  const backup = slim.persistentVolumeClaims(
    structuredClone({ ...pvc, metadata: { ...pvc.metadata, namespace: 'velero' } }),
  )!;
  assert.deepEqual(backup.status, pvc.status, 'a backup PVC is kept whole for the diagnostics');
  assert.equal(backup.metadata.annotations?.[LAST_APPLIED], undefined);
});

test('a PV outside the operator namespace keeps its claim and node affinity; a backup PV is kept whole', () => {
  const pv = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'pv-1', uid: 'u', resourceVersion: '1', creationTimestamp: 't' },
    spec: {
      claimRef: { namespace: 'app', name: 'data', uid: 'c', resourceVersion: '9', kind: 'PersistentVolumeClaim' },
      nodeAffinity: {
        required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'z', operator: 'In', values: ['a'] }] }] },
      },
      csi: { driver: 'd', volumeHandle: 'h' },
      capacity: { storage: '1Gi' },
    },
    status: { phase: 'Bound' },
  };
  assert.deepEqual(slim.persistentVolumes(structuredClone(pv))!.spec, {
    claimRef: { namespace: 'app', name: 'data', uid: 'c' },
    nodeAffinity: pv.spec.nodeAffinity,
  });
  const backup = structuredClone(pv);
  backup.spec.claimRef.namespace = 'velero';
  assert.deepEqual(slim.persistentVolumes(structuredClone(backup)), backup);
});

test('a source VolumeSnapshot keeps its annotations (copied onto the backup snapshot), spec and status', () => {
  const vs = {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: {
      name: 's',
      namespace: 'app',
      uid: 'u',
      resourceVersion: '1',
      creationTimestamp: 't',
      labels: { x: 'y' },
      annotations: { keep: 'me', [LAST_APPLIED]: '{}' },
    },
    spec: { source: { persistentVolumeClaimName: 'data' }, volumeSnapshotClassName: 'c' },
    status: { readyToUse: true, boundVolumeSnapshotContentName: 'vsc', restoreSize: '1Gi' },
  };
  const out = slim.volumeSnapshots(structuredClone(vs))!;
  assert.deepEqual(out.metadata.annotations, { keep: 'me' });
  assert.equal(out.metadata.labels, undefined);
  assert.deepEqual(out.spec, vs.spec);
  assert.deepEqual(out.status, vs.status);
});

test('with references, only what a DataUpload refers to is kept: its sources, their contents and volumes, and the backups', () => {
  const refs = {
    isSourcePvc: (ns: string | undefined, name: string | undefined) => ns === 'app' && name === 'data',
    isSourceSnapshot: (ns: string | undefined, name: string | undefined) => ns === 'app' && name === 'snap',
  };
  const only = cacheTransforms('velero', refs);
  const meta = (name: string, namespace?: string) => ({ name, namespace, uid: name, resourceVersion: '1' });
  const pvc = (namespace: string, name: string) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta(name, namespace),
    spec: {},
  });
  assert.ok(only.persistentVolumeClaims(pvc('app', 'data')));
  assert.ok(only.persistentVolumeClaims(pvc('velero', 'du-1')), 'a backup PVC');
  assert.equal(only.persistentVolumeClaims(pvc('app', 'other')), undefined);
  const pv = (namespace: string, name: string) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: meta(`pv-${name}`),
    spec: { claimRef: { namespace, name } },
  });
  assert.ok(only.persistentVolumes(pv('app', 'data')));
  assert.ok(only.persistentVolumes(pv('velero', 'du-1')));
  assert.equal(only.persistentVolumes(pv('other', 'x')), undefined);
  const vsc = (namespace: string, name: string) => ({
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotContent',
    metadata: meta(`c-${name}`),
    spec: { deletionPolicy: 'Retain', driver: 'd', source: {}, volumeSnapshotRef: { namespace, name } },
  });
  assert.ok(only.volumeSnapshotContents(vsc('app', 'snap')), 'the source content, even once its snapshot is gone');
  assert.ok(only.volumeSnapshotContents(vsc('velero', 'du-1')), 'a backup content');
  assert.equal(only.volumeSnapshotContents(vsc('app', 'unrelated')), undefined);
});

test('a backupPod keeps its metadata, node and status, not its containers, volumes and affinity', () => {
  const metadata = {
    name: 'du-1',
    namespace: 'velero',
    uid: 'u',
    resourceVersion: '9',
    creationTimestamp: 't',
    labels: { 'velero.io/exposer-pod-group': 'snapshot-exposer' },
    ownerReferences: [{ apiVersion: 'velero.io/v2alpha1', kind: 'DataUpload', name: 'du-1', uid: 'du-uid' }],
  };
  const status = {
    phase: 'Pending' as const,
    conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }],
  };
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...metadata, annotations: { [LAST_APPLIED]: '{...}' } },
    spec: {
      nodeName: 'kwok-node-1',
      containers: [{ name: 'du-1', image: 'velero/velero:v1.18.0', env: [{ name: 'A', value: 'b' }] }],
      volumes: [{ name: 'du-1', persistentVolumeClaim: { claimName: 'du-1' } }],
      affinity: { nodeAffinity: {} },
    },
    status,
  };
  assert.deepEqual(slim.pods(pod), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...metadata, annotations: {} },
    spec: { containers: [], nodeName: 'kwok-node-1' },
    status,
  });
  const pending: Pod = { apiVersion: 'v1', kind: 'Pod', metadata, spec: { containers: [] } };
  const unscheduled = slim.pods(pending);
  assert.deepEqual(unscheduled.spec, { containers: [] });
  assert.equal(unscheduled.status, undefined);
});
