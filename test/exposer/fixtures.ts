/**
 * Test fixtures for the exposer builders: Velero-shaped source objects (after `velero-samples/`), a node-agent
 * DaemonSet as `velero install` makes it, and helpers to prove builders neither mutate nor share their inputs.
 */
import assert from 'node:assert/strict';
import type {
  DaemonSet,
  DataUpload,
  PersistentVolumeClaim,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../src/api/index.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import {
  resolveBackupPvcConfig,
  type BackupPodInput,
  type BackupPodTemplate,
  type ResolvedBackupPvc,
} from '../../src/exposer/index.js';

export const DU_NAME = 'mybackup-x6nd7';
export const DU_NAMESPACE = 'velero';
export const DU_UID = '0f9c1d2e-3a4b-4c5d-8e6f-708192a3b4c5';
export const SOURCE_SC = 'csi-rbd';
export const IMAGE = 'velero/velero:v1.17.0';

/** Freezes `value` and everything reachable from it; writing to it then throws (ES modules are strict). */
export { deepFreeze } from '../../src/config/deep-freeze.js';

/** The DataUpload of `velero-samples/derived-dataupload.v1.17.yaml`, Accepted. */
export function makeDataUpload(over: { operationTimeout?: string; storageClass?: string } = {}): DataUpload {
  return {
    apiVersion: 'velero.io/v2alpha1',
    kind: 'DataUpload',
    metadata: {
      name: DU_NAME,
      namespace: DU_NAMESPACE,
      uid: DU_UID,
      resourceVersion: '4711',
      labels: { 'velero.io/backup-name': 'mybackup', 'velero.io/expose-on-going': 'true' },
      ownerReferences: [
        { apiVersion: 'velero.io/v1', kind: 'Backup', name: 'mybackup', uid: 'b-uid', controller: true },
      ],
    },
    spec: {
      snapshotType: 'CSI',
      csiSnapshot: {
        volumeSnapshot: 'velero-mypvc-abcde',
        storageClass: over.storageClass ?? SOURCE_SC,
        snapshotClass: 'csi-rbd-vsc',
        driver: 'rbd.csi.ceph.com',
      },
      sourcePVC: 'mypvc',
      sourceNamespace: 'app',
      datamover: 'velero',
      backupStorageLocation: 'default',
      operationTimeout: over.operationTimeout ?? '10m0s',
    },
    status: { phase: 'Accepted', acceptedByNode: 'node-a', acceptedTimestamp: '2025-01-01T00:00:00Z' },
  };
}

/** The source VolumeSnapshot in the application namespace, ready. */
export function makeSourceVs(
  over: { restoreSize?: string | number | null; annotations?: Record<string, string> } = {},
): VolumeSnapshot {
  const vs: VolumeSnapshot = {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: {
      name: 'velero-mypvc-abcde',
      namespace: 'app',
      uid: 'src-vs-uid',
      resourceVersion: '100',
      annotations: over.annotations ?? { 'velero.io/source-pvc': 'mypvc', 'example.com/team': 'storage' },
      labels: { 'velero.io/backup-name': 'mybackup' },
      finalizers: ['snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection'],
    },
    spec: { source: { persistentVolumeClaimName: 'mypvc' }, volumeSnapshotClassName: 'csi-rbd-vsc' },
    status: {
      boundVolumeSnapshotContentName: 'snapcontent-1234',
      readyToUse: true,
      creationTime: '2025-01-01T00:00:00Z',
    },
  };
  if (over.restoreSize !== null) vs.status!.restoreSize = over.restoreSize ?? '10Gi';
  return vs;
}

/** The source VolumeSnapshotContent bound to {@link makeSourceVs}. */
export function makeSourceVsc(
  over: { labels?: Record<string, string>; snapshotHandle?: string | null } = {},
): VolumeSnapshotContent {
  const vsc: VolumeSnapshotContent = {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotContent',
    metadata: {
      name: 'snapcontent-1234',
      uid: 'src-vsc-uid',
      resourceVersion: '101',
      annotations: { 'snapshot.storage.kubernetes.io/deletion-secret-name': 'csi-rbd-secret' },
      labels: over.labels ?? {
        'snapshot.storage.kubernetes.io/managed-by': 'external-snapshotter-node-a',
        'velero.io/backup-name': 'mybackup',
      },
      finalizers: ['snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection'],
    },
    spec: {
      deletionPolicy: 'Retain',
      driver: 'rbd.csi.ceph.com',
      source: { volumeHandle: 'vol-0001' },
      volumeSnapshotRef: { name: 'velero-mypvc-abcde', namespace: 'app', uid: 'src-vs-uid' },
      volumeSnapshotClassName: 'csi-rbd-vsc',
    },
    status: { readyToUse: true, restoreSize: 10737418240 },
  };
  if (over.snapshotHandle !== null) vsc.status!.snapshotHandle = over.snapshotHandle ?? '0001-0009-rbd-snap-42';
  return vsc;
}

/** The backup VolumeSnapshot as the API server returned it on create: with uid and resourceVersion. */
export function makeCreatedBackupVs(): VolumeSnapshot {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name: DU_NAME, namespace: DU_NAMESPACE, uid: 'backup-vs-uid', resourceVersion: '5001' },
    spec: { source: { volumeSnapshotContentName: DU_NAME }, volumeSnapshotClassName: 'csi-rbd-vsc' },
  };
}

/** The source PVC in the application namespace. */
export function makeSourcePvc(over: { volumeMode?: string; storage?: string | null } = {}): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'mypvc', namespace: 'app', uid: 'pvc-uid' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: SOURCE_SC,
      ...(over.volumeMode !== undefined && { volumeMode: over.volumeMode }),
      resources: over.storage === null ? {} : { requests: { storage: over.storage ?? '8Gi' } },
      volumeName: 'pv-0001',
    },
    status: { phase: 'Bound', capacity: { storage: '8Gi' } },
  };
}

/** The node-agent DaemonSet as `velero install --use-node-agent` creates it, plus Azure/AWS extras. */
export function makeNodeAgentDaemonSet(): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'node-agent', namespace: DU_NAMESPACE },
    spec: {
      template: {
        metadata: {
          labels: { name: 'node-agent', role: 'node-agent', 'azure.workload.identity/use': 'true' },
          annotations: { 'iam.amazonaws.com/role': 'velero-role', 'prometheus.io/scrape': 'true' },
        },
        spec: {
          serviceAccountName: 'velero',
          dnsPolicy: 'ClusterFirstWithHostNet',
          dnsConfig: { nameservers: ['10.0.0.10'], options: [{ name: 'ndots', value: '2' }] },
          imagePullSecrets: [{ name: 'registry-creds' }],
          tolerations: [
            { key: 'dedicated', operator: 'Equal', value: 'backup', effect: 'NoSchedule' },
            { key: 'CriticalAddonsOnly', operator: 'Exists' },
            { key: 'kubernetes.azure.com/scalesetpriority', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
            { key: 'CriticalAddonsOnly', operator: 'Equal', value: 'second', effect: 'NoExecute' },
          ],
          volumes: [
            { name: 'host-pods', hostPath: { path: '/var/lib/kubelet/pods' } },
            { name: 'host-plugins', hostPath: { path: '/var/lib/kubelet/plugins' } },
            { name: 'scratch', emptyDir: {} },
            { name: 'cloud-credentials', secret: { secretName: 'cloud-credentials' } },
          ],
          containers: [
            {
              name: 'node-agent',
              image: IMAGE,
              imagePullPolicy: 'Always',
              command: ['/velero'],
              args: ['node-agent', 'server', '--log-level', 'debug', '--log-format=json', '--features='],
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'VELERO_SCRATCH_DIR', value: '/scratch' },
              ],
              envFrom: [{ secretRef: { name: 'extra-env' } }],
              volumeMounts: [
                { name: 'host-pods', mountPath: '/host_pods', mountPropagation: 'HostToContainer' },
                { name: 'host-plugins', mountPath: '/var/lib/kubelet/plugins', mountPropagation: 'HostToContainer' },
                { name: 'scratch', mountPath: '/scratch' },
                { name: 'cloud-credentials', mountPath: '/credentials' },
              ],
            },
          ],
        },
      },
    },
  };
}

/** A template as {@link makeNodeAgentDaemonSet} yields it, built by hand so pod tests do not depend on the reader. */
export function makeTemplate(over: Partial<BackupPodTemplate> = {}): BackupPodTemplate {
  return {
    image: IMAGE,
    imagePullPolicy: 'IfNotPresent',
    serviceAccountName: 'velero',
    env: [{ name: 'VELERO_SCRATCH_DIR', value: '/scratch' }],
    envFrom: [{ secretRef: { name: 'extra-env' } }],
    volumes: [{ name: 'scratch', emptyDir: {} }],
    volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
    dnsPolicy: 'ClusterFirstWithHostNet',
    imagePullSecrets: [{ name: 'registry-creds' }],
    logArgs: ['--log-format=json', '--log-level', 'debug'],
    tolerations: [{ key: 'CriticalAddonsOnly', operator: 'Exists' }],
    labels: { 'azure.workload.identity/use': 'true' },
    annotations: { 'iam.amazonaws.com/role': 'velero-role' },
    ...over,
  };
}

/** The resolved entry for the source class under `backupPVC`. */
export function makeResolved(backupPVC?: NodeAgentConfig['backupPVC']): ResolvedBackupPvc {
  return resolveBackupPvcConfig(SOURCE_SC, backupPVC);
}

/** A Linux Filesystem backupPod input with an empty config. */
export function makePodInput(over: Partial<BackupPodInput> = {}): BackupPodInput {
  return {
    du: makeDataUpload(),
    template: makeTemplate(),
    resolved: makeResolved(),
    volumeMode: 'Filesystem',
    nodeOS: 'linux',
    config: {},
    ...over,
  };
}

/** Every object and array reachable from `value`. */
export function reachableObjects(value: unknown, found: Set<object> = new Set()): Set<object> {
  if (value !== null && typeof value === 'object' && !found.has(value)) {
    found.add(value);
    for (const child of Object.values(value)) reachableObjects(child, found);
  }
  return found;
}

/** Asserts that no object or array of `output` is also part of `input`, so editing one can never change the other. */
export function assertSharesNothing(output: unknown, input: unknown): void {
  const inputs = reachableObjects(input);
  const shared = [...reachableObjects(output)].filter((o) => inputs.has(o));
  assert.deepEqual(shared, [], 'the output shares objects with its input');
}
