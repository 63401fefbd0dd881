import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EventLoopMonitor,
  formatCheckReport,
  HealthServer,
  parseBindAddress,
  runChecks,
  type HealthCheck,
} from '../../src/runtime/health.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { ManualClock } from './manual-clock.js';

describe('parseBindAddress', () => {
  const cases: [string, ReturnType<typeof parseBindAddress>][] = [
    ['0', { ok: true, address: { kind: 'disabled' } }],
    [':8080', { ok: true, address: { kind: 'listen', host: '', port: 8080 } }],
    ['127.0.0.1:8081', { ok: true, address: { kind: 'listen', host: '127.0.0.1', port: 8081 } }],
    ['[::1]:9000', { ok: true, address: { kind: 'listen', host: '::1', port: 9000 } }],
  ];
  for (const [value, expected] of cases) {
    test(`${JSON.stringify(value)} parses`, () => assert.deepEqual(parseBindAddress(value), expected));
  }

  test('a bare port other than 0 is refused with a hint', () => {
    const r = parseBindAddress('8080');
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.message, /must be host:port, :port or 0/);
  });

  test('a port above 65535 is refused', () => {
    const r = parseBindAddress(':70000');
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.message, /above 65535/);
  });
});

describe('checks', () => {
  test('failing checks are reported by name with their reason; a throwing check fails', () => {
    const checks = new Map<string, HealthCheck>([
      ['config-loaded', () => true],
      ['caches-synced', () => ({ ok: false, message: 'datauploads not synced' })],
      [
        'broken',
        () => {
          throw new Error('boom');
        },
      ],
    ]);
    const report = runChecks(checks);
    assert.equal(report.ok, false);
    assert.deepEqual(report.passed, ['config-loaded']);
    assert.equal(
      formatCheckReport('readyz', report, false),
      '[-]caches-synced failed: datauploads not synced\n[-]broken failed: boom\nreadyz check failed\n',
    );
    assert.equal(formatCheckReport('healthz', runChecks(new Map([['a', () => true]])), false), 'ok\n');
  });

  test('the loop monitor fails when ticks come later than the threshold', async () => {
    const manual = new ManualClock(0);
    let stall = 0;
    const clock = { now: () => manual.now() + stall, setTimer: manual.setTimer.bind(manual) };
    const monitor = new EventLoopMonitor({ clock, intervalMs: 500, thresholdMs: 5_000 });
    monitor.start();
    await manual.advance(2_000);
    assert.deepEqual(monitor.check(), { ok: true });
    stall = 6_000; // the loop was blocked: wall time moved, no timer ran; the next tick is 5.5 s overdue
    const stalled = monitor.check();
    assert.equal(stalled.ok, false);
    assert.match(stalled.message ?? '', /event loop lag 5500ms exceeds 5000ms/);
    monitor.stop();
    assert.equal(manual.pendingTimers(), 0);
  });
});

async function get(port: number, path: string, method = 'GET') {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('HealthServer', () => {
  test('serves /metrics on the metrics port and the probes on the probe port', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.registerController('dataupload', 1);
    const server = new HealthServer({ metricsAddress: '127.0.0.1:0', probeAddress: '127.0.0.1:0', metrics });
    const bound = await server.start();
    try {
      const m = bound.metrics?.port ?? 0;
      const p = bound.probes?.port ?? 0;
      assert.notEqual(m, p);
      const scraped = await get(m, '/metrics');
      assert.equal(scraped.status, 200);
      assert.match(scraped.type ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(scraped.body, /controller_runtime_max_concurrent_reconciles\{controller="dataupload"\} 1/);
      assert.equal((await get(m, '/healthz')).status, 404, 'probes are not on the metrics port');
      assert.equal((await get(p, '/metrics')).status, 404, 'metrics are not on the probe port');
      assert.deepEqual(await get(p, '/healthz'), { status: 200, type: 'text/plain; charset=utf-8', body: 'ok\n' });
      assert.equal((await get(p, '/healthz', 'POST')).status, 405);
    } finally {
      await server.close();
    }
  });

  test('/readyz is 503 naming the failing checks until they pass', async () => {
    const server = new HealthServer({ metricsAddress: '0', probeAddress: '127.0.0.1:0' });
    let synced = false;
    server.addReadinessCheck('config-loaded', () => true);
    server.addReadinessCheck('caches-synced', () => (synced ? true : { ok: false, message: '1 of 3 caches synced' }));
    const bound = await server.start();
    try {
      assert.equal(bound.metrics, undefined, 'metrics disabled by 0');
      const port = bound.probes?.port ?? 0;
      const before = await get(port, '/readyz');
      assert.equal(before.status, 503);
      assert.equal(before.body, '[-]caches-synced failed: 1 of 3 caches synced\nreadyz check failed\n');
      synced = true;
      assert.equal((await get(port, '/readyz')).status, 200);
      assert.equal(
        (await get(port, '/readyz?verbose')).body,
        '[+]config-loaded ok\n[+]caches-synced ok\nreadyz check passed\n',
      );
    } finally {
      await server.close();
    }
  });

  test('/healthz turns 503 when a liveness check fails, e.g. a stale lease', async () => {
    const server = new HealthServer({ metricsAddress: '0', probeAddress: '127.0.0.1:0' });
    let leaseFresh = true;
    server.addLivenessCheck('leader-election', () =>
      leaseFresh ? true : { ok: false, message: 'lease not renewed for 16s' },
    );
    const bound = await server.start();
    try {
      const port = bound.probes?.port ?? 0;
      assert.equal((await get(port, '/healthz')).status, 200);
      leaseFresh = false;
      const res = await get(port, '/healthz');
      assert.equal(res.status, 503);
      assert.match(res.body, /\[-\]leader-election failed: lease not renewed for 16s/);
    } finally {
      await server.close();
    }
  });

  test('close stops listening', async () => {
    const server = new HealthServer({ metricsAddress: '0', probeAddress: '127.0.0.1:0' });
    const port = (await server.start()).probes?.port ?? 0;
    await get(port, '/healthz'); // leaves a keep-alive connection behind
    await server.close();
    await assert.rejects(get(port, '/healthz'));
  });

  test('a bad address is refused at start, naming the flag', async () => {
    const server = new HealthServer({ metricsAddress: 'localhost', probeAddress: '0' });
    await assert.rejects(server.start(), /^Error: metrics address: bind address "localhost" must be/);
  });
});
