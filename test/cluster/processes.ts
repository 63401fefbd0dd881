/**
 * Child processes of the control plane: started detached with their output in a log file, recorded by PID and
 * exact argv, and stopped only by that PID after checking /proc that the PID still runs the same command (so a
 * recycled PID is never signalled).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** What is needed to find, check and stop one started process later, even from another Node process. */
export interface ProcessRecord {
  /** Short component name, e.g. `kube-apiserver`. */
  readonly name: string;
  readonly pid: number;
  /** Executable path as passed to spawn. */
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
}

/** How to start one process. */
export interface SpawnSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Starts a process in its own process group (so a Ctrl-C on the terminal does not tear the control plane down
 * out of order) with stdout and stderr appended to its log file, and without holding the caller's event loop.
 */
export function spawnLogged(spec: SpawnSpec): ProcessRecord {
  const fd = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`${spec.name}: could not start ${spec.command}`);
    // A spawn failure (ENOENT) arrives as an event; the liveness checks report it with the log tail.
    child.on('error', () => undefined);
    child.unref();
    return { name: spec.name, pid: child.pid, command: spec.command, args: spec.args, logFile: spec.logFile };
  } finally {
    closeSync(fd);
  }
}

/** Whether the recorded process still runs (not a zombie) with exactly the recorded argv. */
export function isRunning(rec: ProcessRecord): boolean {
  try {
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    // The state letter follows the parenthesised command name, which may itself contain spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    return sameArgv(argv, [rec.command, ...rec.args]);
  } catch {
    return false;
  }
}

function sameArgv(actual: string[], expected: string[]): boolean {
  return actual.length === expected.length && actual.every((a, i) => a === expected[i]);
}

/** Sends a signal to the recorded PID only if it is still the recorded process. */
export function signalIfRunning(rec: ProcessRecord, signal: NodeJS.Signals): boolean {
  if (!isRunning(rec)) return false;
  try {
    process.kill(rec.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Stops a process: SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopProcess(rec: ProcessRecord, graceMs = 5_000): Promise<void> {
  if (!signalIfRunning(rec, 'SIGTERM')) return;
  if (await waitUntilGone(rec, graceMs)) return;
  signalIfRunning(rec, 'SIGKILL');
  await waitUntilGone(rec, 5_000);
}

async function waitUntilGone(rec: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(rec)) return true;
    await sleep(50);
  }
  return !isRunning(rec);
}

/** The last `lines` lines of a log file (empty when it cannot be read). */
export function tailLog(path: string, lines = 30): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** An error that names the failing process and quotes the end of its log. */
export function processError(rec: ProcessRecord, what: string): Error {
  return new Error(`${rec.name} (pid ${rec.pid}) ${what}; last lines of ${rec.logFile}:\n${tailLog(rec.logFile)}`);
}
