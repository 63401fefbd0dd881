/**
 * `node --import tsx watchdog.ts --owner=<pid> --run-dir=<dir>`: stops a test cluster whose owner died without
 * running its exit handlers (SIGKILL, OOM kill), so a killed runner never leaves a control plane eating the
 * machine. Exits quietly once the run directory is gone (the owner stopped the cluster itself).
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { processesFile, removeRunDir, stopInOrder } from './control-plane.js';
import type { ProcessRecord } from './processes.js';

const CHECK_EVERY_MS = 1_000;

/** Whether `pid` is a live (non-zombie) process. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { owner: { type: 'string' }, 'run-dir': { type: 'string' } } });
  const owner = Number(values.owner);
  const runDir = values['run-dir'];
  if (!Number.isInteger(owner) || !runDir) throw new Error('usage: watchdog.ts --owner=<pid> --run-dir=<dir>');
  while (existsSync(runDir) && isAlive(owner)) await sleep(CHECK_EVERY_MS);
  if (!existsSync(runDir)) return;
  const records = JSON.parse(readFileSync(processesFile(runDir), 'utf8')) as ProcessRecord[];
  console.log(`owner ${owner} is gone; stopping ${records.length - 1} cluster processes`);
  await stopInOrder(records.filter((r) => r.pid !== process.pid));
  await removeRunDir(runDir);
}

process.on('SIGTERM', () => process.exit(0));
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
