import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatIssue,
  parseNodeAgentConfigJson,
  parseNodeAgentConfigMap,
  resolveNodeAgentConfig,
  type ConfigIssue,
  type ConfigResult,
} from '../../src/config/node-agent-config.js';
import type { NodeAgentConfig } from '../../src/config/types.js';
import type { ConfigMap } from '../../src/api/index.js';
import { listConfigSamples, readSample, SKIP_SAMPLES } from './velero-samples.js';
import { VELERO_V1_18_3_FIELDS } from './velero-fields.js';

function parse(json: unknown): ConfigResult {
  return parseNodeAgentConfigJson(typeof json === 'string' ? json : JSON.stringify(json), 'config.json');
}

function configOf(result: ConfigResult): NodeAgentConfig {
  if (!result.ok) assert.fail(`expected a valid config, got errors: ${result.errors.map(formatIssue).join(' | ')}`);
  return result.config;
}

function errorsOf(result: ConfigResult): string[] {
  if (result.ok) assert.fail(`expected errors, got config ${JSON.stringify(result.config)}`);
  return result.errors.map(formatIssue);
}

function warningsOf(result: ConfigResult): string[] {
  return result.warnings.map(formatIssue);
}

// ---------------------------------------------------------------------------------------------------------------
// Velero's own samples

interface SampleExpectation {
  readonly config?: NodeAgentConfig;
  readonly errors?: readonly string[];
  readonly warnings: readonly (string | RegExp)[];
}

const SAMPLES: Readonly<Record<string, SampleExpectation>> = {
  'design-backup-pvc-config.1.json': {
    config: {
      backupPVC: {
        'storage-class-1': { storageClass: 'snapshot-storage-class', readOnly: true },
        'storage-class-2': { storageClass: 'snapshot-storage-class' },
        'storage-class-3': { readOnly: true },
      },
    },
    warnings: [],
  },
  'design-node-agent-affinity.1.json': {
    config: {
      loadAffinity: [
        {
          nodeSelector: {
            matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B4ms' },
            matchExpressions: [
              { key: 'kubernetes.io/hostname', operator: 'In', values: ['node-1', 'node-2', 'node-3'] },
              { key: 'xxx/critial-workload', operator: 'DoesNotExist' },
            ],
          },
        },
      ],
    },
    warnings: [],
  },
  'design-node-agent-concurrency.1.json': {
    config: {
      loadConcurrency: {
        globalConfig: 2,
        perNodeConfig: [
          { nodeSelector: { matchLabels: { 'kubernetes.io/hostname': 'node1' } }, number: 3 },
          { nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B4ms' } }, number: 5 },
        ],
      },
    },
    warnings: [],
  },
  'design-node-agent-load-soothing.1.json': {
    config: {
      loadConcurrency: {
        globalConfig: 2,
        perNodeConfig: [
          { nodeSelector: { matchLabels: { 'kubernetes.io/hostname': 'node1' } }, number: 3 },
          { nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B4ms' } }, number: 5 },
        ],
        prepareQueueLength: 2,
      },
    },
    warnings: [],
  },
  'design-vgdp-affinity-enhancement.1.json': {
    config: {
      loadAffinity: [
        { nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B4ms' } } },
        {
          nodeSelector: { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
          storageClass: 'kibishii-storage-class',
        },
        {
          nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B8ms' } },
          storageClass: 'kibishii-storage-class',
        },
      ],
    },
    // The design doc meant the two kibishii entries as alternatives; Velero only ever applies the first.
    warnings: [
      'loadAffinity[2]: never applied: loadAffinity[1] already applies to storage class "kibishii-storage-class" (only the first one applies)',
    ],
  },
  'design-vgdp-affinity-enhancement.2.json': {
    config: {
      loadAffinity: [
        {
          nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B4ms' } },
          storageClass: 'kibishii-storage-class',
        },
        {
          nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B2ms' } },
          storageClass: 'worker-storagepolicy',
        },
      ],
      backupPVC: { 'kibishii-storage-class': { storageClass: 'worker-storagepolicy' } },
    },
    warnings: [],
  },
  'design-vgdp-affinity-enhancement.3.json': {
    config: {
      loadAffinity: [
        {
          nodeSelector: { matchLabels: { 'beta.kubernetes.io/instance-type': 'Standard_B4ms' } },
          storageClass: 'kibishii-storage-class',
        },
      ],
      restorePVC: { ignoreDelayBinding: false },
    },
    warnings: [],
  },
  'docs-v1.17-backup-pvc.1.INVALID-JSON.txt': {
    errors: [
      "docs-v1.17-backup-pvc.1.INVALID-JSON.txt: invalid JSON at line 13, column 9: Expected ',' or '}' after property value",
    ],
    warnings: [],
  },
  'docs-v1.17-pod-resources.1.json': {
    config: {
      podResources: { cpuRequest: '1000m', memoryRequest: '512Mi', cpuLimit: '1000m', memoryLimit: '1Gi' },
      priorityClassName: 'high-priority',
    },
    warnings: [],
  },
  'docs-v1.17-pod-resources.2.json': {
    config: {
      podResources: { cpuRequest: '1000m', memoryRequest: '1Gi', cpuLimit: '2000m', memoryLimit: '4Gi' },
      priorityClassName: 'backup-priority',
    },
    warnings: [],
  },
  'docs-v1.17-prepare-queue-length.1.IGNORED-top-level-field.json': {
    config: {},
    warnings: [
      '"prepareQueueLength": has no effect at the top level (Velero ignores it too); it belongs under "loadConcurrency"',
    ],
  },
  // The derived JSON Schema is valid JSON but no config: all its keys are unknown, and the result is empty.
  'node-agent-configs.v1.17.schema.json': {
    config: {},
    warnings: [
      '"$schema": unknown key, ignored',
      '"$id": unknown key, ignored',
      '"title": unknown key, ignored',
      '"description": unknown key, ignored',
      '"type": unknown key, ignored',
      '"additionalProperties": unknown key, ignored',
      '"$defs": unknown key, ignored',
      '"properties": unknown key, ignored',
    ],
  },
};

test('every Velero sample config has an expectation here', { skip: SKIP_SAMPLES }, () => {
  assert.deepEqual(listConfigSamples(), Object.keys(SAMPLES).sort());
});

for (const [name, expected] of Object.entries(SAMPLES)) {
  test(`the Velero sample ${name} resolves as expected`, { skip: SKIP_SAMPLES }, () => {
    const result = parseNodeAgentConfigJson(readSample(name), name);
    if (expected.config !== undefined) assert.deepEqual(configOf(result), expected.config);
    if (expected.errors !== undefined) assert.deepEqual(errorsOf(result), expected.errors);
    assert.deepEqual(warningsOf(result), expected.warnings);
  });
}

test('the sample ConfigMap value works the same through a ConfigMap with any key name', { skip: SKIP_SAMPLES }, () => {
  const text = readSample('design-backup-pvc-config.1.json');
  const result = parseNodeAgentConfigMap({
    metadata: { name: 'node-agent-config', namespace: 'velero' },
    data: { 'whatever-the-user-called-it': text },
  });
  assert.deepEqual(configOf(result), configOf(parseNodeAgentConfigJson(text, 'x')));
});

// ---------------------------------------------------------------------------------------------------------------
// Document-level errors

test('invalid JSON reports the line and column of the first bad character', () => {
  assert.deepEqual(errorsOf(parse('{\n  "backupPVC": {\n    "gp3": {"readOnly": true}\n    "gp2": {}\n  }\n}')), [
    "config.json: invalid JSON at line 4, column 5: Expected ',' or '}' after property value",
  ]);
});

test('invalid JSON without an engine offset is still located', () => {
  assert.deepEqual(errorsOf(parse('{\n  "loadAffinity": [1,]\n}')), [
    "config.json: invalid JSON at line 2, column 22: Unexpected token ']'",
  ]);
});

test('JSON that ends early is located just past its end', () => {
  assert.deepEqual(errorsOf(parse('{\n  "backupPVC": {')), [
    "config.json: invalid JSON at line 2, column 17: Expected property name or '}'",
  ]);
  assert.deepEqual(errorsOf(parse('{\n  "backupPVC":')), [
    'config.json: invalid JSON at line 2, column 15: Unexpected end of JSON input',
  ]);
});

test('an empty or blank value is a clear error', () => {
  for (const text of ['', '  \n\t']) {
    const [error] = errorsOf(parse(text));
    assert.match(error!, /^config\.json: the value is empty; expected a JSON object/);
  }
});

test('a key repeated in one object is an error with its position', () => {
  assert.deepEqual(errorsOf(parse('{\n  "backupPVC": {"gp3": {"readOnly": true}},\n  "backupPVC": {"gp2": {}}\n}')), [
    'config.json: duplicate key "backupPVC" at line 3, column 3; keep only one (Velero silently merges or overrides repeated keys)',
  ]);
});

test('a config that is not a JSON object is an error', () => {
  assert.deepEqual(errorsOf(parse('[]')), ['the config must be a JSON object, got []']);
  assert.deepEqual(errorsOf(parse('"backupPVC"')), ['the config must be a JSON object, got "backupPVC"']);
});

test('a null config means the defaults, as in Velero, with a warning', () => {
  const result = parse('null');
  assert.deepEqual(configOf(result), {});
  assert.equal(result.warnings.length, 1);
});

test('a leading byte order mark is ignored with a warning', () => {
  const result = parseNodeAgentConfigJson('\uFEFF{"priorityClassName": "high"}', 'bom.json');
  assert.deepEqual(configOf(result), { priorityClassName: 'high' });
  assert.match(warningsOf(result)[0]!, /^bom\.json: the byte order mark/);
});

// ---------------------------------------------------------------------------------------------------------------
// Field errors: path, expected type, offending value

const FIELD_ERRORS: readonly [string, unknown, string][] = [
  [
    'a non-boolean readOnly',
    { backupPVC: { gp3: { readOnly: 'yes' } } },
    'backupPVC["gp3"].readOnly: expected boolean, got "yes"',
  ],
  ['a non-string priorityClassName', { priorityClassName: 5 }, 'priorityClassName: expected string, got 5'],
  [
    'a string globalConfig',
    { loadConcurrency: { globalConfig: '2' } },
    'loadConcurrency.globalConfig: expected integer, got "2"',
  ],
  [
    'a fractional prepareQueueLength',
    { loadConcurrency: { prepareQueueLength: 2.5 } },
    'loadConcurrency.prepareQueueLength: expected integer, got 2.5',
  ],
  [
    'a fractional perNodeConfig number',
    { loadConcurrency: { perNodeConfig: [{ nodeSelector: { matchLabels: { a: 'b' } }, number: 1.5 }] } },
    'loadConcurrency.perNodeConfig[0].number: expected integer, got 1.5',
  ],
  [
    'a non-integer residentThresholdInMB',
    { cachePVC: { residentThresholdInMB: '10' } },
    'cachePVC.residentThresholdInMB: expected integer, got "10"',
  ],
  ['an array where an object belongs', { loadConcurrency: [] }, 'loadConcurrency: expected object, got []'],
  ['an object where an array belongs', { loadAffinity: {} }, 'loadAffinity: expected array, got {}'],
  ['a null array element', { loadAffinity: [null] }, 'loadAffinity[0]: expected a value, got null'],
  [
    'a non-boolean privilegedFsBackup',
    { privilegedFsBackup: 'true' },
    'privilegedFsBackup: expected boolean, got "true"',
  ],
  [
    'a non-boolean ignoreDelayBinding',
    { restorePVC: { ignoreDelayBinding: 1 } },
    'restorePVC.ignoreDelayBinding: expected boolean, got 1',
  ],
  ['a non-string label value', { podLabels: { team: 1 } }, 'podLabels["team"]: expected string, got 1'],
  [
    'a label key with two slashes',
    { podLabels: { 'a/b/c': 'x' } },
    `podLabels["a/b/c"]: invalid label key "a/b/c": a qualified name has at most one '/' (an optional DNS subdomain prefix and a name)`,
  ],
  [
    'a label key with an upper-case prefix',
    { podLabels: { 'Example.com/team': 'x' } },
    `podLabels["Example.com/team"]: invalid label key "Example.com/team": the prefix part must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    'a label value of 64 characters',
    { podLabels: { team: 'x'.repeat(64) } },
    `podLabels["team"]: invalid label value "${'x'.repeat(56)}...: a label value must be no more than 63 characters`,
  ],
  [
    'a label value with a space',
    { podLabels: { team: 'a b' } },
    `podLabels["team"]: invalid label value "a b": a label value must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
  ],
  [
    'an annotation key starting with a dash',
    { podAnnotations: { '-note': 'any value at all' } },
    `podAnnotations["-note"]: invalid annotation key "-note": the name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
  ],
  [
    'a non-string backupPVC annotation',
    { backupPVC: { gp3: { annotations: { a: true } } } },
    'backupPVC["gp3"].annotations["a"]: expected string, got true',
  ],
  [
    'a lower-case selector operator',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'in', values: ['b'] }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].operator: expected one of "In", "NotIn", "Exists", "DoesNotExist", got "in"',
  ],
  [
    'a selector requirement without a key',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ operator: 'Exists' }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].key: required',
  ],
  [
    'a selector requirement without an operator',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a' }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].operator: required: one of "In", "NotIn", "Exists", "DoesNotExist"',
  ],
  [
    'In without values',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].values: operator "In" needs at least one value',
  ],
  [
    'NotIn with values absent',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'NotIn' }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].values: operator "NotIn" needs at least one value',
  ],
  [
    'Exists with values',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['b'] }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].values: operator "Exists" takes no values, got ["b"]',
  ],
  [
    'DoesNotExist with values',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['b'] }] } }] },
    'loadAffinity[0].nodeSelector.matchExpressions[0].values: operator "DoesNotExist" takes no values, got ["b"]',
  ],
  [
    'an invalid selector value',
    { loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['b c'] }] } }] },
    `loadAffinity[0].nodeSelector.matchExpressions[0].values[0]: invalid label value "b c": a label value must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
  ],
  [
    'an invalid matchLabels key',
    { loadConcurrency: { perNodeConfig: [{ nodeSelector: { matchLabels: { 'a b': 'c' } }, number: 2 }] } },
    `loadConcurrency.perNodeConfig[0].nodeSelector.matchLabels["a b"]: invalid label key "a b": the name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
  ],
  [
    'an invalid backupPVC storageClass',
    { backupPVC: { gp3: { storageClass: 'Fast_SSD' } } },
    `backupPVC["gp3"].storageClass: invalid storage class name "Fast_SSD": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    'an invalid priorityClassName',
    { priorityClassName: 'High' },
    `priorityClassName: invalid PriorityClass name "High": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    'backupPVC settings written without the storage class level',
    { backupPVC: { readOnly: true } },
    'backupPVC["readOnly"]: expected object, got true; backupPVC is keyed by the source storage class, e.g. {"backupPVC": {"gp3": {"readOnly": true}}}',
  ],
  ['a null backupPVC entry', { backupPVC: { gp3: null } }, 'backupPVC["gp3"]: expected object, got null'],
  [
    'an invalid quantity',
    { podResources: { memoryLimit: '1GB' } },
    'podResources.memoryLimit: invalid quantity "1GB"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
  ],
  [
    'a quantity with spaces',
    { podResources: { memoryLimit: ' 1Gi' } },
    'podResources.memoryLimit: invalid quantity " 1Gi"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
  ],
  [
    'an empty quantity',
    { podResources: { cpuRequest: '' } },
    'podResources.cpuRequest: empty quantity; remove the field, or use "0" for unbounded',
  ],
  [
    'a negative quantity',
    { podResources: { cpuLimit: '-1' } },
    'podResources.cpuLimit: must not be negative, got "-1"',
  ],
  ['a numeric quantity', { podResources: { cpuLimit: 1 } }, 'podResources.cpuLimit: expected string, got 1'],
  [
    'a CPU request above its limit',
    { podResources: { cpuRequest: '1500m', cpuLimit: '1' } },
    'podResources.cpuRequest: cpuRequest "1500m" is greater than cpuLimit "1"; a request may not exceed its limit',
  ],
  [
    'a memory request above its limit',
    { podResources: { memoryRequest: '2Gi', memoryLimit: '1024Mi' } },
    'podResources.memoryRequest: memoryRequest "2Gi" is greater than memoryLimit "1024Mi"; a request may not exceed its limit',
  ],
  [
    'an invalid ephemeral storage quantity',
    { podResources: { ephemeralStorageLimit: '10 GB' } },
    'podResources.ephemeralStorageLimit: invalid quantity "10 GB"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
  ],
  [
    'an ephemeral storage request above its limit',
    { podResources: { ephemeralStorageRequest: '2Gi', ephemeralStorageLimit: '1Gi' } },
    'podResources.ephemeralStorageRequest: ephemeralStorageRequest "2Gi" is greater than ephemeralStorageLimit "1Gi"; a request may not exceed its limit',
  ],
  [
    'a secretNames that is a string, not a list',
    { backupPVC: { gp3: { secretNames: 'kms-token' } } },
    'backupPVC["gp3"].secretNames: expected array, got "kms-token"',
  ],
  [
    'a non-string configMapNames entry',
    { backupPVC: { gp3: { configMapNames: ['vault', 3] } } },
    'backupPVC["gp3"].configMapNames[1]: expected string, got 3',
  ],
  [
    'a null secretNames entry',
    { backupPVC: { gp3: { secretNames: [null] } } },
    'backupPVC["gp3"].secretNames[0]: expected a value, got null',
  ],
  [
    'an invalid Secret name',
    { backupPVC: { gp3: { secretNames: ['KMS_Token'] } } },
    `backupPVC["gp3"].secretNames[0]: invalid Secret name "KMS_Token": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    'an empty ConfigMap name',
    { backupPVC: { gp3: { configMapNames: [''] } } },
    `backupPVC["gp3"].configMapNames[0]: invalid ConfigMap name "": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    'a Secret name longer than 253 characters',
    { backupPVC: { gp3: { secretNames: ['a'.repeat(254)] } } },
    `backupPVC["gp3"].secretNames[0]: invalid Secret name "${'a'.repeat(254)}": must be no more than 253 characters`,
  ],
  [
    'an invalid restorePVC ConfigMap name',
    { restorePVC: { configMapNames: ['Vault.Config'] } },
    `restorePVC.configMapNames[0]: invalid ConfigMap name "Vault.Config": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character`,
  ],
  [
    'two keys for one field that differ only in case',
    { backupPVC: {}, BackupPVC: {} },
    '"backupPVC" and "BackupPVC" both set "backupPVC" (keys match case-insensitively, as in Velero); keep only one',
  ],
];

for (const [what, json, message] of FIELD_ERRORS) {
  test(`${what} is an error naming its path`, () => {
    assert.deepEqual(errorsOf(parse(json)), [message]);
  });
}

test('all errors are reported together, in a fixed order', () => {
  const json = {
    podLabels: { 'bad key': 'v' },
    backupPVC: { gp3: { readOnly: 'yes', spcNoRelabeling: 'no' }, gp2: { storageClass: 7 } },
    loadConcurrency: { globalConfig: 'two' },
  };
  const expected = [
    'loadConcurrency.globalConfig: expected integer, got "two"',
    'backupPVC["gp2"].storageClass: expected string, got 7',
    'backupPVC["gp3"].readOnly: expected boolean, got "yes"',
    'backupPVC["gp3"].spcNoRelabeling: expected boolean, got "no"',
    `podLabels["bad key"]: invalid label key "bad key": the name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
  ];
  assert.deepEqual(errorsOf(parse(json)), expected);
  assert.deepEqual(errorsOf(parse(json)), expected);
});

test('an offending value that is long is shortened in the message', () => {
  const [error] = errorsOf(parse({ priorityClassName: { a: 'x'.repeat(200) } }));
  assert.ok(error!.endsWith('...'), error);
  assert.ok(error!.length < 120, error);
});

test('annotations larger than the API server accepts are an error', () => {
  const [error] = errorsOf(parse({ podAnnotations: { big: 'x'.repeat(256 * 1024) } }));
  assert.match(error!, /^podAnnotations: annotations total 262147 bytes; the API server accepts at most 262144$/);
});

// ---------------------------------------------------------------------------------------------------------------
// Velero compatibility: case-insensitive keys, unknown keys, ignored values

test('keys that match only case-insensitively are honoured, with a suggestion', () => {
  const result = parse({
    BackupPVC: { gp3: { ReadOnly: true } },
    loadaffinity: [{ NodeSelector: { MatchLabels: { zone: 'a' } } }],
  });
  assert.deepEqual(configOf(result), {
    loadAffinity: [{ nodeSelector: { matchLabels: { zone: 'a' } } }],
    backupPVC: { gp3: { readOnly: true } },
  });
  assert.deepEqual(warningsOf(result), [
    '"BackupPVC": did you mean "backupPVC"? It is read as "backupPVC" because Velero matches keys case-insensitively',
    '"loadaffinity": did you mean "loadAffinity"? It is read as "loadAffinity" because Velero matches keys case-insensitively',
    'loadAffinity[0]: "NodeSelector": did you mean "nodeSelector"? It is read as "nodeSelector" because Velero matches keys case-insensitively',
    'loadAffinity[0].nodeSelector: "MatchLabels": did you mean "matchLabels"? It is read as "matchLabels" because Velero matches keys case-insensitively',
    'backupPVC["gp3"]: "ReadOnly": did you mean "readOnly"? It is read as "readOnly" because Velero matches keys case-insensitively',
  ]);
});

test('map keys (storage classes, labels) are data and stay case-sensitive', () => {
  const config = configOf(parse({ backupPVC: { GP3: { readOnly: true } }, podLabels: { Team: 'A' } }));
  assert.deepEqual(Object.keys(config.backupPVC!), ['GP3']);
  assert.deepEqual(config.podLabels, { Team: 'A' });
});

test('an unknown key is ignored with a warning and a suggestion when one is close', () => {
  const result = parse({ backupPVCs: { gp3: {} }, podResource: {}, frobnicate: true });
  assert.deepEqual(configOf(result), {});
  assert.deepEqual(warningsOf(result), [
    '"backupPVCs": unknown key, ignored; did you mean "backupPVC"?',
    '"podResource": unknown key, ignored; did you mean "podResources"?',
    '"frobnicate": unknown key, ignored',
  ]);
});

test('a known field in the wrong place says where it belongs', () => {
  const result = parse({ backupPVC: { gp3: { cpuLimit: '1', readOnly: true } }, globalConfig: 2 });
  assert.deepEqual(configOf(result), { backupPVC: { gp3: { readOnly: true } } });
  assert.deepEqual(warningsOf(result), [
    '"globalConfig": has no effect at the top level (Velero ignores it too); it belongs under "loadConcurrency"',
    'backupPVC["gp3"]: "cpuLimit": has no effect here (Velero ignores it too); it belongs under "podResources"',
  ]);
});

test('a top-level prepareQueueLength warns that it belongs under loadConcurrency', () => {
  const result = parse({ prepareQueueLength: 10, loadConcurrency: { globalConfig: 2 } });
  assert.deepEqual(configOf(result), { loadConcurrency: { globalConfig: 2 } });
  assert.match(
    warningsOf(result).join('\n'),
    /"prepareQueueLength": has no effect at the top level.*"loadConcurrency"/,
  );
});

test('a globalConfig of zero or less is dropped with a warning, so the default 1 applies', () => {
  for (const globalConfig of [0, -3]) {
    const result = parse({ loadConcurrency: { globalConfig } });
    assert.deepEqual(configOf(result), { loadConcurrency: {} });
    assert.deepEqual(warningsOf(result), [
      `loadConcurrency.globalConfig: ${globalConfig} is not positive; ignored, so the default 1 applies (as in Velero)`,
    ]);
  }
});

test('perNodeConfig rules with a number of zero or less are skipped with a warning', () => {
  const keep = { nodeSelector: { matchLabels: { a: 'b' } }, number: 3 };
  const result = parse({
    loadConcurrency: {
      perNodeConfig: [{ nodeSelector: { matchLabels: { a: 'c' } }, number: 0 }, keep, { nodeSelector: {} }],
    },
  });
  assert.deepEqual(configOf(result), { loadConcurrency: { perNodeConfig: [keep] } });
  assert.deepEqual(warningsOf(result), [
    'loadConcurrency.perNodeConfig[0].number: 0 is not positive; the rule is skipped (as in Velero)',
    'loadConcurrency.perNodeConfig[2].nodeSelector: empty; an empty selector matches every node',
    'loadConcurrency.perNodeConfig[2].number: not set; the rule is skipped (as in Velero)',
  ]);
});

test('a negative prepareQueueLength is dropped with a warning; zero is kept', () => {
  const negative = parse({ loadConcurrency: { prepareQueueLength: -1 } });
  assert.deepEqual(configOf(negative), { loadConcurrency: {} });
  assert.equal(negative.warnings.length, 1);
  assert.deepEqual(configOf(parse({ loadConcurrency: { prepareQueueLength: 0 } })), {
    loadConcurrency: { prepareQueueLength: 0 },
  });
});

test('spcNoRelabeling without readOnly is kept but warned about, as Velero ignores it', () => {
  const result = parse({ backupPVC: { gp3: { spcNoRelabeling: true } } });
  assert.deepEqual(configOf(result), { backupPVC: { gp3: { spcNoRelabeling: true } } });
  assert.deepEqual(warningsOf(result), [
    'backupPVC["gp3"].spcNoRelabeling: has no effect without "readOnly": true (Velero ignores it too); the backupPod gets no spc_t SELinux type',
  ]);
  assert.deepEqual(parse({ backupPVC: { gp3: { readOnly: true, spcNoRelabeling: true } } }).warnings, []);
});

test('null values mean "not set", as in Go', () => {
  const result = parse({ backupPVC: { gp3: { readOnly: null, storageClass: 'fast' } }, podResources: null });
  assert.deepEqual(configOf(result), { backupPVC: { gp3: { storageClass: 'fast' } } });
  assert.deepEqual(result.warnings, []);
});

test('empty strings that Velero reads as "not set" are dropped', () => {
  const config = configOf(
    parse({
      priorityClassName: '',
      backupPVC: { gp3: { storageClass: '' } },
      loadAffinity: [{ nodeSelector: { matchLabels: { a: 'b' } }, storageClass: '' }],
    }),
  );
  assert.deepEqual(config, {
    loadAffinity: [{ nodeSelector: { matchLabels: { a: 'b' } } }],
    backupPVC: { gp3: {} },
  });
});

test('a storage class key that can never match warns', () => {
  const result = parse({ backupPVC: { Fast_SSD: { readOnly: true } } });
  assert.deepEqual(configOf(result), { backupPVC: { Fast_SSD: { readOnly: true } } });
  assert.match(
    warningsOf(result)[0]!,
    /^backupPVC\["Fast_SSD"\]: "Fast_SSD" never matches: a storage class name must be/,
  );
});

test('a selector emptied by its own errors, or a readOnly with the wrong type, adds no misleading warning', () => {
  const result = parse({
    loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'in' }] } }],
    backupPVC: { gp3: { readOnly: 'yes', spcNoRelabeling: true } },
  });
  assert.equal(errorsOf(result).length, 2);
  assert.deepEqual(result.warnings, []);
});

test('a loadAffinity without nodeSelector places no constraint, with a warning', () => {
  const result = parse({ loadAffinity: [{ storageClass: 'fast' }] });
  assert.deepEqual(configOf(result), { loadAffinity: [{ nodeSelector: {}, storageClass: 'fast' }] });
  assert.deepEqual(warningsOf(result), [
    'loadAffinity[0].nodeSelector: not set; an empty selector places no constraint on the node',
  ]);
});

test('a second loadAffinity entry without storageClass is never applied, with a warning', () => {
  const result = parse({
    loadAffinity: [{ nodeSelector: { matchLabels: { a: 'b' } } }, { nodeSelector: { matchLabels: { a: 'c' } } }],
  });
  assert.deepEqual(warningsOf(result), [
    'loadAffinity[1]: never applied: loadAffinity[0] is already the entry for storage classes without their own entry (only the first one applies)',
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// The resolved config

test('the resolved config holds only known fields under canonical names, maps sorted', () => {
  const config = configOf(
    parse({
      PodLabels: { z: '1', a: '2' },
      extra: { anything: true },
      backupPVC: { zeta: { readOnly: true }, alpha: { readOnly: false } },
    }),
  );
  assert.deepEqual(Object.keys(config), ['backupPVC', 'podLabels']);
  assert.deepEqual(Object.keys(config.backupPVC!), ['alpha', 'zeta']);
  assert.deepEqual(Object.keys(config.podLabels!), ['a', 'z']);
});

test('restorePVC, cachePVC and privilegedFsBackup are accepted and kept', () => {
  const json = {
    restorePVC: { ignoreDelayBinding: true },
    cachePVC: { storageClass: 'cache', residentThresholdInMB: 1024 },
    privilegedFsBackup: true,
  };
  assert.deepEqual(configOf(parse(json)), json);
});

// ---------------------------------------------------------------------------------------------------------------
// Velero v1.18.3: every field of pkg/types/node_agent.go (and kube.PodResources, metav1.LabelSelector) is known

const SELECTOR = {
  matchLabels: { 'kubernetes.io/os': 'linux' },
  matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }],
} as const;

/** One config that sets every v1.18.3 field, each to a valid value that takes effect. */
const EVERY_V1_18_3_FIELD = {
  loadConcurrency: {
    globalConfig: 2,
    perNodeConfig: [{ nodeSelector: SELECTOR, number: 3 }],
    prepareQueueLength: 10,
  },
  loadAffinity: [{ nodeSelector: SELECTOR, storageClass: 'gp3-backup' }],
  backupPVC: {
    gp3: {
      storageClass: 'gp3-backup',
      readOnly: true,
      spcNoRelabeling: true,
      annotations: { 'example.com/owner': 'backup' },
      secretNames: ['kms-token', 'csi-provisioner-secret'],
      configMapNames: ['vault-overrides'],
    },
  },
  restorePVC: { ignoreDelayBinding: true, secretNames: ['kms-token'], configMapNames: ['vault-overrides'] },
  podResources: {
    cpuRequest: '500m',
    cpuLimit: '2',
    memoryRequest: '512Mi',
    memoryLimit: '2Gi',
    ephemeralStorageRequest: '1Gi',
    ephemeralStorageLimit: '10Gi',
  },
  priorityClassName: 'backup-low',
  privilegedFsBackup: true,
  cachePVC: { storageClass: 'cache', residentThresholdInMB: 1024 },
  podAnnotations: { 'example.com/note': 'data mover' },
  podLabels: { team: 'storage' },
};

test('the every-field config really sets every field of Velero v1.18.3', () => {
  const config = EVERY_V1_18_3_FIELD;
  const objects: Record<string, object> = {
    '': config,
    loadConcurrency: config.loadConcurrency,
    'loadConcurrency.perNodeConfig[]': config.loadConcurrency.perNodeConfig[0]!,
    'loadAffinity[]': config.loadAffinity[0]!,
    'backupPVC[<class>]': config.backupPVC.gp3,
    restorePVC: config.restorePVC,
    podResources: config.podResources,
    cachePVC: config.cachePVC,
    nodeSelector: SELECTOR,
    'nodeSelector.matchExpressions[]': SELECTOR.matchExpressions[0],
  };
  for (const [where, fields] of Object.entries(VELERO_V1_18_3_FIELDS)) {
    assert.deepEqual(Object.keys(objects[where]!).sort(), [...fields].sort(), where);
  }
});

test('a config with every field of Velero v1.18.3 resolves unchanged, with no warning at all', () => {
  const result = parse(EVERY_V1_18_3_FIELD);
  assert.deepEqual(warningsOf(result), []);
  assert.deepEqual(configOf(result), EVERY_V1_18_3_FIELD);
});

test('secretNames and configMapNames are kept in order on the frozen backupPVC config', () => {
  const config = configOf(parse({ backupPVC: { gp3: { secretNames: ['b', 'a'], configMapNames: ['c'] } } }));
  const gp3 = config.backupPVC!.gp3!;
  assert.deepEqual(gp3.secretNames, ['b', 'a']);
  assert.deepEqual(gp3.configMapNames, ['c']);
  assert.ok(Object.isFrozen(gp3.secretNames));
});

test('a name listed twice is dropped with a warning, since Velero copies it once', () => {
  const result = parse({
    backupPVC: { gp3: { secretNames: ['kms', 'other', 'kms'], configMapNames: ['vault', 'vault'] } },
  });
  assert.deepEqual(configOf(result), {
    backupPVC: { gp3: { secretNames: ['kms', 'other'], configMapNames: ['vault'] } },
  });
  assert.deepEqual(warningsOf(result), [
    'backupPVC["gp3"].secretNames[2]: "kms" repeats backupPVC["gp3"].secretNames[0]; it is copied once, so remove the repeat',
    'backupPVC["gp3"].configMapNames[1]: "vault" repeats backupPVC["gp3"].configMapNames[0]; it is copied once, so remove the repeat',
  ]);
});

test('secretNames outside backupPVC or restorePVC says where it belongs', () => {
  const result = parse({ secretNames: ['kms'], podResources: { configMapNames: ['vault'] } });
  assert.deepEqual(configOf(result), { podResources: {} });
  assert.deepEqual(warningsOf(result), [
    '"secretNames": has no effect at the top level (Velero ignores it too); it belongs under "restorePVC", or under the "backupPVC" entries, which are keyed by the source storage class: {"backupPVC": {"<class>": {...}}}',
    'podResources: "configMapNames": has no effect here (Velero ignores it too); it belongs under "restorePVC", or under the "backupPVC" entries, which are keyed by the source storage class: {"backupPVC": {"<class>": {...}}}',
  ]);
});

test('ephemeral storage quantities stand on their own, and "0" means unbounded', () => {
  assert.deepEqual(configOf(parse({ podResources: { ephemeralStorageLimit: '10Gi' } })), {
    podResources: { ephemeralStorageLimit: '10Gi' },
  });
  assert.deepEqual(configOf(parse({ podResources: { ephemeralStorageRequest: '20Gi', ephemeralStorageLimit: '0' } })), {
    podResources: { ephemeralStorageRequest: '20Gi', ephemeralStorageLimit: '0' },
  });
});

test('a storage class named __proto__ stays plain data', () => {
  const config = configOf(parse('{"backupPVC": {"__proto__": {"readOnly": true}}}'));
  assert.deepEqual(Object.keys(config.backupPVC!), ['__proto__']);
  assert.equal(Object.getPrototypeOf(config.backupPVC), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(config.backupPVC, '__proto__')?.value, { readOnly: true });
});

test('the result is deeply frozen: mutating it throws', () => {
  const result = parse({
    backupPVC: { gp3: { readOnly: true, annotations: { a: 'b' } } },
    loadAffinity: [{ nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['b'] }] } }],
    podResources: { cpuLimit: '1' },
  });
  // Cast away the readonly types to try what careless code would do at run time.
  const config = configOf(result) as unknown as {
    backupPVC: { gp3: { readOnly: boolean; annotations: Record<string, string> } };
    loadAffinity: { nodeSelector: { matchExpressions: { values: string[] }[] } }[];
    podResources: { cpuLimit: string };
  };
  assert.throws(() => {
    config.backupPVC.gp3.readOnly = false;
  }, TypeError);
  assert.throws(() => {
    config.backupPVC.gp3.annotations.c = 'd';
  }, TypeError);
  assert.throws(() => config.loadAffinity.push(config.loadAffinity[0]!), TypeError);
  assert.throws(() => config.loadAffinity[0]!.nodeSelector.matchExpressions[0]!.values.push('c'), TypeError);
  assert.throws(() => {
    config.podResources.cpuLimit = '2';
  }, TypeError);
  assert.throws(() => (result.warnings as ConfigIssue[]).push({ path: '', message: '' }), TypeError);
  assert.equal(config.backupPVC.gp3.readOnly, true);
});

test('an error result is frozen too', () => {
  const result = parse({ priorityClassName: 1 });
  assert.equal(Object.isFrozen(result), true);
  assert.ok(!result.ok);
  assert.throws(() => (result.errors as ConfigIssue[]).push({ path: '', message: '' }), TypeError);
});

test('parsing the same text twice gives equal, independent results', () => {
  const text = JSON.stringify({ backupPVC: { gp3: { readOnly: true } } });
  const first = configOf(parseNodeAgentConfigJson(text, 'a'));
  const second = configOf(parseNodeAgentConfigJson(text, 'a'));
  assert.deepEqual(first, second);
  assert.notEqual(first.backupPVC, second.backupPVC);
});

test('resolveNodeAgentConfig validates an already-parsed value', () => {
  assert.deepEqual(configOf(resolveNodeAgentConfig({ privilegedFsBackup: false })), { privilegedFsBackup: false });
  assert.deepEqual(errorsOf(resolveNodeAgentConfig({ privilegedFsBackup: 'no' })), [
    'privilegedFsBackup: expected boolean, got "no"',
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// podResources: each value stands on its own

test('partial podResources are kept, each value on its own', () => {
  assert.deepEqual(configOf(parse({ podResources: { cpuRequest: '500m' } })), {
    podResources: { cpuRequest: '500m' },
  });
  assert.deepEqual(configOf(parse({ podResources: { memoryLimit: '1Gi', cpuRequest: '1' } })), {
    podResources: { cpuRequest: '1', memoryLimit: '1Gi' },
  });
});

test('"0" means unbounded and is kept; a request above a zero limit is not an error', () => {
  assert.deepEqual(configOf(parse({ podResources: { cpuRequest: '2', cpuLimit: '0', memoryRequest: '0' } })), {
    podResources: { cpuRequest: '2', memoryRequest: '0', cpuLimit: '0' },
  });
});

test('a request equal to its limit in other units is accepted', () => {
  assert.equal(
    parse({ podResources: { cpuRequest: '1000m', cpuLimit: '1', memoryRequest: '1Gi', memoryLimit: '1024Mi' } }).ok,
    true,
  );
  assert.equal(parse({ podResources: { cpuRequest: '100m', cpuLimit: '0.1' } }).ok, true);
});

test('one invalid podResources value does not hide the others', () => {
  assert.deepEqual(
    errorsOf(parse({ podResources: { cpuRequest: 'lots', memoryRequest: '3Gi', memoryLimit: '1Gi' } })),
    [
      'podResources.cpuRequest: invalid quantity "lots"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
      'podResources.memoryRequest: memoryRequest "3Gi" is greater than memoryLimit "1Gi"; a request may not exceed its limit',
    ],
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The ConfigMap (checklist 48)

function configMap(data?: Record<string, string>, binaryData?: Record<string, string>): ConfigMap {
  return { metadata: { name: 'node-agent-config', namespace: 'velero' }, data, binaryData };
}

test('a ConfigMap with one data key is read whatever the key is called', () => {
  for (const key of ['config.json', 'node-agent-config', 'x']) {
    const result = parseNodeAgentConfigMap(configMap({ [key]: '{"priorityClassName": "high"}' }));
    assert.deepEqual(configOf(result), { priorityClassName: 'high' });
  }
});

test('a ConfigMap with several data keys is rejected, naming the ConfigMap and its keys in order', () => {
  const result = parseNodeAgentConfigMap(configMap({ 'b.json': '{}', 'a.json': '{}', 'c.json': '{}' }));
  assert.deepEqual(errorsOf(result), [
    'ConfigMap velero/node-agent-config: data has 3 keys ("a.json", "b.json", "c.json"); expected exactly one key holding the node-agent JSON (Velero v1.18 rejects this too)',
  ]);
});

test('a ConfigMap without data keys is rejected', () => {
  for (const cm of [configMap(), configMap({})]) {
    assert.deepEqual(errorsOf(parseNodeAgentConfigMap(cm)), [
      'ConfigMap velero/node-agent-config: data is empty; expected exactly one key holding the node-agent JSON',
    ]);
  }
});

test('a ConfigMap with only binaryData is rejected, saying binaryData is not read', () => {
  const result = parseNodeAgentConfigMap(configMap(undefined, { 'config.json': Buffer.from('{}').toString('base64') }));
  assert.deepEqual(errorsOf(result), [
    'ConfigMap velero/node-agent-config: only binaryData is set ("config.json"); binaryData is not read (Velero does not read it either), put the JSON under data',
  ]);
});

test('binaryData beside one data key is ignored with a warning', () => {
  const result = parseNodeAgentConfigMap(configMap({ 'config.json': '{}' }, { extra: 'e30=' }));
  assert.deepEqual(configOf(result), {});
  assert.deepEqual(warningsOf(result), [
    'ConfigMap velero/node-agent-config: binaryData ("extra") is ignored, as Velero does',
  ]);
});

test('invalid JSON in a ConfigMap names the ConfigMap, its key, the line and the column', () => {
  const result = parseNodeAgentConfigMap(
    configMap({ 'config.json': '{\n  "backupPVC": {\n    "gp3": {"readOnly": true}\n    "gp2": {}\n  }\n}' }),
  );
  assert.deepEqual(errorsOf(result), [
    `ConfigMap velero/node-agent-config data["config.json"]: invalid JSON at line 4, column 5: Expected ',' or '}' after property value`,
  ]);
});

test('an empty ConfigMap value is a clear error', () => {
  const [error] = errorsOf(parseNodeAgentConfigMap(configMap({ 'config.json': '' })));
  assert.match(error!, /^ConfigMap velero\/node-agent-config data\["config\.json"\]: the value is empty/);
});

test('a ConfigMap whose data is not a map of strings is rejected', () => {
  const notStrings = { metadata: { name: 'n' }, data: { 'config.json': { backupPVC: {} } } } as unknown as ConfigMap;
  assert.deepEqual(errorsOf(parseNodeAgentConfigMap(notStrings)), [
    'ConfigMap n data["config.json"]: expected string, got {"backupPVC":{}}',
  ]);
});

test('parsing a ConfigMap does not freeze or change it', () => {
  const cm = configMap({ 'config.json': '{"backupPVC": {"gp3": {"readOnly": true}}}' });
  const before = structuredClone(cm);
  configOf(parseNodeAgentConfigMap(cm));
  assert.deepEqual(cm, before);
  assert.equal(Object.isFrozen(cm.data), false);
});

test('formatIssue renders path and message, or the message alone at the root', () => {
  assert.equal(
    formatIssue({ path: 'backupPVC["gp3"].readOnly', message: 'expected boolean, got "yes"' }),
    'backupPVC["gp3"].readOnly: expected boolean, got "yes"',
  );
  assert.equal(formatIssue({ path: '', message: 'the config is null' }), 'the config is null');
});
