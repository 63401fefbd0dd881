import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigCommand, checkConfigText, type CommandIo } from '../../src/commands/check-config.js';
import { runCli } from '../../src/cli.js';
import { REPO_ROOT, readSample, samplePath, SKIP_SAMPLES } from './velero-samples.js';

/** A fake process: files by name, stdin text, and captured output. */
function fakeIo(files: Record<string, string> = {}, stdin = '') {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo & { version: () => string } = {
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    readStdin: () => Promise.resolve(stdin),
    readFile: (path) =>
      path in files
        ? Promise.resolve(files[path]!)
        : Promise.reject(new Error(`ENOENT: no such file or directory, open '${path}'`)),
    version: () => '1.2.3',
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

const VALID_JSON = '{\n  "backupPVC": {"gp3": {"readOnly": true}},\n  "BackupPVCs": {}\n}\n';
const BROKEN_JSON = '{\n  "backupPVC": {\n    "gp3": {"readOnly": true}\n    "gp2": {}\n  }\n}\n';

const YAML_MANIFEST = `apiVersion: v1
kind: ConfigMap
metadata:
  name: node-agent-config
  namespace: velero
data:
  node-agent-config.json: |
    {
      "loadConcurrency": {"globalConfig": 2, "prepareQueueLength": 4},
      "backupPVC": {"gp3": {"storageClass": "gp3-ro", "readOnly": true}}
    }
`;

test('a valid JSON file prints the resolved config on stdout and warnings on stderr, exit 0', async () => {
  const { io, stdout, stderr } = fakeIo({ 'config.json': VALID_JSON });
  assert.equal(await checkConfigCommand(['config.json'], io), 0);
  assert.deepEqual(JSON.parse(stdout()), { backupPVC: { gp3: { readOnly: true } } });
  assert.equal(stderr(), 'warning: "BackupPVCs": unknown key, ignored; did you mean "backupPVC"?\n');
});

test('a broken JSON file prints every error with its location, exit 1, nothing on stdout', async () => {
  const { io, stdout, stderr } = fakeIo({ 'config.json': BROKEN_JSON });
  assert.equal(await checkConfigCommand(['config.json'], io), 1);
  assert.equal(stdout(), '');
  assert.equal(
    stderr(),
    "error: config.json: invalid JSON at line 4, column 5: Expected ',' or '}' after property value\n",
  );
});

test('invalid values print one error line each', async () => {
  const text = JSON.stringify({ backupPVC: { gp3: { readOnly: 'yes' } }, podResources: { cpuRequest: 'x' } });
  const { io, stderr } = fakeIo({ 'c.json': text });
  assert.equal(await checkConfigCommand(['c.json'], io), 1);
  assert.equal(
    stderr(),
    [
      'error: backupPVC["gp3"].readOnly: expected boolean, got "yes"',
      'error: podResources.cpuRequest: invalid quantity "x"; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"',
      '',
    ].join('\n'),
  );
});

test('a YAML ConfigMap manifest is read through its single data key', async () => {
  const { io, stdout, stderr } = fakeIo({ 'cm.yaml': YAML_MANIFEST });
  assert.equal(await checkConfigCommand(['cm.yaml'], io), 0);
  assert.deepEqual(JSON.parse(stdout()), {
    loadConcurrency: { globalConfig: 2, prepareQueueLength: 4 },
    backupPVC: { gp3: { storageClass: 'gp3-ro', readOnly: true } },
  });
  assert.equal(stderr(), '');
});

test('a JSON ConfigMap manifest (kubectl get -o json) is read too', () => {
  const manifest = JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'nac', namespace: 'velero' },
    data: { 'config.json': '{"priorityClassName": "high"}' },
  });
  const checked = checkConfigText(manifest, 'cm.json');
  assert.deepEqual(checked.result.ok && checked.result.config, { priorityClassName: 'high' });
});

test('a ConfigMap manifest with two data keys is rejected, naming them', async () => {
  const manifest = YAML_MANIFEST.replace('\ndata:\n', '\ndata:\n  other.json: "{}"\n');
  const { io, stderr } = fakeIo({ 'cm.yaml': manifest });
  assert.equal(await checkConfigCommand(['cm.yaml'], io), 1);
  assert.equal(
    stderr(),
    'error: ConfigMap velero/node-agent-config: data has 2 keys ("node-agent-config.json", "other.json"); expected exactly one key holding the node-agent JSON (Velero v1.18 rejects this too)\n',
  );
});

test('invalid JSON inside a ConfigMap manifest names the ConfigMap and the key', () => {
  const manifest = YAML_MANIFEST.replace('"prepareQueueLength": 4},', '"prepareQueueLength": 4}');
  const checked = checkConfigText(manifest, 'cm.yaml');
  assert.equal(checked.result.ok, false);
  assert.match(
    !checked.result.ok ? checked.result.errors[0]!.path : '',
    /^ConfigMap velero\/node-agent-config data\["node-agent-config\.json"\]$/,
  );
});

test('a ConfigMap manifest with broken YAML reports the YAML error and its line', () => {
  const checked = checkConfigText('apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [\n', 'cm.yaml');
  assert.equal(checked.result.ok, false);
  const [error] = checked.result.ok ? [] : checked.result.errors;
  assert.equal(error?.path, 'cm.yaml');
  assert.match(error?.message ?? '', /^invalid YAML at line \d+, column \d+: /);
});

test('a multi-document manifest with one ConfigMap is checked, with a warning about the rest', () => {
  const text = `apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: node-agent\n---\n${YAML_MANIFEST}`;
  const checked = checkConfigText(text, 'all.yaml');
  assert.equal(checked.result.ok, true);
  assert.deepEqual(checked.result.warnings, [
    { path: 'all.yaml', message: '1 other document(s) besides the ConfigMap ignored' },
  ]);
});

test('node-agent config written as YAML is rejected as JSON, with a hint', async () => {
  const { io, stderr } = fakeIo({}, 'backupPVC:\n  gp3:\n    readOnly: true\n');
  assert.equal(await checkConfigCommand(['-'], io), 1);
  assert.equal(
    stderr(),
    "error: <stdin>: invalid JSON at line 1, column 1: Unexpected token 'b'\n" +
      'hint: this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON\n',
  );
});

test('- reads the config from standard input', async () => {
  const { io, stdout } = fakeIo({}, '{"privilegedFsBackup": true}');
  assert.equal(await checkConfigCommand(['-'], io), 0);
  assert.deepEqual(JSON.parse(stdout()), { privilegedFsBackup: true });
});

test('an unreadable file is an error that names it, exit 1', async () => {
  const { io, stderr } = fakeIo();
  assert.equal(await checkConfigCommand(['missing.json'], io), 1);
  assert.equal(stderr(), "error: cannot read missing.json: ENOENT: no such file or directory, open 'missing.json'\n");
});

test('check-config without exactly one file is a usage error, exit 2', async () => {
  for (const args of [[], ['a.json', 'b.json'], ['--strict']]) {
    const { io, stderr } = fakeIo();
    assert.equal(await checkConfigCommand(args, io), 2, args.join(' '));
    assert.match(stderr(), /^error: check-config takes exactly one file name/);
  }
});

test('check-config --help prints its usage, exit 0', async () => {
  const { io, stdout } = fakeIo();
  assert.equal(await checkConfigCommand(['--help'], io), 0);
  assert.match(stdout(), /^Usage: dataupload-operator check-config <file \| ->/);
});

test('the INVALID-JSON docs sample fails with its line and column', { skip: SKIP_SAMPLES }, () => {
  const checked = checkConfigText(readSample('docs-v1.17-backup-pvc.1.INVALID-JSON.txt'), 'backup-pvc.json');
  assert.deepEqual(checked.result.ok ? [] : checked.result.errors, [
    {
      path: 'backup-pvc.json',
      message: "invalid JSON at line 13, column 9: Expected ',' or '}' after property value",
    },
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// The dispatcher

test('--version prints the version', async () => {
  const { io, stdout } = fakeIo();
  assert.equal(await runCli(['--version'], io), 0);
  assert.equal(stdout(), '1.2.3\n');
});

test('--help and help print the usage with every command and the flags of run', async () => {
  for (const argv of [['--help'], ['help'], ['-h']]) {
    const { io, stdout } = fakeIo();
    assert.equal(await runCli(argv, io), 0);
    assert.match(stdout(), /check-config <file \| ->/);
    assert.match(stdout(), /--node-agent-configmap <name>/);
  }
});

test('no command or an unknown one is a usage error, exit 2', async () => {
  const none = fakeIo();
  assert.equal(await runCli([], none.io), 2);
  assert.match(none.stderr(), /^Usage: dataupload-operator <command>/);
  const unknown = fakeIo();
  assert.equal(await runCli(['start'], unknown.io), 2);
  assert.match(unknown.stderr(), /^error: unknown command "start"/);
});

test('run and diagnose are dispatched with their own arguments', async () => {
  const calls: string[][] = [];
  const { io } = fakeIo();
  const commands = {
    run: (args: string[]) => (calls.push(['run', ...args]), Promise.resolve(0)),
    diagnose: (args: string[]) => (calls.push(['diagnose', ...args]), Promise.resolve(3)),
  };
  assert.equal(await runCli(['run', '--workers=2'], { ...io, commands }), 0);
  assert.equal(await runCli(['diagnose', 'ns/du'], { ...io, commands }), 3);
  assert.deepEqual(calls, [
    ['run', '--workers=2'],
    ['diagnose', 'ns/du'],
  ]);
});

test('run --help prints the flags of run without starting it', async () => {
  const { io, stdout } = fakeIo();
  const commands = { run: () => Promise.reject(new Error('must not run')) };
  assert.equal(await runCli(['run', '--help'], { ...io, commands }), 0);
  assert.match(stdout(), /^Usage: dataupload-operator run \[flags\]/);
});

// ---------------------------------------------------------------------------------------------------------------
// End to end through the bin, as a user runs it

const BIN = join(REPO_ROOT, 'bin', 'dataupload-operator.js');

function runBin(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    input,
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('the bin rejects a broken file with exit 1 and the located message', { skip: SKIP_SAMPLES }, () => {
  const result = runBin(['check-config', samplePath('docs-v1.17-backup-pvc.1.INVALID-JSON.txt')]);
  assert.equal(result.status, 1, result.stderr);
  assert.equal(result.stdout, '');
  assert.match(
    result.stderr,
    /^error: .*docs-v1\.17-backup-pvc\.1\.INVALID-JSON\.txt: invalid JSON at line 13, column 9: Expected ',' or '}' after property value\n$/,
  );
});

test('the bin accepts a YAML ConfigMap manifest with exit 0 and prints the config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'check-config-'));
  try {
    const file = join(dir, 'node-agent-config.yaml');
    writeFileSync(file, YAML_MANIFEST);
    const result = runBin(['check-config', file]);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      loadConcurrency: { globalConfig: 2, prepareQueueLength: 4 },
      backupPVC: { gp3: { storageClass: 'gp3-ro', readOnly: true } },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the bin reads standard input for -', () => {
  const result = runBin(['check-config', '-'], '{"podResources": {"cpuRequest": "2", "cpuLimit": "1"}}');
  assert.equal(result.status, 1);
  assert.equal(
    result.stderr,
    'error: podResources.cpuRequest: cpuRequest "2" is greater than cpuLimit "1"; a request may not exceed its limit\n',
  );
});

test('the bin prints its version from package.json', () => {
  const result = runBin(['--version']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /^\d+\.\d+\.\d+/);
});
