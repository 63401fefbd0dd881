/** Where the harness finds its own files and the shared upstream data it reads in place. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in `<root>/test/cluster/`). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The shared data directory next to the repository (`<root>/../shared`). */
const SHARED_DIR = join(REPO_ROOT, '..', 'shared');

/** The kwok Stage file: `DUO_KWOK_STAGES`, else the shared upstream copy (never copied into the repo). */
export function kwokStagesFile(): string {
  return mustExist(
    process.env.DUO_KWOK_STAGES ?? join(SHARED_DIR, 'kwok-stages', 'kwok-fast-stages.yaml'),
    'DUO_KWOK_STAGES',
  );
}

/** The VolumeSnapshot CRD directory: `DUO_SNAPSHOT_CRDS_DIR`, else the shared upstream copy. */
export function snapshotCrdsDir(): string {
  return mustExist(process.env.DUO_SNAPSHOT_CRDS_DIR ?? join(SHARED_DIR, 'snapshot-crds'), 'DUO_SNAPSHOT_CRDS_DIR');
}

function mustExist(path: string, envName: string): string {
  if (!existsSync(path)) throw new Error(`${path} not found (set ${envName} to override)`);
  return path;
}
