/**
 * Velero's node-agent watches Events on a DataUpload (same name as the backupPod) and acts on the reasons
 * `Data-Path-Started`, `-Progress`, `-Completed`, `-Failed`, `-Canceled`, `-Canceling` and `-Stopped`
 * (velero-peer.md). An Event of ours with that prefix would drive Velero's data path, so none may ever have it.
 * The reasons are collected from the source, so a new one cannot slip past this test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExposeFindingReason } from '../../src/diagnostics/reasons.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
const VELERO_DATA_PATH_PREFIX = 'Data-Path-';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Every reason literal handed to the Event intents of plan(): the first argument of `warning(…)` / `normal(…)`,
 * whether a literal or an expression choosing between literals.
 */
function planReasons(): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(SRC)) {
    for (const call of readFileSync(file, 'utf8').matchAll(/\b(?:warning|normal)\(\s*((?:'[^']*'|[^,'])+),/g)) {
      for (const literal of call[1]!.matchAll(/'([^']+)'/g)) found.push(literal[1]!);
    }
  }
  return found;
}

test('the scan finds the controller and diagnostics Event reasons it must check', () => {
  const reasons = new Set([...planReasons(), ...Object.values(ExposeFindingReason)]);
  for (const known of ['Accepted', 'Prepared', 'PrepareTimeout', 'ExposeRejected', 'BackupPodUnschedulable']) {
    assert.ok(reasons.has(known), `found ${known}`);
  }
  assert.ok(reasons.size > 40, `${reasons.size} reasons`);
});

test(`no Event reason of ours starts with Velero's ${VELERO_DATA_PATH_PREFIX} prefix`, () => {
  const offending = [...planReasons(), ...Object.values(ExposeFindingReason)].filter((r) =>
    r.toLowerCase().startsWith(VELERO_DATA_PATH_PREFIX.toLowerCase()),
  );
  assert.deepEqual(offending, []);
});
