/**
 * Drift check against Velero's own source: the JSON fields of each struct of the node-agent config in Velero
 * v1.18.3's module (`pkg/types/node_agent.go`, and `LoadAffinity`/`PodResources` of `pkg/util/kube/pod.go`), read
 * in place from the Go module cache that `npm run test:e2e` fills when it builds Velero, must be exactly the fields
 * test/config/velero-fields.ts lists for that place, which the unit tests run through the parser and
 * `check-config` without an "unknown key" warning. A field Velero adds, renames or drops fails here, naming it.
 * Needs no cluster.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { veleroModuleDir } from '../cluster/velero.js';
import { VELERO_V1_18_3_FIELDS } from '../config/velero-fields.js';

/** The `json:"..."` field names of every `type X struct { ... }` in a Go file, by struct name. */
export function goStructJsonFields(source: string): Map<string, string[]> {
  const structs = new Map<string, string[]>();
  for (const match of source.matchAll(/^type (\w+) struct \{\n([\s\S]*?)^\}/gm)) {
    const fields = [...match[2]!.matchAll(/`json:"([^",]+)[^"]*"`/g)].map((m) => m[1]!);
    structs.set(match[1]!, fields);
  }
  return structs;
}

/** Where each Go struct appears in the config, as test/config/velero-fields.ts names the places. */
const PLACES: ReadonlyArray<{ file: string; struct: string; place: string }> = [
  { file: 'pkg/types/node_agent.go', struct: 'NodeAgentConfigs', place: '' },
  { file: 'pkg/types/node_agent.go', struct: 'LoadConcurrency', place: 'loadConcurrency' },
  { file: 'pkg/types/node_agent.go', struct: 'RuledConfigs', place: 'loadConcurrency.perNodeConfig[]' },
  { file: 'pkg/util/kube/pod.go', struct: 'LoadAffinity', place: 'loadAffinity[]' },
  { file: 'pkg/types/node_agent.go', struct: 'BackupPVC', place: 'backupPVC[<class>]' },
  { file: 'pkg/types/node_agent.go', struct: 'RestorePVC', place: 'restorePVC' },
  { file: 'pkg/util/kube/pod.go', struct: 'PodResources', place: 'podResources' },
  { file: 'pkg/types/node_agent.go', struct: 'CachePVC', place: 'cachePVC' },
];

test("every struct of Velero v1.18.3's node-agent config has exactly the fields we know", async () => {
  const dir = await veleroModuleDir();
  const files = new Map<string, Map<string, string[]>>();
  const structsOf = (file: string): Map<string, string[]> => {
    let structs = files.get(file);
    if (!structs) {
      structs = goStructJsonFields(readFileSync(join(dir, file), 'utf8'));
      files.set(file, structs);
    }
    return structs;
  };
  for (const { file, struct, place } of PLACES) {
    const velero = structsOf(file).get(struct);
    assert.ok(velero, `${file} defines type ${struct} struct`);
    assert.deepEqual(
      [...velero].sort(),
      [...(VELERO_V1_18_3_FIELDS[place] ?? [])].sort(),
      `${file} ${struct} (config place "${place}"): Velero's fields vs test/config/velero-fields.ts`,
    );
  }
  // Every struct of node_agent.go is accounted for, so a new one (a new section) fails too.
  const known = new Set(PLACES.filter((p) => p.file === 'pkg/types/node_agent.go').map((p) => p.struct));
  const unplaced = [...structsOf('pkg/types/node_agent.go').keys()].filter(
    (name) => !known.has(name) && name !== 'LoadAffinity', // types.LoadAffinity: unused, kube.LoadAffinity is read
  );
  assert.deepEqual(unplaced, [], 'structs of node_agent.go with no place in the config list');
});

test('the Go struct reader finds fields with and without options, and ignores untagged ones', () => {
  const structs = goStructJsonFields(
    'type A struct {\n\tX int `json:"x,omitempty"`\n\tY string `json:"y"`\n\tz bool\n}\n\ntype B struct {\n}\n',
  );
  assert.deepEqual(Object.fromEntries(structs), { A: ['x', 'y'], B: [] });
});
