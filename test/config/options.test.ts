import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  operatorOptionsUsage,
  parseOperatorOptions,
  type OperatorOptions,
  type OperatorOptionsResult,
} from '../../src/config/options.js';

const HOSTNAME = () => 'operator-host';

function parse(argv: string[], env: Record<string, string | undefined> = {}): OperatorOptionsResult {
  return parseOperatorOptions(argv, env, HOSTNAME);
}

function optionsOf(result: OperatorOptionsResult): OperatorOptions {
  if (!result.ok) assert.fail(`expected options, got errors: ${result.errors.join(' | ')}`);
  return result.options;
}

function errorsOf(result: OperatorOptionsResult): readonly string[] {
  if (result.ok) assert.fail(`expected errors, got options ${JSON.stringify(result.options)}`);
  return result.errors;
}

test('without flags or environment every option has its default', () => {
  assert.deepEqual(optionsOf(parse([])), {
    namespace: 'velero',
    prepareTimeoutMs: 30 * 60_000,
    workers: 4,
    maxConcurrentExposes: 32,
    leaderElect: true,
    leaderElectionNamespace: 'velero',
    leaseName: 'dataupload-operator',
    metricsBindAddress: { host: '', port: 8080 },
    healthProbeBindAddress: { host: '', port: 8081 },
    podName: 'operator-host',
    inheritFromNodeAgent: 'node-agent',
    backupPodSecurityContext: 'root',
    logLevel: 'info',
    kubeApiQps: 0,
    kubeApiBurst: 0,
  });
});

test('every flag sets its option', () => {
  const options = optionsOf(
    parse([
      '--namespace=backup',
      '--node-agent-configmap',
      'node-agent-config',
      '--prepare-timeout=1h30m',
      '--workers=8',
      '--max-concurrent-exposes=0',
      '--leader-elect=false',
      '--leader-election-namespace=kube-system',
      '--lease-name=du-operator',
      '--metrics-bind-address=127.0.0.1:9090',
      '--health-probe-bind-address=[::1]:9091',
      '--backup-pod-image=velero/velero:v1.18.0',
      '--backup-pod-service-account=velero',
      '--node-agent-daemonset=node-agent-linux',
      '--backup-pod-security-context=restricted',
      '--log-level=debug',
      '--kube-api-qps=20.5',
      '--kube-api-burst=40',
      '--kubeconfig=/tmp/kubeconfig',
    ]),
  );
  assert.deepEqual(options, {
    namespace: 'backup',
    nodeAgentConfigMap: 'node-agent-config',
    prepareTimeoutMs: 90 * 60_000,
    workers: 8,
    maxConcurrentExposes: 0,
    leaderElect: false,
    leaderElectionNamespace: 'kube-system',
    leaseName: 'du-operator',
    metricsBindAddress: { host: '127.0.0.1', port: 9090 },
    healthProbeBindAddress: { host: '::1', port: 9091 },
    podName: 'operator-host',
    backupPodImage: 'velero/velero:v1.18.0',
    backupPodServiceAccount: 'velero',
    inheritFromNodeAgent: 'node-agent-linux',
    backupPodSecurityContext: 'restricted',
    logLevel: 'debug',
    kubeApiQps: 20.5,
    kubeApiBurst: 40,
    kubeconfig: '/tmp/kubeconfig',
  });
});

test('the environment supplies the namespace, node, pod and kubeconfig', () => {
  const options = optionsOf(
    parse([], { VELERO_NAMESPACE: 'backup', NODE_NAME: 'node-1', POD_NAME: 'operator-0', KUBECONFIG: '/k' }),
  );
  assert.equal(options.namespace, 'backup');
  assert.equal(options.leaderElectionNamespace, 'backup');
  assert.equal(options.nodeName, 'node-1');
  assert.equal(options.podName, 'operator-0');
  assert.equal(options.kubeconfig, '/k');
});

test('a flag wins over the environment', () => {
  const options = optionsOf(
    parse(['--namespace=flagged', '--kubeconfig=/flag'], { VELERO_NAMESPACE: 'env', KUBECONFIG: '/env' }),
  );
  assert.equal(options.namespace, 'flagged');
  assert.equal(options.kubeconfig, '/flag');
});

test('the pod name falls back to HOSTNAME, then to the host name', () => {
  assert.equal(optionsOf(parse([], { HOSTNAME: 'pod-from-hostname' })).podName, 'pod-from-hostname');
  assert.equal(optionsOf(parse([], { POD_NAME: '', HOSTNAME: '' })).podName, 'operator-host');
});

test('--leader-elect takes Go boolean forms', () => {
  assert.equal(optionsOf(parse(['--leader-elect'])).leaderElect, true);
  for (const text of ['false', '0', 'f', 'FALSE', 'False']) {
    assert.equal(optionsOf(parse([`--leader-elect=${text}`])).leaderElect, false, text);
  }
  assert.equal(optionsOf(parse(['--leader-elect=true'])).leaderElect, true);
});

test("Velero's --data-mover-prepare-timeout is accepted as an alias", () => {
  assert.equal(optionsOf(parse(['--data-mover-prepare-timeout', '45m'])).prepareTimeoutMs, 45 * 60_000);
});

test('giving both prepare timeout flags is an error', () => {
  assert.deepEqual(errorsOf(parse(['--prepare-timeout=1m', '--data-mover-prepare-timeout=2m'])), [
    'flags --prepare-timeout and --data-mover-prepare-timeout both set the same option; give only one',
  ]);
});

test('a repeated flag takes its last value, as Go flags do', () => {
  assert.equal(optionsOf(parse(['--workers=2', '--workers=3'])).workers, 3);
});

test('0 disables the metrics and health listeners', () => {
  const options = optionsOf(parse(['--metrics-bind-address=0', '--health-probe-bind-address=0']));
  assert.equal(options.metricsBindAddress, undefined);
  assert.equal(options.healthProbeBindAddress, undefined);
});

test('an empty --node-agent-configmap or --node-agent-daemonset means none', () => {
  const options = optionsOf(parse(['--node-agent-configmap=', '--node-agent-daemonset=']));
  assert.equal(options.nodeAgentConfigMap, undefined);
  assert.equal(options.inheritFromNodeAgent, undefined);
});

test("Velero's log level names are accepted", () => {
  assert.equal(optionsOf(parse(['--log-level=warning'])).logLevel, 'warn');
  assert.equal(optionsOf(parse(['--log-level=PANIC'])).logLevel, 'fatal');
});

const BAD_VALUES: readonly [string[], Record<string, string>, string][] = [
  [
    ['--namespace=Velero_NS'],
    {},
    `invalid --namespace "Velero_NS": a namespace name must be a lowercase RFC 1123 label: lowercase alphanumeric characters or '-', starting and ending with an alphanumeric character`,
  ],
  [
    [],
    { VELERO_NAMESPACE: 'bad ns' },
    `invalid env VELERO_NAMESPACE "bad ns": a namespace name must be a lowercase RFC 1123 label: lowercase alphanumeric characters or '-', starting and ending with an alphanumeric character`,
  ],
  [
    ['--node-agent-configmap=Node_Agent'],
    {},
    `invalid --node-agent-configmap "Node_Agent": an object name must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    ['--prepare-timeout=30'],
    {},
    'invalid --prepare-timeout "30": expected a Go duration such as "30m", "1h30m" or "90s"',
  ],
  [['--prepare-timeout=0s'], {}, 'invalid --prepare-timeout "0s": must be greater than zero'],
  [['--data-mover-prepare-timeout=-5m'], {}, 'invalid --data-mover-prepare-timeout "-5m": must be greater than zero'],
  [['--workers=0'], {}, 'invalid --workers "0": expected a positive integer'],
  [['--workers=two'], {}, 'invalid --workers "two": expected a positive integer'],
  [['--workers=1.5'], {}, 'invalid --workers "1.5": expected a positive integer'],
  [['--leader-elect=yes'], {}, 'invalid --leader-elect "yes": expected true or false'],
  [
    ['--metrics-bind-address=8080'],
    {},
    'invalid --metrics-bind-address "8080": expected host:port, :port or [ipv6]:port with a port up to 65535, or 0 to disable',
  ],
  [
    ['--health-probe-bind-address=:70000'],
    {},
    'invalid --health-probe-bind-address ":70000": expected host:port, :port or [ipv6]:port with a port up to 65535, or 0 to disable',
  ],
  [
    ['--backup-pod-image=velero velero'],
    {},
    'invalid --backup-pod-image "velero velero": expected an image reference without spaces',
  ],
  [
    ['--backup-pod-security-context=privileged'],
    {},
    'invalid --backup-pod-security-context "privileged": expected root or restricted',
  ],
  [['--log-level=verbose'], {}, 'invalid --log-level "verbose": expected trace, debug, info, warn, error or fatal'],
  [['--kube-api-qps=-1'], {}, 'invalid --kube-api-qps "-1": expected a number >= 0'],
  [['--kube-api-burst=1.5'], {}, 'invalid --kube-api-burst "1.5": expected an integer >= 0'],
];

for (const [argv, env, message] of BAD_VALUES) {
  test(`a bad value (${[...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}) is an error naming the flag and the value`, () => {
    assert.deepEqual(errorsOf(parse(argv, env)), [message]);
  });
}

test('unknown flags, stray arguments and missing values are errors, all reported together', () => {
  assert.deepEqual(errorsOf(parse(['--workres', '3', 'extra', '--frobnicate', '--workers=0', '--log-level'])), [
    'unknown flag --workres; did you mean --workers?',
    'unexpected argument "extra"',
    'unknown flag --frobnicate',
    'flag --log-level needs a value',
    'invalid --workers "0": expected a positive integer',
  ]);
});

test("Velero's misspelt --node-agent-config is suggested the right name", () => {
  assert.deepEqual(errorsOf(parse(['--node-agent-config=cfg'])), [
    'unknown flag --node-agent-config; did you mean --node-agent-configmap?',
  ]);
});

test('a single-dash flag is not a long flag', () => {
  assert.deepEqual(errorsOf(parse(['-w'])), ['unknown flag -w']);
});

test('the options are frozen', () => {
  const options = optionsOf(parse([]));
  assert.throws(() => {
    (options as { workers: number }).workers = 9;
  }, TypeError);
  assert.throws(() => {
    (options.metricsBindAddress as { port: number }).port = 1;
  }, TypeError);
});

test('the usage lists every flag with its default and environment variable', () => {
  const usage = operatorOptionsUsage();
  assert.match(usage, /--prepare-timeout, --data-mover-prepare-timeout <duration>/);
  assert.match(usage, /--namespace <name>\n.*\(default velero; env VELERO_NAMESPACE\)/);
  assert.match(usage, /--leader-elect\[=bool\]/);
});
