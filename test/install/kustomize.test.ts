/**
 * config/default as `kubectl kustomize` renders it (kubectl's built-in kustomize, no cluster): least-privilege
 * RBAC, a restricted-compliant operator pod, the Deployment's command line, and the namespace's PodSecurity labels.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parseNodeAgentConfigMap } from '../../src/config/node-agent-config.js';
import { parseOperatorOptions } from '../../src/config/options.js';
import type { ConfigMap } from '../../src/api/kube.js';
import {
  expandArgs,
  expectedPermissions,
  findManifest,
  permissions,
  renderKustomization,
  restrictedViolations,
  rulesOf,
  wildcards,
  type Manifest,
  type PodSpecLike,
} from './manifests.js';

interface Container {
  name: string;
  image: string;
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string | number } };
  readinessProbe: { httpGet: { path: string; port: string | number } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
}

let manifests: Manifest[] = [];
before(async () => {
  manifests = await renderKustomization('config/default');
});

function deployment(): Manifest & {
  spec: { replicas: number; template: { spec: PodSpecLike & Record<string, unknown> } };
} {
  return findManifest(manifests, 'Deployment', 'dataupload-operator') as never;
}

function manager(): Container {
  const containers = deployment().spec.template.spec.containers as unknown as Container[];
  const found = containers.find((c) => c.name === 'manager');
  assert.ok(found, 'the Deployment has a container named manager');
  return found;
}

describe('config/default', () => {
  test('renders the CRD, the namespace, RBAC, the Deployment and the node-agent ConfigMap', () => {
    const names = manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort();
    assert.deepEqual(names, [
      'ClusterRole/dataupload-operator',
      'ClusterRoleBinding/dataupload-operator',
      'ConfigMap/node-agent-config',
      'CustomResourceDefinition/datauploads.velero.io',
      'Deployment/dataupload-operator',
      'Namespace/velero',
      'Role/dataupload-operator',
      'Role/dataupload-operator-leader-election',
      'RoleBinding/dataupload-operator',
      'RoleBinding/dataupload-operator-leader-election',
      'ServiceAccount/dataupload-operator',
    ]);
  });

  test('every namespaced object lands in velero', () => {
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);
    const misplaced = manifests
      .filter((m) => !clusterScoped.has(m.kind) && m.metadata.namespace !== 'velero')
      .map((m) => `${m.kind}/${m.metadata.name} in ${m.metadata.namespace ?? '(none)'}`);
    assert.deepEqual(misplaced, []);
  });

  test('the velero namespace enforces baseline and warns and audits restricted', () => {
    const labels = findManifest(manifests, 'Namespace', 'velero').metadata.labels ?? {};
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'baseline');
    assert.equal(labels['pod-security.kubernetes.io/warn'], 'restricted');
    assert.equal(labels['pod-security.kubernetes.io/audit'], 'restricted');
    for (const mode of ['enforce', 'warn', 'audit']) {
      assert.equal(labels[`pod-security.kubernetes.io/${mode}-version`], 'latest');
    }
  });
});

describe('RBAC', () => {
  const roles = (): Manifest[] => manifests.filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole');

  test('no rule uses a wildcard', () => {
    for (const role of roles()) assert.deepEqual(wildcards(rulesOf(role)), [], `${role.kind}/${role.metadata.name}`);
  });

  test('no rule grants anything on secrets', () => {
    for (const role of roles()) {
      const onSecrets = permissions(rulesOf(role)).filter((p) => p.startsWith('core/secrets'));
      assert.deepEqual(onSecrets, [], `${role.kind}/${role.metadata.name}`);
    }
  });

  test('the namespaced Role grants exactly what the controller does in its namespace', () => {
    const role = findManifest(manifests, 'Role', 'dataupload-operator');
    assert.deepEqual(
      permissions(rulesOf(role)),
      expectedPermissions({
        'velero.io/datauploads': ['get', 'list', 'watch', 'update', 'patch'],
        'core/pods': ['get', 'list', 'watch', 'create', 'delete'],
        'core/persistentvolumeclaims': ['create', 'delete'],
        'core/configmaps': ['get'],
        'apps/daemonsets': ['get'],
        'events.k8s.io/events': ['create', 'patch'],
        'snapshot.storage.k8s.io/volumesnapshots': ['create'],
      }),
    );
  });

  test('the leader-election Role grants Leases and Events only', () => {
    const role = findManifest(manifests, 'Role', 'dataupload-operator-leader-election');
    assert.deepEqual(
      permissions(rulesOf(role)),
      expectedPermissions({
        'coordination.k8s.io/leases': ['get', 'create', 'update'],
        'events.k8s.io/events': ['create', 'patch'],
      }),
    );
  });

  test('the ClusterRole grants reads plus the few cluster-wide writes of the expose path', () => {
    const role = findManifest(manifests, 'ClusterRole', 'dataupload-operator');
    assert.deepEqual(
      permissions(rulesOf(role)),
      expectedPermissions({
        'core/persistentvolumeclaims': ['get', 'list', 'watch'],
        'core/persistentvolumes': ['get', 'list', 'watch', 'patch'],
        'core/nodes': ['get', 'list', 'watch'],
        'core/events': ['list'],
        'snapshot.storage.k8s.io/volumesnapshots': ['get', 'list', 'watch', 'delete'],
        'snapshot.storage.k8s.io/volumesnapshotcontents': ['get', 'list', 'watch', 'create', 'patch', 'delete'],
        'scheduling.k8s.io/priorityclasses': ['get'],
        'storage.k8s.io/storageclasses': ['get', 'list', 'watch'],
      }),
    );
  });

  test('every binding binds its role to the operator ServiceAccount in velero', () => {
    const bindings = manifests.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding');
    assert.equal(bindings.length, 3);
    for (const b of bindings) {
      const roleRef = b.roleRef as { kind: string; name: string };
      assert.doesNotThrow(() => findManifest(manifests, roleRef.kind, roleRef.name), `${b.metadata.name} roleRef`);
      assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'dataupload-operator', namespace: 'velero' }]);
    }
  });
});

describe('the operator Deployment', () => {
  test('runs two replicas under the operator ServiceAccount, with a 30 s grace period', () => {
    const d = deployment();
    assert.equal(d.spec.replicas, 2);
    assert.equal(d.spec.template.spec.serviceAccountName, 'dataupload-operator');
    assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 30);
  });

  test('its pod passes PodSecurity restricted', () => {
    assert.deepEqual(restrictedViolations(deployment().spec.template.spec), []);
  });

  test('the restricted check itself rejects a root pod with privilege escalation', () => {
    const rootPod: PodSpecLike = {
      securityContext: { runAsUser: 0 },
      containers: [{ name: 'mover', securityContext: { allowPrivilegeEscalation: true } }],
      volumes: [{ name: 'host', hostPath: { path: '/' } }],
    };
    assert.deepEqual(restrictedViolations(rootPod), [
      'volume host uses hostPath',
      'pod runAsUser=0',
      'container mover allowPrivilegeEscalation != false',
      'container mover runAsNonRoot != true',
      'container mover seccompProfile.type',
      'container mover capabilities.drop lacks ALL',
    ]);
  });

  test('runs as uid 65532 with a read-only root filesystem, no privilege escalation and no capabilities', () => {
    const pod = deployment().spec.template.spec.securityContext;
    assert.deepEqual(pod, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(manager().securityContext, {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  test('passes the operator its command line', () => {
    assert.equal(manager().image, 'dataupload-operator:latest');
    assert.deepEqual(manager().args, [
      'run',
      '--namespace=$(VELERO_NAMESPACE)',
      '--node-agent-configmap=node-agent-config',
      '--prepare-timeout=30m',
      '--workers=4',
      '--leader-elect=true',
      '--metrics-bind-address=:8080',
      '--health-probe-bind-address=:8081',
      '--backup-pod-image=velero/velero:v1.18.0',
      '--backup-pod-service-account=velero',
      '--backup-pod-security-context=root',
      '--log-level=info',
    ]);
  });

  test('the command line is one the operator accepts, once the kubelet expanded $(VELERO_NAMESPACE)', () => {
    const env = { VELERO_NAMESPACE: 'velero', NODE_NAME: 'node-a', POD_NAME: 'dataupload-operator-abc' };
    const [command, ...flags] = expandArgs(manager().args, env);
    assert.equal(command, 'run');
    const parsed = parseOperatorOptions(flags, env);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.join('\n'));
    assert.equal(parsed.options.namespace, 'velero');
    assert.equal(parsed.options.nodeAgentConfigMap, 'node-agent-config');
    assert.equal(parsed.options.prepareTimeoutMs, 30 * 60_000);
    assert.equal(parsed.options.leaderElect, true);
    assert.equal(parsed.options.podName, 'dataupload-operator-abc');
    assert.deepEqual(parsed.options.healthProbeBindAddress, { host: '', port: 8081 });
  });

  test('gets NODE_NAME, POD_NAME and its namespace from the downward API', () => {
    const fieldPaths = Object.fromEntries(manager().env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    assert.deepEqual(fieldPaths, {
      NODE_NAME: 'spec.nodeName',
      POD_NAME: 'metadata.name',
      VELERO_NAMESPACE: 'metadata.namespace',
    });
  });

  test('probes /healthz for liveness and /readyz for readiness on 8081, and names port 8080 metrics', () => {
    const c = manager();
    assert.deepEqual(
      c.ports.map((p) => [p.name, p.containerPort]),
      [
        ['metrics', 8080],
        ['health', 8081],
      ],
    );
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    const healthPort = c.ports.find((p) => p.name === c.livenessProbe.httpGet.port)?.containerPort;
    assert.equal(healthPort, 8081);
    assert.equal(c.readinessProbe.httpGet.port, c.livenessProbe.httpGet.port);
  });

  test('requests 50m and 128Mi and is limited to 500m and 512Mi', () => {
    assert.deepEqual(manager().resources, {
      requests: { cpu: '50m', memory: '128Mi' },
      limits: { cpu: '500m', memory: '512Mi' },
    });
  });
});

describe('the node-agent ConfigMap sample', () => {
  test('is a valid node-agent config with no warnings, named as the Deployment expects', () => {
    const cm = findManifest(manifests, 'ConfigMap', 'node-agent-config') as unknown as ConfigMap;
    const result = parseNodeAgentConfigMap(cm);
    assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.errors));
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.config.backupPVC, {
      gp3: { storageClass: 'gp3-backup' },
      'standard-rwo': { readOnly: true },
    });
    assert.equal(result.config.loadConcurrency?.prepareQueueLength, 10);
  });
});

describe('config/restricted', () => {
  test('enforces restricted in velero and makes the backupPods non-root, changing nothing else', async () => {
    const rendered = await renderKustomization('config/restricted');
    const labels = findManifest(rendered, 'Namespace', 'velero').metadata.labels ?? {};
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'restricted');
    const args = (
      findManifest(rendered, 'Deployment', 'dataupload-operator') as unknown as {
        spec: { template: { spec: { containers: Container[] } } };
      }
    ).spec.template.spec.containers[0]!.args;
    const changed = args.filter((arg, i) => arg !== manager().args[i]);
    assert.deepEqual(changed, ['--backup-pod-security-context=restricted']);
    assert.equal(rendered.length, manifests.length);
  });
});

describe('config/prometheus', () => {
  test('selects the operator pods on their metrics port', async () => {
    const rendered = await renderKustomization('config/prometheus');
    const service = findManifest(rendered, 'Service', 'dataupload-operator-metrics') as Manifest & {
      spec: { selector: Record<string, string>; ports: { targetPort: string }[] };
    };
    const podLabels = (deployment().spec.template as unknown as { metadata: { labels: Record<string, string> } })
      .metadata.labels;
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(podLabels[k], v, `selector ${k}`);
    assert.equal(service.spec.ports[0]?.targetPort, 'metrics');
    const monitor = findManifest(rendered, 'ServiceMonitor', 'dataupload-operator') as Manifest & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
    };
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
      assert.equal(service.metadata.labels?.[k], v, `ServiceMonitor selector ${k}`);
    }
    assert.deepEqual(
      monitor.spec.endpoints.map((e) => [e.port, e.path]),
      [['metrics', '/metrics']],
    );
    assert.ok(rendered.every((m) => m.metadata.namespace === 'velero'));
  });
});

describe('config/secret-copies', () => {
  test('adds exactly the opt-in copy permissions to config/default, bound to the operator', async () => {
    const rendered = await renderKustomization('config/secret-copies');
    const added = rendered.filter(
      (m) => !manifests.some((d) => d.kind === m.kind && d.metadata.name === m.metadata.name),
    );
    assert.deepEqual(added.map((m) => `${m.kind}/${m.metadata.name}`).sort(), [
      'ClusterRole/dataupload-operator-backup-pvc-copies',
      'ClusterRoleBinding/dataupload-operator-backup-pvc-copies',
      'Role/dataupload-operator-backup-pvc-copies',
      'RoleBinding/dataupload-operator-backup-pvc-copies',
    ]);
    assert.equal(rendered.length, manifests.length + 4, 'nothing else changes');
    assert.deepEqual(
      permissions(rulesOf(findManifest(rendered, 'ClusterRole', 'dataupload-operator-backup-pvc-copies'))),
      expectedPermissions({ 'core/secrets': ['get'], 'core/configmaps': ['get'] }),
      'outside its namespace: one get per copied object, no list or watch of Secrets',
    );
    assert.deepEqual(
      permissions(rulesOf(findManifest(rendered, 'Role', 'dataupload-operator-backup-pvc-copies'))),
      expectedPermissions({
        'core/secrets': ['get', 'list', 'watch', 'create', 'patch', 'delete'],
        'core/configmaps': ['get', 'list', 'watch', 'create', 'patch', 'delete'],
      }),
    );
    for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
      const binding = findManifest(rendered, kind, 'dataupload-operator-backup-pvc-copies') as Manifest & {
        subjects: { kind: string; name: string; namespace: string }[];
      };
      assert.deepEqual(binding.subjects, [
        { kind: 'ServiceAccount', name: 'dataupload-operator', namespace: 'velero' },
      ]);
    }
  });
});
