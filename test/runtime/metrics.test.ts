import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Metrics, WORKQUEUE_DURATION_BUCKETS } from '../../src/runtime/metrics.js';
import { WorkQueue } from '../../src/runtime/work-queue.js';
import { deferred, flush, ManualClock } from './manual-clock.js';
import { EXPECTED_METRIC_NAMES } from './metric-names.js';

/** The value of one sample line, e.g. `sample(text, 'workqueue_depth{name="du"}')`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  test('every promised metric name is exposed, including the process collectors', async () => {
    const text = await new Metrics().render();
    for (const name of EXPECTED_METRIC_NAMES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  });

  test('a registered controller starts with zeroed counters for every result', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.registerController('dataupload', 4);
    const text = await m.render();
    for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
      assert.equal(sample(text, `controller_runtime_reconcile_total{controller="dataupload",result="${result}"}`), 0);
    }
    assert.equal(sample(text, 'controller_runtime_max_concurrent_reconciles{controller="dataupload"}'), 4);
  });

  test('an error reconcile counts in the total, the errors and the time histogram', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.observeReconcile('dataupload', 'error', 0.2);
    m.observeReconcile('dataupload', 'success', 0.01);
    m.addActiveWorkers('dataupload', 1);
    const text = await m.render();
    assert.equal(sample(text, 'controller_runtime_reconcile_total{controller="dataupload",result="error"}'), 1);
    assert.equal(sample(text, 'controller_runtime_reconcile_errors_total{controller="dataupload"}'), 1);
    assert.equal(sample(text, 'controller_runtime_reconcile_time_seconds_count{controller="dataupload"}'), 2);
    assert.equal(
      sample(text, 'controller_runtime_reconcile_time_seconds_bucket{le="0.25",controller="dataupload"}'),
      2,
    );
    assert.equal(sample(text, 'controller_runtime_active_workers{controller="dataupload"}'), 1);
  });

  test('two instances keep separate registries', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.phaseTransition('Accepted');
    assert.equal(sample(await a.render(), 'dataupload_phase_transitions_total{phase="Accepted"}'), 1);
    assert.equal(sample(await b.render(), 'dataupload_phase_transitions_total{phase="Accepted"}'), undefined);
  });

  test('workqueue buckets are client-go’s ten nanoseconds to a thousand seconds', () => {
    assert.equal(WORKQUEUE_DURATION_BUCKETS.length, 12);
    assert.equal(WORKQUEUE_DURATION_BUCKETS[0], 1e-8);
    assert.equal(WORKQUEUE_DURATION_BUCKETS[11], 1000);
  });

  test('a real work queue feeds the workqueue metrics through the hooks, including in-flight work', async () => {
    const clock = new ManualClock(1_000_000);
    const m = new Metrics({ defaultMetrics: false, now: () => clock.now() });
    const queue = new WorkQueue({ name: 'dataupload', clock, metrics: m.workQueueMetrics('dataupload') });
    const gate = deferred();
    let calls = 0;
    const running = queue.run({
      workers: 1,
      handler: async (key) => {
        calls++;
        if (key === 'velero/slow') await gate.promise;
        if (key === 'velero/fails' && calls < 3) throw new Error('transient');
      },
    });
    queue.add('velero/slow');
    queue.add('velero/fails');
    queue.add('velero/fails'); // deduplicated: not an add
    await flush();
    await clock.advance(3_000);
    let text = await m.render();
    assert.equal(sample(text, 'workqueue_adds_total{name="dataupload"}'), 2);
    assert.equal(sample(text, 'workqueue_depth{name="dataupload"}'), 1);
    assert.equal(sample(text, 'workqueue_unfinished_work_seconds{name="dataupload"}'), 3);
    assert.equal(sample(text, 'workqueue_longest_running_processor_seconds{name="dataupload"}'), 3);
    gate.resolve();
    await flush();
    await clock.advance(1_000);
    text = await m.render();
    assert.equal(sample(text, 'workqueue_work_duration_seconds_count{name="dataupload"}'), 3);
    assert.equal(sample(text, 'workqueue_retries_total{name="dataupload"}'), 1);
    assert.equal(sample(text, 'workqueue_depth{name="dataupload"}'), 0);
    assert.equal(sample(text, 'workqueue_unfinished_work_seconds{name="dataupload"}'), 0);
    assert.equal(sample(text, 'workqueue_longest_running_processor_seconds{name="dataupload"}'), 0);
    await queue.shutDownWithDrain(1_000);
    await running;
  });

  test('rest client requests are counted by code, HTTP method and host; a failed request is <error>', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const observe = m.restClientObserver('127.0.0.1:6443');
    observe({ verb: 'patch', resource: 'events.events.k8s.io', code: 200, durationMs: 3 });
    observe({ verb: 'list', resource: 'pods', code: 0, durationMs: 3 });
    const text = await m.render();
    assert.equal(sample(text, 'rest_client_requests_total{code="200",method="PATCH",host="127.0.0.1:6443"}'), 1);
    assert.equal(sample(text, 'rest_client_requests_total{code="<error>",method="GET",host="127.0.0.1:6443"}'), 1);
  });

  test('domain metrics: leadership, writes, prepare duration and recorded events', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setLeaderStatus('dataupload-operator', true);
    m.apiWrite('pods', 'create');
    m.observeWritesPerDataUpload(6);
    m.observePrepareDuration(12);
    const hooks = m.eventRecorderHooks();
    hooks.recorded?.('Warning', 'BackupPodUnschedulable');
    hooks.apiWrite?.('patch');
    const text = await m.render();
    assert.equal(sample(text, 'leader_election_master_status{name="dataupload-operator"}'), 1);
    assert.equal(sample(text, 'dataupload_api_writes_total{resource="pods",verb="create"}'), 1);
    assert.equal(sample(text, 'dataupload_api_writes_total{resource="events",verb="patch"}'), 1);
    assert.equal(sample(text, 'dataupload_api_writes_per_dataupload_bucket{le="6"}'), 1);
    assert.equal(sample(text, 'dataupload_prepare_duration_seconds_sum'), 12);
    assert.equal(sample(text, 'dataupload_events_recorded_total{type="Warning",reason="BackupPodUnschedulable"}'), 1);
  });
});
