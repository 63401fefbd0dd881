/**
 * The expose benchmark (test/bench, `npm run bench`) in miniature, so it cannot rot: the compiled operator and the
 * floor, 20 DataUploads each, on the suite's cluster. It asserts that the run completes, that every DataUpload
 * reaches Prepared for both, that every number is finite and positive, and that nothing is left behind; never how
 * fast anything is.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runBenchmark } from '../bench/bench.js';
import { formatReport, type SystemResult } from '../bench/measure.js';
import { buildOperatorAndFloor, type Build } from '../bench/systems.js';
import { isAudited } from '../cluster/control-plane.js';
import { adminRestClient, connectCluster } from '../cluster/index.js';
import { ensureNode24 } from '../node24/node24.js';

const cluster = connectCluster();
const COUNT = 20;
const workDir = mkdtempSync(join(tmpdir(), 'duo-bench-smoke-'));
let build: Build | undefined;

before(async () => {
  build = await buildOperatorAndFloor();
});

after(() => {
  build?.remove();
  rmSync(workDir, { recursive: true, force: true });
});

function assertPositive(what: string, value: number | undefined): void {
  assert.ok(value !== undefined && Number.isFinite(value) && value > 0, `${what} is ${value}`);
}

test(`the benchmark runs ours and the floor with ${COUNT} DataUploads each; all reach Prepared and nothing is left`, async () => {
  const audited = isAudited(cluster.runDir);
  const results: SystemResult[] = await runBenchmark(cluster, {
    count: COUNT,
    systems: ['ours', 'floor'],
    workDir,
    build: build!,
    node: ensureNode24() ?? process.execPath,
    log: (line) => console.log(`# ${line}`),
    // A busy suite machine is seldom as quiet as a benchmark wants; this run measures nothing that depends on it.
    quietCores: 0.6,
    quietTimeoutMs: 10_000,
    quietSeconds: 1,
  });
  for (const line of formatReport(results).split('\n')) console.log(`# ${line}`);

  assert.deepEqual(
    results.map((r) => r.system),
    ['ours', 'floor'],
  );
  for (const r of results) {
    assert.equal(r.prepared, COUNT, `${r.system}: Prepared`);
    assert.equal(r.failed, 0, `${r.system}: failed`);
    for (const [what, value] of Object.entries({
      makespan: r.makespanSeconds,
      perSecond: r.perSecond,
      p50: r.p50Seconds,
      p99: r.p99Seconds,
      cpuSeconds: r.cpuSeconds,
      cpuPerDataUpload: r.cpuSecondsPerDataUpload,
      peakRss: r.peakRssBytes,
    })) {
      assertPositive(`${r.system} ${what}`, value);
    }
    if (audited) {
      assertPositive(`${r.system} writes per DataUpload`, r.writes?.perDataUpload);
      // A refused write is a bug, except a rare 409 Conflict (a resourceVersion-guarded write that lost a race is
      // planned again from the fresher object; one was seen in about one run in five) or a delete of something
      // already gone (404, which cleanup counts as done).
      const refused = Object.entries(r.writes?.refusedByVerbAndResource ?? {});
      const benign = ([key]: [string, number]): boolean =>
        key.endsWith(' 409') || (key.startsWith('delete ') && key.endsWith(' 404'));
      const conflicts = refused.filter(benign).reduce((n, [, count]) => n + count, 0);
      assert.deepEqual(
        refused.filter((entry) => !benign(entry)),
        [],
        `${r.system}: writes refused other than with a conflict or an already-gone delete`,
      );
      assert.ok(conflicts <= 2, `${r.system}: ${conflicts} conflicts or already-gone deletes in ${COUNT} DataUploads`);
    } else {
      console.log('# the cluster has no audit log (start it with audit: true); write counts not checked');
    }
  }
  // The floor issues exactly the plan's ten writes per DataUpload.
  if (audited) assert.equal(results[1]!.writes?.perDataUpload, 10);

  const client = adminRestClient(cluster);
  try {
    const dus = await client.call<{ items: { metadata: { name: string } }[] }>({
      path: '/apis/velero.io/v2alpha1/namespaces/velero/datauploads',
    });
    assert.deepEqual(
      dus.items.map((du) => du.metadata.name).filter((n) => n.startsWith('bench-')),
      [],
    );
    const pods = await client.call<{ items: { metadata: { name: string } }[] }>({
      path: '/api/v1/namespaces/velero/pods',
    });
    assert.deepEqual(
      pods.items.map((p) => p.metadata.name).filter((n) => n.startsWith('bench-')),
      [],
    );
  } finally {
    client.close();
  }
});
