import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnoseExpose, ExposeFindingReason, formatExposeReport } from '../../src/diagnostics/index.js';
import type { ExposeObservation, ExposeReport, Finding, FindingSubject } from '../../src/diagnostics/index.js';
import {
  backupVs,
  backupVsc,
  boundPvc,
  dataUpload,
  DU_NAME,
  DU_NAMESPACE,
  event,
  healthyObservation,
  IMAGE,
  pendingPvc,
  podEvent,
  POD_UID,
  PV_NAME,
  pvcEvent,
  runningPod,
  SCHEDULER_MESSAGE,
  SOURCE_NAMESPACE,
  SOURCE_VS,
  sourceVs,
  unschedulablePod,
  waitingPod,
} from './fixtures.js';

const POD_CONTAINER = dataUpload().metadata.uid!;

function finding(report: ExposeReport, subject: FindingSubject): Finding {
  const found = report.findings.find((item) => item.subject === subject);
  assert.ok(found, `no ${subject} finding in ${JSON.stringify(report.findings.map((item) => item.subject))}`);
  return found;
}

function reasons(report: ExposeReport): string[] {
  return report.findings.map((item) => `${item.subject}:${item.reason}`);
}

/** Waiting for a WaitForFirstConsumer volume: the PVC is Pending with only a Normal event. */
function unschedulableObservation(): ExposeObservation {
  return {
    ...healthyObservation(),
    pod: unschedulablePod(),
    pvc: pendingPvc('csi-standard'),
    pv: undefined,
    events: [
      podEvent('FailedScheduling', SCHEDULER_MESSAGE, { seriesCount: 7, lastTimestamp: '2026-05-01T10:29:00Z' }),
      pvcEvent('WaitForFirstConsumer', 'waiting for first consumer to be created before binding', { type: 'Normal' }),
    ],
  };
}

test('a healthy expose gives one healthy finding per backup object and says so in the cause', () => {
  const report = diagnoseExpose(healthyObservation());
  assert.deepEqual(reasons(report), [
    'BackupPod:BackupPodRunning',
    'BackupPVC:BackupPVCBound',
    'BackupPV:BackupPVBound',
    'BackupVolumeSnapshot:VolumeSnapshotReady',
    'BackupVolumeSnapshotContent:VolumeSnapshotContentReady',
  ]);
  assert.ok(report.findings.every((item) => item.healthy));
  assert.equal(report.cause, `all exposed objects are healthy: backup pod ${DU_NAMESPACE}/${DU_NAME} is Running`);
  assert.equal(
    finding(report, 'BackupPod').message,
    `backup pod ${DU_NAMESPACE}/${DU_NAME}: phase Running, node worker-2`,
  );
  assert.deepEqual(finding(report, 'BackupPod').regarding, {
    apiVersion: 'v1',
    kind: 'Pod',
    name: DU_NAME,
    namespace: DU_NAMESPACE,
    uid: POD_UID,
  });
  assert.equal(
    finding(report, 'BackupVolumeSnapshotContent').message,
    `backup VolumeSnapshotContent ${DU_NAME}: readyToUse true, snapshot handle snap-2f9a`,
  );
});

test('an unschedulable pod is the cause, with the scheduler message verbatim', () => {
  const report = diagnoseExpose(unschedulableObservation());
  assert.equal(report.cause, `backup pod Pending: ${SCHEDULER_MESSAGE}`);
  const pod = finding(report, 'BackupPod');
  assert.equal(pod.reason, ExposeFindingReason.BackupPodUnschedulable);
  assert.equal(pod.healthy, false);
  assert.equal(
    pod.message,
    `backup pod ${DU_NAMESPACE}/${DU_NAME}: phase Pending, node <none>; ` +
      `condition PodScheduled=False (Unschedulable): ${SCHEDULER_MESSAGE}; ` +
      `Warning events: FailedScheduling: ${SCHEDULER_MESSAGE} (x7)`,
  );
  const pvc = finding(report, 'BackupPVC');
  assert.equal(pvc.reason, ExposeFindingReason.BackupPVCNotBound);
  assert.doesNotMatch(pvc.message, /Warning events|WaitForFirstConsumer/);
  assert.ok(!report.findings.some((item) => item.subject === 'BackupPV'), 'an unbound PVC expects no PV');
});

test('a PVC that cannot be provisioned ReadOnlyMany is the cause, through its newest ProvisioningFailed warning', () => {
  const older =
    'failed to provision volume with StorageClass "csi-standard": rpc error: code = Unavailable desc = connection refused';
  const newest =
    'failed to provision volume with StorageClass "csi-standard": rpc error: code = InvalidArgument desc = ' +
    'volume capability access type ReadOnlyMany is not supported';
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: unschedulablePod(
      '0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are ' +
        'available: 3 Preemption is not helpful for scheduling.',
    ),
    pvc: pendingPvc('csi-standard', ['ReadOnlyMany']),
    pv: undefined,
    events: [
      pvcEvent('ProvisioningFailed', newest, { count: 4, lastTimestamp: '2026-05-01T10:20:00Z' }),
      pvcEvent('ProvisioningFailed', older, { count: 1, lastTimestamp: '2026-05-01T10:01:00Z' }),
      pvcEvent(
        'ExternalProvisioning',
        "Waiting for a volume to be created either by the external provisioner 'hostpath.csi.k8s.io' or manually by the system administrator.",
        { type: 'Normal', count: 40 },
      ),
    ],
  };
  const report = diagnoseExpose(observation);
  assert.equal(report.cause, `backup PVC Pending: ${newest}`);
  const pvc = finding(report, 'BackupPVC');
  assert.equal(pvc.reason, ExposeFindingReason.BackupPVCNotBound);
  assert.equal(
    pvc.message,
    `backup PVC ${DU_NAMESPACE}/${DU_NAME}: phase Pending, storage class csi-standard, access modes ReadOnlyMany, ` +
      `volume <none>, data source VolumeSnapshot/${DU_NAME}; ` +
      `Warning events: ProvisioningFailed: ${newest} (x4); ProvisioningFailed: ${older} (x1)`,
  );
});

test('a PVC whose storage class does not exist names the class in the cause', () => {
  const observation: ExposeObservation = {
    ...unschedulableObservation(),
    pvc: pendingPvc('fast-ro', ['ReadOnlyMany']),
    events: [pvcEvent('ProvisioningFailed', 'storageclass.storage.k8s.io "fast-ro" not found', { count: 12 })],
  };
  const report = diagnoseExpose(observation);
  assert.equal(report.cause, 'backup PVC Pending: storageclass.storage.k8s.io "fast-ro" not found');
  assert.match(finding(report, 'BackupPVC').message, /storage class fast-ro, access modes ReadOnlyMany/);
  assert.match(
    finding(report, 'BackupPVC').message,
    /Warning events: ProvisioningFailed: storageclass.storage.k8s.io "fast-ro" not found \(x12\)$/,
  );
});

test('a Pending PVC without warnings is the cause when the pod is not unschedulable', () => {
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: waitingPod('ContainerCreating', ''),
    pvc: pendingPvc('csi-standard'),
    pv: undefined,
  };
  assert.equal(
    diagnoseExpose(observation).cause,
    `backup PVC ${DU_NAMESPACE}/${DU_NAME} is Pending: no volume is bound yet`,
  );
});

test('a source snapshot in error is the cause, ahead of the backup objects it never produced', () => {
  const error =
    'Failed to check and update snapshot content: failed to take snapshot of the volume vol-77: ' +
    '"rpc error: code = Internal desc = snapshot quota exceeded"';
  const observation: ExposeObservation = {
    du: dataUpload(),
    sourceVs: sourceVs({ readyToUse: false, error: { message: error, time: '2026-05-01T10:00:03Z' } }),
    events: [],
  };
  const report = diagnoseExpose(observation);
  assert.equal(report.cause, `source VolumeSnapshot ${SOURCE_NAMESPACE}/${SOURCE_VS} failed: ${error}`);
  assert.deepEqual(reasons(report), [
    'BackupPod:BackupPodMissing',
    'BackupPVC:BackupPVCMissing',
    'BackupVolumeSnapshot:VolumeSnapshotMissing',
    'SourceVolumeSnapshot:VolumeSnapshotError',
  ]);
  assert.equal(
    finding(report, 'SourceVolumeSnapshot').message,
    `source VolumeSnapshot ${SOURCE_NAMESPACE}/${SOURCE_VS}: readyToUse false, bound content <none>, error ${error}`,
  );
});

test('a backup snapshot that is not ready is blamed on its content when the content has the error', () => {
  const content = backupVsc(false);
  content.status = { ...content.status, error: { message: 'snapshot handle snap-2f9a not found on the backend' } };
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: waitingPod('ContainerCreating', ''),
    pvc: pendingPvc('csi-standard'),
    pv: undefined,
    backupVs: backupVs(false),
    backupVsc: content,
  };
  const report = diagnoseExpose(observation);
  assert.equal(
    report.cause,
    `backup VolumeSnapshotContent ${DU_NAME} failed: snapshot handle snap-2f9a not found on the backend`,
  );
  assert.equal(finding(report, 'BackupVolumeSnapshot').reason, ExposeFindingReason.VolumeSnapshotNotReady);
  assert.equal(finding(report, 'BackupVolumeSnapshotContent').reason, ExposeFindingReason.VolumeSnapshotContentError);
});

test('a source snapshot that is not ready takes the error of its content', () => {
  const observation: ExposeObservation = {
    du: dataUpload(),
    sourceVs: sourceVs({ readyToUse: false, boundVolumeSnapshotContentName: 'snapcontent-1' }),
    sourceVsc: {
      ...backupVsc(false),
      metadata: { name: 'snapcontent-1' },
      status: { readyToUse: false, error: { message: 'driver timed out creating the snapshot' } },
    },
    events: [],
  };
  const report = diagnoseExpose(observation);
  const source = finding(report, 'SourceVolumeSnapshot');
  assert.equal(source.reason, ExposeFindingReason.VolumeSnapshotContentError);
  assert.equal(
    report.cause,
    'source VolumeSnapshotContent snapcontent-1 failed: driver timed out creating the snapshot',
  );
  assert.match(
    source.message,
    /^source VolumeSnapshot app\/velero-data-x7k2: .*; source VolumeSnapshotContent snapcontent-1: /,
  );
  assert.ok(
    report.lines.includes(
      'source VSC snapcontent-1, readyToUse false, errMessage driver timed out creating the snapshot, handle snap-2f9a',
    ),
  );
});

test('an image pull back-off is the cause, with the kubelet message', () => {
  const waitingMessage = `Back-off pulling image "${IMAGE}"`;
  const pullError =
    `Failed to pull image "${IMAGE}": rpc error: code = NotFound desc = failed to pull and unpack image ` +
    `"docker.io/${IMAGE}": not found`;
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: waitingPod('ImagePullBackOff', waitingMessage),
    events: [
      podEvent('Failed', pullError, { count: 3, lastTimestamp: '2026-05-01T10:02:00Z' }),
      podEvent('Failed', 'Error: ErrImagePull', { count: 3, lastTimestamp: '2026-05-01T10:02:00Z' }),
      podEvent('BackOff', waitingMessage, { count: 20, lastTimestamp: '2026-05-01T10:29:30Z' }),
      podEvent('Pulling', `Pulling image "${IMAGE}"`, { type: 'Normal', count: 4 }),
    ],
  };
  const report = diagnoseExpose(observation);
  assert.equal(report.cause, `backup pod ImagePullBackOff: ${waitingMessage}`);
  const pod = finding(report, 'BackupPod');
  assert.equal(pod.reason, ExposeFindingReason.BackupPodImagePullFailed);
  assert.match(pod.message, new RegExp(`container ${POD_CONTAINER} waiting: ImagePullBackOff: Back-off pulling image`));
  assert.match(pod.message, /condition Ready=False \(ContainersNotReady\)/);
  assert.doesNotMatch(pod.message, /PodScheduled/, 'True conditions are left out of the note');
  assert.ok(
    pod.message.endsWith(
      // Equal times: the order falls back to reason, then message.
      `Warning events: BackOff: ${waitingMessage} (x20); Failed: Error: ErrImagePull (x3); Failed: ${pullError} (x3)`,
    ),
    pod.message,
  );
});

test('an image that is never pulled is an image pull failure too', () => {
  const message = `Container image "${IMAGE}" is not present with pull policy of Never`;
  const report = diagnoseExpose({ ...healthyObservation(), pod: waitingPod('ErrImageNeverPull', message) });
  assert.equal(finding(report, 'BackupPod').reason, ExposeFindingReason.BackupPodImagePullFailed);
  assert.equal(report.cause, `backup pod ErrImageNeverPull: ${message}`);
});

test('a failed pod is the cause with its terminated container', () => {
  const pod = runningPod();
  pod.status = {
    phase: 'Failed',
    containerStatuses: [
      {
        name: POD_CONTAINER,
        state: { terminated: { exitCode: 1, reason: 'Error', message: 'data path init failed' } },
      },
    ],
  };
  const report = diagnoseExpose({ ...healthyObservation(), pod });
  assert.equal(finding(report, 'BackupPod').reason, ExposeFindingReason.BackupPodFailed);
  assert.equal(report.cause, 'backup pod Failed: Error: data path init failed');
  assert.match(
    finding(report, 'BackupPod').message,
    /container .* terminated: Error, exit code 1: data path init failed/,
  );
});

test('a pod waiting on its volume falls back to its newest warning', () => {
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: waitingPod('ContainerCreating', ''),
    events: [podEvent('FailedMount', 'MountVolume.SetUp failed for volume "pvc-9b2e" : rpc error: code = Internal')],
  };
  const report = diagnoseExpose(observation);
  assert.equal(finding(report, 'BackupPod').reason, ExposeFindingReason.BackupPodNotReady);
  assert.equal(
    report.cause,
    'backup pod Pending: MountVolume.SetUp failed for volume "pvc-9b2e" : rpc error: code = Internal',
  );
  assert.equal(
    diagnoseExpose({ ...observation, events: [] }).cause,
    `backup pod ${DU_NAMESPACE}/${DU_NAME} is Pending`,
  );
});

test('objects that are missing are reported where they were expected, and the deepest one is the cause', () => {
  const report = diagnoseExpose({ du: dataUpload(), events: [] });
  assert.deepEqual(reasons(report), [
    'BackupPod:BackupPodMissing',
    'BackupPVC:BackupPVCMissing',
    'BackupVolumeSnapshot:VolumeSnapshotMissing',
    'SourceVolumeSnapshot:VolumeSnapshotMissing',
  ]);
  assert.equal(report.cause, `source VolumeSnapshot ${SOURCE_NAMESPACE}/${SOURCE_VS} not found`);
  assert.deepEqual(finding(report, 'BackupPVC').regarding, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    name: DU_NAME,
    namespace: DU_NAMESPACE,
  });
  assert.deepEqual(report.lines, [
    `begin diagnose CSI exposer for DataUpload ${DU_NAMESPACE}/${DU_NAME}`,
    `cause: source VolumeSnapshot ${SOURCE_NAMESPACE}/${SOURCE_VS} not found`,
    `Pod ${DU_NAMESPACE}/${DU_NAME} not found`,
    `PVC ${DU_NAMESPACE}/${DU_NAME} not found`,
    `VS ${DU_NAMESPACE}/${DU_NAME} not found`,
    `source VS ${SOURCE_NAMESPACE}/${SOURCE_VS} not found`,
    'end diagnose CSI exposer',
  ]);
});

test('a PV that the PVC names but that is gone is missing, and blamed before the PVC', () => {
  const report = diagnoseExpose({ ...healthyObservation(), pv: undefined });
  assert.equal(finding(report, 'BackupPV').reason, ExposeFindingReason.BackupPVMissing);
  assert.equal(report.cause, `backup PV ${PV_NAME} not found`);
});

test('objects that could not be read are unreadable findings, and other read errors become lines', () => {
  const report = diagnoseExpose({
    ...healthyObservation(),
    pod: undefined,
    readErrors: [
      {
        object: 'BackupPod',
        message: 'pods "du-abc12" is forbidden: User "system:serviceaccount:velero:op" cannot get',
      },
      { object: 'events', message: 'the server was unable to return a response in the time allotted' },
    ],
  });
  const pod = finding(report, 'BackupPod');
  assert.equal(pod.reason, ExposeFindingReason.BackupPodUnreadable);
  assert.match(pod.message, /^backup pod velero\/du-abc12 could not be read: pods "du-abc12" is forbidden/);
  assert.match(report.cause, /^cannot read backup pod velero\/du-abc12: pods "du-abc12" is forbidden/);
  assert.ok(report.lines.some((line) => line.startsWith('error getting backup pod velero/du-abc12, err: pods')));
  assert.ok(
    report.lines.includes('error getting events, err: the server was unable to return a response in the time allotted'),
  );
});

test('events of other objects, of older objects with the same name and Normal events are left out', () => {
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: waitingPod('ContainerCreating', ''),
    events: [
      podEvent('FailedMount', 'from a previous pod with the same name', { uid: 'old-uid' }),
      event({ kind: 'Pod', name: DU_NAME, namespace: 'other', reason: 'FailedMount', message: 'another namespace' }),
      event({ kind: 'Pod', name: 'du-zzz99', namespace: DU_NAMESPACE, reason: 'FailedMount', message: 'another pod' }),
      event({ kind: 'PersistentVolumeClaim', name: DU_NAME, namespace: DU_NAMESPACE, reason: 'X', message: 'a PVC' }),
      podEvent('Scheduled', 'Successfully assigned velero/du-abc12 to worker-2', { type: 'Normal' }),
      event({ kind: 'Pod', name: DU_NAME, namespace: DU_NAMESPACE, reason: 'FailedMount', message: 'without a uid' }),
    ],
  };
  const pod = finding(diagnoseExpose(observation), 'BackupPod');
  assert.match(pod.message, /Warning events: FailedMount: without a uid \(x1\)$/);
  const pvc = finding(diagnoseExpose(observation), 'BackupPVC');
  assert.match(
    pvc.message,
    /Warning events: X: a PVC \(x1\)$/,
    'an event without uid matches by kind, name, namespace',
  );
});

test('the note lists the three newest distinct warnings and the report lines list them all', () => {
  const observation: ExposeObservation = {
    ...healthyObservation(),
    pod: waitingPod('ContainerCreating', ''),
    events: [
      podEvent('FailedMount', 'm1', { count: 2, lastTimestamp: '2026-05-01T10:01:00Z' }),
      podEvent('FailedMount', 'm1', { seriesCount: 5, count: 1, lastTimestamp: '2026-05-01T10:09:00Z' }),
      podEvent('FailedMount', 'm2', { lastTimestamp: '2026-05-01T10:02:00Z' }),
      podEvent('FailedAttachVolume', 'a1', { count: 3, lastTimestamp: '2026-05-01T10:04:00Z' }),
      podEvent('FailedMount', 'm3', { lastTimestamp: '2026-05-01T10:03:00Z' }),
    ],
  };
  const report = diagnoseExpose(observation);
  assert.match(
    finding(report, 'BackupPod').message,
    /Warning events: FailedMount: m1 \(x7\); FailedAttachVolume: a1 \(x3\); FailedMount: m3 \(x1\)$/,
  );
  assert.deepEqual(
    report.lines.filter((line) => line.startsWith('Pod event')),
    [
      'Pod event reason FailedMount, message m1 (x7)',
      'Pod event reason FailedAttachVolume, message a1 (x3)',
      'Pod event reason FailedMount, message m3 (x1)',
      'Pod event reason FailedMount, message m2 (x1)',
    ],
  );
});

test('a long note is cut to 1024 bytes between characters, and the cause to one line of 512 bytes', () => {
  const long = `0/3 nodes are available: ${'節点のアフィニティが一致しません。'.repeat(120)}\nsecond line`;
  const report = diagnoseExpose({
    ...healthyObservation(),
    pod: unschedulablePod(long),
    pvc: pendingPvc('csi-standard'),
    pv: undefined,
  });
  const note = finding(report, 'BackupPod').message;
  assert.ok(Buffer.byteLength(note, 'utf8') <= 1024, `${Buffer.byteLength(note, 'utf8')} bytes`);
  assert.ok(Buffer.byteLength(note, 'utf8') > 1000, 'the note uses its room');
  assert.ok(note.endsWith('...'));
  assert.equal(Buffer.from(note, 'utf8').toString('utf8'), note, 'no character is cut in half');
  assert.ok(Buffer.byteLength(report.cause, 'utf8') <= 512);
  assert.ok(report.cause.startsWith('backup pod Pending: 0/3 nodes are available: 節点'));
  assert.doesNotMatch(report.cause, /\n/);
  assert.ok(report.lines.every((line) => !line.includes('\n')));
  for (const item of report.findings) assert.ok(item.message.length <= 1024);
});

test('the report is the same whatever the order of the events, and the observation is left untouched', () => {
  const observation: ExposeObservation = {
    ...unschedulableObservation(),
    events: [
      podEvent('FailedScheduling', 'a', { lastTimestamp: '2026-05-01T10:01:00Z' }),
      podEvent('FailedScheduling', 'b', { lastTimestamp: '2026-05-01T10:01:00Z' }),
      podEvent('FailedScheduling', 'c', { lastTimestamp: '2026-05-01T10:02:00Z' }),
      pvcEvent('ProvisioningFailed', 'p', { lastTimestamp: '2026-05-01T10:01:00Z' }),
    ],
  };
  const before = structuredClone(observation);
  const report = diagnoseExpose(observation);
  assert.deepEqual(observation, before);
  assert.deepEqual(diagnoseExpose({ ...observation, events: [...observation.events].reverse() }), report);
  assert.deepEqual(diagnoseExpose(observation), report);
});

test('formatExposeReport prints the lines of the report, framed like Velero', () => {
  const report = diagnoseExpose(unschedulableObservation());
  const text = formatExposeReport(report);
  assert.deepEqual(text.split('\n'), report.lines);
  assert.deepEqual(report.lines, [
    `begin diagnose CSI exposer for DataUpload ${DU_NAMESPACE}/${DU_NAME}`,
    `cause: backup pod Pending: ${SCHEDULER_MESSAGE}`,
    `Pod ${DU_NAMESPACE}/${DU_NAME}, phase Pending, node name <none>, reason <none>, message <none>`,
    `Pod condition PodScheduled, status False, reason Unschedulable, message ${SCHEDULER_MESSAGE}`,
    `Pod event reason FailedScheduling, message ${SCHEDULER_MESSAGE} (x7)`,
    `PVC ${DU_NAMESPACE}/${DU_NAME}, phase Pending, binding to <none>, storage class csi-standard, access modes ReadWriteOnce`,
    `VS ${DU_NAMESPACE}/${DU_NAME}, bind to ${DU_NAME}, readyToUse true, errMessage <none>`,
    `VSC ${DU_NAME}, readyToUse true, errMessage <none>, handle snap-2f9a`,
    'end diagnose CSI exposer',
  ]);
});

test('a bound backup PVC with a healthy pod is not blamed, even with old warnings', () => {
  const report = diagnoseExpose({
    ...healthyObservation(),
    pod: runningPod(),
    pvc: boundPvc(),
    events: [pvcEvent('ProvisioningFailed', 'transient error', { count: 1 })],
  });
  assert.equal(finding(report, 'BackupPVC').healthy, true);
  assert.match(report.cause, /^all exposed objects are healthy/);
});
