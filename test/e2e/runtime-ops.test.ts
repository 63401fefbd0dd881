/**
 * The operational runtime on the real control plane: leader election (mutual exclusion, failover after a kill,
 * fast handover after release), Event series as `kubectl describe` shows them, and `/metrics` served by the
 * health server with every promised name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { connectCluster, createTestNamespace } from '../cluster/index.js';
import { deleteNamespaces, kubectlOk } from '../cluster/testing.js';
import type { ConfigMap } from '../../src/api/kube.js';
import { EventRecorder, type EventsV1Event } from '../../src/runtime/event-recorder.js';
import { HealthServer } from '../../src/runtime/health.js';
import { HttpKubeClient } from '../../src/runtime/kube-client.js';
import { Resources } from '../../src/runtime/kube-api.js';
import { leaderIdentity, LeaderElector, type Lease, type StopReason } from '../../src/runtime/leader-election.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { WorkQueue } from '../../src/runtime/work-queue.js';
import { EXPECTED_METRIC_NAMES } from '../runtime/metric-names.js';

const cluster = connectCluster();
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(cluster.kubeconfig);
const api = HttpKubeClient.fromKubeConfig(kubeConfig);
let ns = '';

before(async () => {
  ns = await createTestNamespace(cluster, 'runtime-ops');
});

after(async () => {
  await deleteNamespaces(cluster, ns);
  api.close();
});

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A candidate on the real API, with its leadership intervals on one shared monotonic clock. */
interface Candidate {
  elector: LeaderElector;
  stop: AbortController;
  done: Promise<void>;
  startedAt: number[];
  stoppedAt: number[];
  stopReasons: StopReason[];
}

function candidate(
  lease: string,
  pod: string,
  timings: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number } = {},
): Candidate {
  const c: Candidate = {
    elector: undefined as unknown as LeaderElector,
    stop: new AbortController(),
    done: Promise.resolve(),
    startedAt: [],
    stoppedAt: [],
    stopReasons: [],
  };
  c.elector = new LeaderElector({
    api,
    namespace: ns,
    name: lease,
    identity: leaderIdentity(pod),
    ...timings,
    callbacks: {
      onStartedLeading: () => c.startedAt.push(performance.now()),
      onStoppedLeading: (reason) => {
        c.stoppedAt.push(performance.now());
        c.stopReasons.push(reason);
      },
    },
  });
  c.done = c.elector.run(c.stop.signal);
  return c;
}

/**
 * Samples both candidates every `everyMs` until `until()` holds or `timeoutMs` passes, failing at the first sample
 * where both lead. Returns the time `until()` first held, or undefined.
 */
async function sampleExclusive(
  candidates: Candidate[],
  o: { timeoutMs: number; everyMs?: number; until?: () => boolean },
): Promise<{ at: number | undefined; samples: number }> {
  const end = performance.now() + o.timeoutMs;
  let samples = 0;
  while (performance.now() < end) {
    const leaders = candidates.filter((c) => c.elector.isLeader()).map((c) => c.elector.identity);
    samples++;
    assert.ok(leaders.length <= 1, `two leaders at once: ${leaders.join(', ')}`);
    if (o.until?.() === true) return { at: performance.now(), samples };
    await delay(o.everyMs ?? 20);
  }
  return { at: undefined, samples };
}

async function readLease(name: string): Promise<Lease> {
  return api.get<Lease>(Resources.leases, name, ns);
}

describe('leader election on a real Lease', () => {
  test('two candidates never both lead, before and after the leader is killed (short timings)', async (t) => {
    const timings = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };
    const a = candidate('exclusive', 'pod-a', timings);
    const b = candidate('exclusive', 'pod-b', timings);
    const first = await sampleExclusive([a, b], {
      timeoutMs: 10_000,
      until: () => a.elector.isLeader() || b.elector.isLeader(),
    });
    assert.ok(first.at !== undefined, 'someone leads');
    await sampleExclusive([a, b], { timeoutMs: 6_000 });
    const [leader, standby] = a.elector.isLeader() ? [a, b] : [b, a];
    assert.equal((await readLease('exclusive')).spec?.holderIdentity, leader.elector.identity);

    leader.stop.abort(); // a kill: no release
    await leader.done;
    const takeover = await sampleExclusive([a, b], { timeoutMs: 15_000, until: () => standby.elector.isLeader() });
    assert.ok(takeover.at !== undefined, 'the standby took over');
    const lease = await readLease('exclusive');
    assert.equal(lease.spec?.holderIdentity, standby.elector.identity);
    assert.equal(lease.spec?.leaseTransitions, 1);
    // The intervals from the callbacks never overlap either.
    const leaderEnd = leader.stoppedAt[0] ?? Infinity;
    assert.ok((standby.startedAt[0] ?? 0) > leaderEnd, 'the standby started after the leader stopped');
    t.diagnostic(`exclusive: ${first.samples + takeover.samples} samples, no overlap`);
    standby.stop.abort();
    await standby.done;
  });

  test('after a kill the standby takes over within the lease duration plus one retry period (real defaults)', async (t) => {
    const a = candidate('failover', 'pod-a');
    await sampleExclusive([a], { timeoutMs: 10_000, until: () => a.elector.isLeader() });
    assert.equal(a.elector.isLeader(), true);
    const b = candidate('failover', 'pod-b');
    await sampleExclusive([a, b], { timeoutMs: 5_000 });
    const lastRenew = Date.parse((await readLease('failover')).spec?.renewTime ?? '');
    const killedAt = performance.now();
    const killedWall = Date.now();
    a.stop.abort();
    await a.done;
    const takeover = await sampleExclusive([a, b], { timeoutMs: 30_000, until: () => b.elector.isLeader() });
    assert.ok(takeover.at !== undefined, 'the standby took over');
    const failoverMs = takeover.at - killedAt;
    const sinceLastRenewMs = failoverMs + (killedWall - lastRenew);
    t.diagnostic(
      `failover after kill: ${(failoverMs / 1000).toFixed(2)} s (${(sinceLastRenewMs / 1000).toFixed(2)} s after the last renew)`,
    );
    assert.ok(sinceLastRenewMs >= 15_000 - 250, 'not before the lease had been stale for its duration');
    assert.ok(failoverMs <= 15_000 + 2_400 + 1_000, `within lease duration + retry period (+1 s slack)`);
    b.stop.abort();
    await b.done;
  });

  test('after release the standby takes over near-immediately (real defaults)', async (t) => {
    const a = candidate('handover', 'pod-a');
    await sampleExclusive([a], { timeoutMs: 10_000, until: () => a.elector.isLeader() });
    const b = candidate('handover', 'pod-b');
    await sampleExclusive([a, b], { timeoutMs: 3_000 });
    const releasedAt = performance.now();
    assert.equal(await a.elector.release(), true);
    assert.deepEqual(a.stopReasons, ['released']);
    const takeover = await sampleExclusive([a, b], { timeoutMs: 10_000, until: () => b.elector.isLeader() });
    assert.ok(takeover.at !== undefined, 'the standby took over');
    const handoverMs = takeover.at - releasedAt;
    t.diagnostic(`handover after release: ${(handoverMs / 1000).toFixed(2)} s`);
    assert.ok(handoverMs <= 2_400 + 500, 'within one jittered retry period');
    b.stop.abort();
    await b.done;
  });
});

describe('Event series', () => {
  test('an Event recorded 100 times is one Event with series.count 100, shown by kubectl describe as (x100 over …)', async (t) => {
    const cm = await api.create<ConfigMap>(
      Resources.configMaps,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'regarded', namespace: ns }, data: { a: 'b' } },
      { namespace: ns },
    );
    const recorder = new EventRecorder({
      api,
      reportingController: 'dataupload-operator.velero.io/controller',
      reportingInstance: 'runtime-ops-e2e',
      flushIntervalMs: 500,
    });
    const regarding = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: 'regarded',
      namespace: ns,
      uid: cm.metadata.uid ?? '',
    };
    for (let i = 0; i < 100; i++) {
      recorder.record({
        regarding,
        type: 'Warning',
        reason: 'BackupPodUnschedulable',
        action: 'Expose',
        note: `0/3 nodes are available: attempt ${i + 1}`,
      });
      await delay(20);
    }
    assert.equal(await recorder.flush(10_000), true);
    const writes = recorder.writes;
    recorder.close();
    const events = (await api.list<EventsV1Event>(Resources.events, { namespace: ns })).items.filter(
      (e) => e.regarding.uid === regarding.uid,
    );
    assert.equal(events.length, 1, 'one Event');
    assert.equal(events[0]?.series?.count, 100);
    assert.equal(events[0]?.note, '0/3 nodes are available: attempt 1');
    t.diagnostic(`100 occurrences cost ${writes} API writes`);
    assert.ok(writes <= 8, `${writes} writes`);

    const described = await kubectlOk(cluster, ['describe', 'configmap', 'regarded', '-n', ns]);
    const line = described.split('\n').find((l) => l.includes('BackupPodUnschedulable'));
    assert.ok(line, `kubectl describe lists the Event:\n${described}`);
    t.diagnostic(`kubectl describe: ${line.trim()}`);
    assert.match(
      line,
      /Warning\s+BackupPodUnschedulable\s+.*\(x100 over .+\)\s+dataupload-operator\.velero\.io\/controller\s+0\/3 nodes are available: attempt 1/,
    );
  });
});

describe('/metrics', () => {
  test('the health server exposes every promised metric name, fed by the real runtime pieces', async () => {
    const metrics = new Metrics();
    const observed = HttpKubeClient.fromKubeConfig(kubeConfig, { onRequest: metrics.restClientObserver('apiserver') });
    metrics.registerController('dataupload', 2);
    const queue = new WorkQueue({ name: 'dataupload', metrics: metrics.workQueueMetrics('dataupload') });
    const elector = new LeaderElector({
      api: observed,
      namespace: ns,
      name: 'metrics',
      identity: leaderIdentity('pod-m'),
      callbacks: {
        onStartedLeading: () => metrics.setLeaderStatus('metrics', true),
        onStoppedLeading: () => metrics.setLeaderStatus('metrics', false),
      },
    });
    const stop = new AbortController();
    const running = elector.run(stop.signal);
    const server = new HealthServer({ metricsAddress: '127.0.0.1:0', probeAddress: '127.0.0.1:0', metrics });
    server.addLivenessCheck('leader-election', () => elector.isHealthy());
    const bound = await server.start();
    try {
      await sampleExclusive([], { timeoutMs: 10_000, until: () => elector.isLeader() });
      const body = await (await fetch(`http://127.0.0.1:${bound.metrics?.port}/metrics`)).text();
      const missing = EXPECTED_METRIC_NAMES.filter((name) => !new RegExp(`^# TYPE ${name} `, 'm').test(body));
      assert.deepEqual(missing, []);
      assert.match(
        body,
        /^rest_client_requests_total\{code="(200|201)",method="(GET|POST|PUT)",host="apiserver"\} [1-9]/m,
      );
      assert.match(body, /^leader_election_master_status\{name="metrics"\} 1$/m);
      assert.match(body, /^workqueue_depth\{name="dataupload"\} 0$/m);
      const healthz = await fetch(`http://127.0.0.1:${bound.probes?.port}/healthz`);
      assert.equal(healthz.status, 200);
    } finally {
      await server.close();
      await queue.shutDownWithDrain(1_000);
      await elector.release();
      stop.abort();
      await running;
      observed.close();
    }
  });
});
