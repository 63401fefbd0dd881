/**
 * The CLI entry (`bin/dataupload-operator.js` imports this module): wires the process into {@link runCli} and
 * sets the exit code. It never calls `process.exit`, so pending output is flushed and `run` can shut down cleanly.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { runCli, type CliIo } from './cli.js';

/** The package version; `package.json` sits one directory above both `src/` and `dist/`. */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

const io: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  readStdin,
  readFile: (path) => readFile(path, 'utf8'),
  version: packageVersion,
};

try {
  process.exitCode = await runCli(process.argv.slice(2), io);
} catch (error) {
  process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
