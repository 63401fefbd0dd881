/**
 * The demo's pure parts: its objects are designed so that exactly one DataUpload can be exposed, the operator
 * command line is one the operator accepts, and the report helpers read kubectl's output right.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigMap } from '../../src/api/kube.js';
import { parseNodeAgentConfigMap } from '../../src/config/node-agent-config.js';
import { parseOperatorOptions } from '../../src/config/options.js';
import {
  BROKEN_VOLUME,
  DEMO_DRIVER,
  GOOD_VOLUME,
  MISSING_STORAGE_CLASS,
  dataUpload,
  nodeAgentConfigMap,
  workloadManifests,
} from '../../demo/manifests.js';
import { operatorCommand } from '../../demo/operator.js';
import { describeSummary, parseDemoArgs, unexpectedOutcomes } from '../../demo/report.js';

interface Named {
  kind: string;
  metadata: { name: string };
}
interface StorageClassLike extends Named {
  provisioner: string;
}
interface PvcLike extends Named {
  spec: { storageClassName: string };
}
interface DataUploadLike extends Named {
  spec: { sourcePVC: string; csiSnapshot: { volumeSnapshot: string; storageClass: string } };
}

const workload = (): Named[] => workloadManifests() as unknown as Named[];
const storageClasses = (): StorageClassLike[] =>
  workload().filter((m): m is StorageClassLike => m.kind === 'StorageClass');

describe('the demo objects', () => {
  test('the node-agent config is valid and gives each source class its backupPVC entry', () => {
    const result = parseNodeAgentConfigMap(nodeAgentConfigMap() as unknown as ConfigMap);
    assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.errors));
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.config.backupPVC?.[GOOD_VOLUME.storageClass], { readOnly: true });
    assert.deepEqual(result.config.backupPVC?.[BROKEN_VOLUME.storageClass], {
      storageClass: MISSING_STORAGE_CLASS,
      readOnly: true,
    });
  });

  test('both source classes exist on the fake driver, and the broken mapping target does not', () => {
    const names = storageClasses().map((sc) => sc.metadata.name);
    assert.deepEqual(names.sort(), [BROKEN_VOLUME.storageClass, GOOD_VOLUME.storageClass].sort());
    assert.ok(storageClasses().every((sc) => sc.provisioner === DEMO_DRIVER));
    assert.ok(!names.includes(MISSING_STORAGE_CLASS));
  });

  test('each DataUpload names its snapshot, the source class and the source PVC', () => {
    for (const v of [GOOD_VOLUME, BROKEN_VOLUME]) {
      const du = dataUpload(v) as unknown as DataUploadLike;
      assert.equal(du.spec.csiSnapshot.volumeSnapshot, v.snapshot);
      assert.equal(du.spec.csiSnapshot.storageClass, v.storageClass);
      assert.equal(du.spec.sourcePVC, v.pvc);
      const pvc = workload().find((m): m is PvcLike => m.kind === 'PersistentVolumeClaim' && m.metadata.name === v.pvc);
      assert.equal(pvc?.spec.storageClassName, v.storageClass);
    }
  });
});

describe('the demo operator command line', () => {
  const launch = {
    repoRoot: '/repo',
    kubeconfig: '/run/op.kubeconfig',
    metricsPort: 40001,
    healthPort: 40002,
    prepareTimeout: '20s',
    logFile: '/run/op.log',
    nodeName: 'laptop',
  };

  test('is accepted by the operator, with loopback ports, no election and a 20 s prepare timeout', () => {
    const { args, env } = operatorCommand(launch);
    assert.equal(args[0], '/repo/bin/dataupload-operator.js');
    assert.equal(args[1], 'run');
    const parsed = parseOperatorOptions(args.slice(2), env);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.join('\n'));
    assert.equal(parsed.options.kubeconfig, '/run/op.kubeconfig');
    assert.equal(parsed.options.leaderElect, false);
    assert.equal(parsed.options.prepareTimeoutMs, 20_000);
    assert.deepEqual(parsed.options.healthProbeBindAddress, { host: '127.0.0.1', port: 40002 });
    assert.equal(parsed.options.nodeName, 'laptop');
  });

  test('does not pass on a KUBECONFIG or VELERO_NAMESPACE from the calling shell', () => {
    const saved = { KUBECONFIG: process.env.KUBECONFIG, VELERO_NAMESPACE: process.env.VELERO_NAMESPACE };
    process.env.KUBECONFIG = '/home/me/.kube/prod';
    process.env.VELERO_NAMESPACE = 'prod-velero';
    try {
      const { env } = operatorCommand(launch);
      assert.equal(env.KUBECONFIG, undefined);
      assert.equal(env.VELERO_NAMESPACE, undefined);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('the demo report', () => {
  test('--keep is the only option; anything else is a usage error', () => {
    assert.deepEqual(parseDemoArgs([]), { ok: true, args: { keep: false } });
    assert.deepEqual(parseDemoArgs(['--keep']), { ok: true, args: { keep: true } });
    const bad = parseDemoArgs(['--kep']);
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.exitCode, 2);
    assert.match(!bad.ok ? bad.text : '', /unknown argument --kep/);
    assert.equal(parseDemoArgs(['--help']).ok, false);
  });

  test('an outcome other than the designed one is reported by name', () => {
    const asDesigned = new Map([
      [GOOD_VOLUME.dataUpload, 'Prepared'],
      [BROKEN_VOLUME.dataUpload, 'Failed'],
    ]);
    assert.deepEqual(unexpectedOutcomes(asDesigned), []);
    const stuck = new Map([[GOOD_VOLUME.dataUpload, 'Accepted']]);
    assert.deepEqual(unexpectedOutcomes(stuck), [
      `${GOOD_VOLUME.dataUpload} is Accepted, expected Prepared`,
      `${BROKEN_VOLUME.dataUpload} is missing, expected Failed`,
    ]);
  });

  test('the describe summary keeps the status message and the Events table', () => {
    const text = [
      'Name:         demo-backup-search-index',
      'Status:',
      '  Message:  timeout on preparing data upload: backup PVC Pending: storageclass "fast-ro" not found',
      '  Phase:    Failed',
      'Events:',
      '  Type     Reason             Age   From                 Message',
      '  Warning  BackupPVCNotBound  5s    dataupload-operator  PVC velero/x Pending',
      '',
    ].join('\n');
    assert.equal(
      describeSummary(text),
      [
        'Message:  timeout on preparing data upload: backup PVC Pending: storageclass "fast-ro" not found',
        'Events:',
        '  Type     Reason             Age   From                 Message',
        '  Warning  BackupPVCNotBound  5s    dataupload-operator  PVC velero/x Pending',
      ].join('\n'),
    );
  });
});
