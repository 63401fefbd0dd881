/**
 * `check-config` on the files a new user writes first: its whole output (exit code and every stderr line) is
 * pinned here, so a change to the parser or a new Node.js (the unit tests also run on the image's Node 24, whose
 * `JSON.parse` words its errors itself) cannot change what users see unnoticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfigCommand } from '../../src/commands/check-config.js';

/** What check-config prints for a file named `config.json`; the resolved config on stdout is not pinned here. */
async function checkConfig(text: string): Promise<{ code: number; stderr: string[] }> {
  const stderr: string[] = [];
  const code = await checkConfigCommand(['config.json'], {
    stdout: () => undefined,
    stderr: (chunk) => void stderr.push(...chunk.split('\n').filter(Boolean)),
    readStdin: () => Promise.resolve(''),
    readFile: () => Promise.resolve(text),
  });
  return { code, stderr };
}

/** [what, file content, exit code, stderr lines]. */
const FIRST_FILES: readonly [string, string, number, readonly string[]][] = [
  [
    'YAML instead of JSON',
    'backupPVC:\n  gp3:\n    readOnly: true\n',
    1,
    [
      "error: config.json: invalid JSON at line 1, column 1: Unexpected token 'b'",
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'a trailing comma',
    '{\n  "backupPVC": {\n    "gp3": {"readOnly": true},\n  }\n}\n',
    1,
    [
      'error: config.json: invalid JSON at line 4, column 3: Expected double-quoted property name',
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'single quotes',
    "{'backupPVC': {'gp3': {'readOnly': true}}}",
    1,
    [
      "error: config.json: invalid JSON at line 1, column 2: Expected property name or '}'",
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'a // comment',
    '{\n  // the fast class\n  "backupPVC": {"gp3": {"readOnly": true}}\n}\n',
    1,
    [
      "error: config.json: invalid JSON at line 2, column 3: Expected property name or '}'",
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'unquoted keys',
    '{backupPVC: {gp3: {readOnly: true}}}',
    1,
    [
      "error: config.json: invalid JSON at line 1, column 2: Expected property name or '}'",
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'a missing comma',
    '{\n  "backupPVC": {"gp3": {"readOnly": true}}\n  "priorityClassName": "low"\n}',
    1,
    ["error: config.json: invalid JSON at line 3, column 3: Expected ',' or '}' after property value"],
  ],
  [
    'a missing closing brace',
    '{\n  "backupPVC": {"gp3": {"readOnly": true}}\n',
    1,
    ["error: config.json: invalid JSON at line 3, column 1: Expected ',' or '}' after property value"],
  ],
  [
    'an extra closing brace',
    '{"backupPVC": {}}}',
    1,
    ['error: config.json: invalid JSON at line 1, column 18: Unexpected non-whitespace character after JSON'],
  ],
  [
    'typographic quotes',
    '{“backupPVC”: {}}',
    1,
    [
      "error: config.json: invalid JSON at line 1, column 2: Expected property name or '}'",
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'a tab inside a string',
    '{"priorityClassName": "a\tb"}',
    1,
    [
      'error: config.json: invalid JSON at line 1, column 25: Bad control character in string literal',
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON',
    ],
  ],
  [
    'backupPVC settings without the storage class level',
    '{"backupPVC": {"readOnly": true, "storageClass": "gp3-ro"}}',
    1,
    [
      'error: backupPVC["readOnly"]: expected object, got true; backupPVC is keyed by the source storage class, e.g. {"backupPVC": {"gp3": {"readOnly": true}}}',
      'error: backupPVC["storageClass"]: expected object, got "gp3-ro"; backupPVC is keyed by the source storage class, e.g. {"backupPVC": {"gp3": {"storageClass": "gp3-ro"}}}',
    ],
  ],
  [
    'readOnly as the string "true"',
    '{"backupPVC": {"gp3": {"readOnly": "true"}}}',
    1,
    ['error: backupPVC["gp3"].readOnly: expected boolean, got "true"'],
  ],
  [
    'podResources as numbers',
    '{"podResources": {"cpuRequest": 1, "memoryRequest": 512}}',
    1,
    [
      'error: podResources.cpuRequest: expected string, got 1',
      'error: podResources.memoryRequest: expected string, got 512',
    ],
  ],
  [
    'quantities such as "1 core" and "1GB"',
    '{"podResources": {"cpuRequest": "1 core", "memoryLimit": "1GB", "memoryRequest": "512mb"}}',
    1,
    [
      'error: podResources.cpuRequest: invalid quantity "1 core"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
      'error: podResources.memoryRequest: invalid quantity "512mb"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
      'error: podResources.memoryLimit: invalid quantity "1GB"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
    ],
  ],
  [
    'requests above their limits',
    '{"podResources": {"cpuRequest": "2", "cpuLimit": "500m", "memoryRequest": "4Gi", "memoryLimit": "2Gi"}}',
    1,
    [
      'error: podResources.cpuRequest: cpuRequest "2" is greater than cpuLimit "500m"; a request may not exceed its limit',
      'error: podResources.memoryRequest: memoryRequest "4Gi" is greater than memoryLimit "2Gi"; a request may not exceed its limit',
    ],
  ],
  [
    'keys in the wrong case',
    '{"BackupPVC": {"gp3": {"ReadOnly": true}}, "PodResources": {"CPURequest": "1"}}',
    0,
    [
      'warning: "BackupPVC": did you mean "backupPVC"? It is read as "backupPVC" because Velero matches keys case-insensitively',
      'warning: "PodResources": did you mean "podResources"? It is read as "podResources" because Velero matches keys case-insensitively',
      'warning: backupPVC["gp3"]: "ReadOnly": did you mean "readOnly"? It is read as "readOnly" because Velero matches keys case-insensitively',
      'warning: podResources: "CPURequest": did you mean "cpuRequest"? It is read as "cpuRequest" because Velero matches keys case-insensitively',
    ],
  ],
  [
    'misspelled and misplaced keys',
    '{"backupPvcs": {}, "podResource": {}, "loadAfinity": [], "priorityClass": "x", "storageclass": "y"}',
    0,
    [
      'warning: "backupPvcs": unknown key, ignored; did you mean "backupPVC"?',
      'warning: "podResource": unknown key, ignored; did you mean "podResources"?',
      'warning: "loadAfinity": unknown key, ignored; did you mean "loadAffinity"?',
      'warning: "priorityClass": unknown key, ignored',
      'warning: "storageclass": has no effect at the top level (Velero ignores it too); "storageClass" belongs under "loadAffinity[]" or "cachePVC", or under the "backupPVC" entries, which are keyed by the source storage class: {"backupPVC": {"<class>": {...}}}',
    ],
  ],
  [
    'loadAffinity as an object',
    '{"loadAffinity": {"nodeSelector": {"matchLabels": {"a": "b"}}}}',
    1,
    ['error: loadAffinity: expected array, got {"nodeSelector":{"matchLabels":{"a":"b"}}}'],
  ],
  [
    'matchLabels as a list',
    '{"loadAffinity": [{"nodeSelector": {"matchLabels": [{"key": "a", "value": "b"}]}}]}',
    1,
    ['error: loadAffinity[0].nodeSelector.matchLabels: expected object of strings, got [{"key":"a","value":"b"}]'],
  ],
  [
    'the operator "in"',
    '{"loadAffinity": [{"nodeSelector": {"matchExpressions": [{"key": "zone", "operator": "in", "values": ["a"]}]}}]}',
    1,
    [
      'error: loadAffinity[0].nodeSelector.matchExpressions[0].operator: expected one of "In", "NotIn", "Exists", "DoesNotExist", got "in"',
    ],
  ],
  [
    'values as a string',
    '{"loadAffinity": [{"nodeSelector": {"matchExpressions": [{"key": "zone", "operator": "In", "values": "a"}]}}]}',
    1,
    [
      'error: loadAffinity[0].nodeSelector.matchExpressions[0].values: expected array, got "a"',
      'error: loadAffinity[0].nodeSelector.matchExpressions[0].values: operator "In" needs at least one value',
    ],
  ],
  [
    'prepareQueueLength at the top level',
    '{"prepareQueueLength": 10}',
    0,
    [
      'warning: "prepareQueueLength": has no effect at the top level (Velero ignores it too); it belongs under "loadConcurrency"',
    ],
  ],
  [
    'globalConfig 0 and a negative prepareQueueLength',
    '{"loadConcurrency": {"globalConfig": 0, "prepareQueueLength": -1}}',
    0,
    [
      'warning: loadConcurrency.globalConfig: 0 is not positive; ignored, so the default 1 applies (as in Velero)',
      'warning: loadConcurrency.prepareQueueLength: -1 is negative; ignored, so the prepare queue is unlimited (only values > 0 enable it)',
    ],
  ],
  [
    'an upper-case priorityClassName',
    '{"priorityClassName": "High-Priority"}',
    1,
    [
      "error: priorityClassName: invalid PriorityClass name \"High-Priority\": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character",
    ],
  ],
  [
    'non-string annotations',
    '{"backupPVC": {"gp3": {"annotations": {"a": 1, "b": true}}}, "podAnnotations": {"x": null}}',
    1,
    [
      'error: backupPVC["gp3"].annotations["a"]: expected string, got 1',
      'error: backupPVC["gp3"].annotations["b"]: expected string, got true',
      'error: podAnnotations["x"]: expected string, got null',
    ],
  ],
  [
    'invalid labels',
    '{"podLabels": {"app name": "x", "team": "a/b", "example.com/": "c"}}',
    1,
    [
      "error: podLabels[\"app name\"]: invalid label key \"app name\": the name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
      'error: podLabels["example.com/"]: invalid label key "example.com/": the name part must not be empty',
      "error: podLabels[\"team\"]: invalid label value \"a/b\": a label value must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ],
  ],
  [
    'storage class names with underscores',
    '{"backupPVC": {"fast_ssd": {"storageClass": "Fast_SSD"}}}',
    1,
    [
      'warning: backupPVC["fast_ssd"]: "fast_ssd" never matches: a storage class name must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, \'-\' or \'.\', starting and ending with an alphanumeric character',
      'error: backupPVC["fast_ssd"].storageClass: invalid storage class name "Fast_SSD": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, \'-\' or \'.\', starting and ending with an alphanumeric character',
    ],
  ],
  [
    'a perNodeConfig rule without number',
    '{"loadConcurrency": {"perNodeConfig": [{"nodeSelector": {"matchLabels": {"a": "b"}}}]}}',
    0,
    ['warning: loadConcurrency.perNodeConfig[0].number: not set; the rule is skipped (as in Velero)'],
  ],
  [
    'Exists with values',
    '{"loadAffinity": [{"nodeSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}]}',
    1,
    ['error: loadAffinity[0].nodeSelector.matchExpressions[0].values: operator "Exists" takes no values, got ["x"]'],
  ],
  [
    'secretNames and configMapNames',
    '{"backupPVC": {"gp3": {"secretNames": ["kms-token"], "configMapNames": ["vault"]}}, "restorePVC": {"secretNames": ["a"], "configMapNames": ["b"]}}',
    0,
    [],
  ],
  [
    'bad secretNames and configMapNames',
    '{"backupPVC": {"gp3": {"secretNames": "kms-token", "configMapNames": ["Vault_Cfg", "v", "v", 3]}}}',
    1,
    [
      'warning: backupPVC["gp3"].configMapNames[2]: "v" repeats backupPVC["gp3"].configMapNames[1]; it is copied once, so remove the repeat',
      'error: backupPVC["gp3"].secretNames: expected array, got "kms-token"',
      'error: backupPVC["gp3"].configMapNames[0]: invalid ConfigMap name "Vault_Cfg": must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, \'-\' or \'.\', starting and ending with an alphanumeric character',
      'error: backupPVC["gp3"].configMapNames[3]: expected string, got 3',
    ],
  ],
  [
    'an ephemeral storage request above its limit',
    '{"podResources": {"ephemeralStorageRequest": "1Gi", "ephemeralStorageLimit": "512Mi"}}',
    1,
    [
      'error: podResources.ephemeralStorageRequest: ephemeralStorageRequest "1Gi" is greater than ephemeralStorageLimit "512Mi"; a request may not exceed its limit',
    ],
  ],
  [
    'an empty file',
    '',
    1,
    [
      'error: config.json: the value is empty; expected a JSON object such as {"backupPVC": {...}} (Velero fails with "unexpected end of JSON input")',
    ],
  ],
  [
    'a byte order mark',
    '﻿{"priorityClassName": "x"}',
    0,
    ['warning: config.json: the byte order mark (BOM) at the start is ignored; Velero rejects it, so remove it'],
  ],
  [
    'a repeated key',
    '{"backupPVC": {"gp3": {}}, "backupPVC": {"gp2": {}}}',
    1,
    [
      'error: config.json: duplicate key "backupPVC" at line 1, column 28; keep only one (Velero silently merges or overrides repeated keys)',
    ],
  ],
  ['null', 'null', 0, ['warning: the config is null; Velero reads that as an empty config, so the defaults apply']],
  ['a list at the top', '[{"backupPVC": {}}]', 1, ['error: the config must be a JSON object, got [{"backupPVC":{}}]']],
  ['a string at the top', '"backupPVC"', 1, ['error: the config must be a JSON object, got "backupPVC"']],
  ['a number at the top', '42', 1, ['error: the config must be a JSON object, got 42']],
  ['an empty object', '{}', 0, []],
  [
    'one key in two cases',
    '{"backupPVC": {}, "backuppvc": {}}',
    1,
    [
      'error: "backupPVC" and "backuppvc" both set "backupPVC" (keys match case-insensitively, as in Velero); keep only one',
    ],
  ],
  [
    'fields in the wrong section',
    '{"readOnly": true, "cpuLimit": "1", "backupPVC": {"gp3": {"memoryLimit": "1Gi", "nodeSelector": {}}}}',
    0,
    [
      'warning: "readOnly": has no effect at the top level (Velero ignores it too); it belongs under the "backupPVC" entries, which are keyed by the source storage class: {"backupPVC": {"<class>": {...}}}',
      'warning: "cpuLimit": has no effect at the top level (Velero ignores it too); it belongs under "podResources"',
      'warning: backupPVC["gp3"]: "memoryLimit": has no effect here (Velero ignores it too); it belongs under "podResources"',
      'warning: backupPVC["gp3"]: "nodeSelector": has no effect here (Velero ignores it too); it belongs under "loadAffinity[]" or "loadConcurrency.perNodeConfig[]"',
    ],
  ],
  [
    'null entries',
    '{"loadAffinity": [null], "backupPVC": {"gp3": null}}',
    1,
    ['error: loadAffinity[0]: expected a value, got null', 'error: backupPVC["gp3"]: expected object, got null'],
  ],
  [
    'a ConfigMap manifest with two data keys',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\n  namespace: velero\ndata:\n  a.json: "{}"\n  b.json: "{}"\n',
    1,
    [
      'error: ConfigMap velero/nac: data has 2 keys ("a.json", "b.json"); expected exactly one key holding the node-agent JSON (Velero v1.18 rejects this too)',
    ],
  ],
  [
    'a ConfigMap manifest whose data value is YAML, not a JSON string',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\n  namespace: velero\ndata:\n  config.json:\n    backupPVC:\n      gp3:\n        readOnly: true\n',
    1,
    ['error: ConfigMap velero/nac data["config.json"]: expected string, got {"backupPVC":{"gp3":{"readOnly":true}}}'],
  ],
  [
    'a ConfigMap manifest with broken JSON inside',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\n  namespace: velero\ndata:\n  config.json: |\n    {"backupPVC": {"gp3": {"readOnly": yes}}}\n',
    1,
    ['error: ConfigMap velero/nac data["config.json"]: invalid JSON at line 1, column 36: Unexpected token \'y\''],
  ],
  [
    'a ConfigMap manifest with broken indentation',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\n data:\n  config.json: "{}"\n',
    1,
    ['error: config.json: invalid YAML at line 5, column 1: All mapping items must start at the same column'],
  ],
  [
    'a ConfigMap manifest without data',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\n',
    1,
    ['error: ConfigMap nac: data is empty; expected exactly one key holding the node-agent JSON'],
  ],
  [
    'a ConfigMap manifest with binaryData only',
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\nbinaryData:\n  config.json: e30=\n',
    1,
    [
      'error: ConfigMap nac: only binaryData is set ("config.json"); binaryData is not read (Velero does not read it either), put the JSON under data',
    ],
  ],
  [
    'a ConfigMap in a multi-document manifest',
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: velero\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nac\n  namespace: velero\ndata:\n  c.json: \'{"priorityClassName": "p"}\'\n',
    0,
    ['warning: config.json: 1 other document(s) besides the ConfigMap ignored'],
  ],
  [
    'a ConfigMap manifest in JSON',
    '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": {"c": "{\\"backupPVC\\": 1}"}}',
    1,
    ['error: backupPVC: expected object keyed by source storage class, got 1'],
  ],
  [
    'every common field set',
    '{\n  "loadConcurrency": {\n    "globalConfig": 2,\n    "perNodeConfig": [\n      {\n        "nodeSelector": {\n          "matchLabels": {\n            "a": "b"\n          }\n        },\n        "number": 3\n      }\n    ],\n    "prepareQueueLength": 5\n  },\n  "loadAffinity": [\n    {\n      "nodeSelector": {\n        "matchExpressions": [\n          {\n            "key": "k",\n            "operator": "In",\n            "values": [\n              "v"\n            ]\n          }\n        ]\n      },\n      "storageClass": "gp3"\n    }\n  ],\n  "backupPVC": {\n    "gp3": {\n      "storageClass": "gp3-ro",\n      "readOnly": true,\n      "spcNoRelabeling": true,\n      "annotations": {\n        "a": "b"\n      }\n    }\n  },\n  "restorePVC": {\n    "ignoreDelayBinding": true\n  },\n  "podResources": {\n    "cpuRequest": "1",\n    "cpuLimit": "2",\n    "memoryRequest": "1Gi",\n    "memoryLimit": "2Gi"\n  },\n  "priorityClassName": "p",\n  "privilegedFsBackup": false,\n  "cachePVC": {\n    "storageClass": "c",\n    "residentThresholdInMB": 10\n  },\n  "podLabels": {\n    "a": "b"\n  },\n  "podAnnotations": {\n    "c": "d"\n  }\n}',
    0,
    [],
  ],
  [
    'a long wrong value',
    '{"priorityClassName":["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]}',
    1,
    ['error: priorityClassName: expected string, got ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'],
  ],
  [
    'fractional and string counts',
    '{"loadConcurrency": {"globalConfig": 2.5, "perNodeConfig": [{"nodeSelector": {}, "number": "3"}]}}',
    1,
    [
      'warning: loadConcurrency.perNodeConfig[0].nodeSelector: empty; an empty selector matches every node',
      'error: loadConcurrency.globalConfig: expected integer, got 2.5',
      'error: loadConcurrency.perNodeConfig[0].number: expected integer, got "3"',
    ],
  ],
  [
    'a bad \\u escape',
    '{"priorityClassName": "\\u12G4"}',
    1,
    ['error: config.json: invalid JSON at line 1, column 28: Bad Unicode escape'],
  ],
  [
    'bad selector values',
    '{"loadAffinity": [{"nodeSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", 5, null]}]}}]}',
    1,
    [
      'error: loadAffinity[0].nodeSelector.matchExpressions[0].values[1]: expected string, got 5',
      'error: loadAffinity[0].nodeSelector.matchExpressions[0].values[2]: expected a value, got null',
    ],
  ],
];

for (const [what, text, code, stderr] of FIRST_FILES) {
  test(`check-config on ${what}: exit code and every message as pinned`, async () => {
    assert.deepEqual(await checkConfig(text), { code, stderr });
  });
}
