/**
 * Locates Velero's sample node-agent configs, read in place (never copied into the repo): by default
 * `../shared/reference/velero-samples` from the repository root; `DUO_VELERO_SAMPLES_DIR` overrides it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

/** The repository root (this file is `test/config/velero-samples.ts`). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Directory of the samples. */
export const SAMPLES_DIR = resolve(
  REPO_ROOT,
  process.env.DUO_VELERO_SAMPLES_DIR ?? join('..', 'shared', 'reference', 'velero-samples'),
);

/** Why sample tests are skipped, or `false` when the samples are there. */
export const SKIP_SAMPLES: string | false = existsSync(SAMPLES_DIR)
  ? false
  : `Velero samples not found at ${SAMPLES_DIR} (set DUO_VELERO_SAMPLES_DIR)`;

/** The node-agent config samples: every `*.json` plus the `*.txt` one kept as invalid JSON. */
export function listConfigSamples(): string[] {
  if (SKIP_SAMPLES) return [];
  return readdirSync(SAMPLES_DIR)
    .filter((name) => name.endsWith('.json') || name.endsWith('.txt'))
    .sort();
}

/** The text of one sample. */
export function readSample(name: string): string {
  return readFileSync(join(SAMPLES_DIR, name), 'utf8');
}

/** The absolute path of one sample. */
export function samplePath(name: string): string {
  return join(SAMPLES_DIR, name);
}
