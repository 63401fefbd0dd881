/**
 * The operator's HTTP endpoints: `/metrics` on the metrics address and `/healthz` + `/readyz` on the probe
 * address (one server when both addresses are equal). Addresses follow controller-runtime's flags: `:8080` (all
 * interfaces), `127.0.0.1:8081`, `[::1]:8081`, or `0` to disable.
 *
 * Liveness answers "is this process still working": the event loop is not stalled, and every registered liveness
 * check (e.g. the leader elector's renew freshness) passes. Readiness answers "may it receive traffic": the
 * registered readiness checks (caches synced, config loaded) pass; failing check names are listed in the 503.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import { systemClock, type Clock, type TimerHandle } from './timing.js';

/** A listen address, or disabled. */
export type BindAddress = { kind: 'listen'; host: string; port: number } | { kind: 'disabled' };

/** The outcome of parsing a bind-address flag. */
export type BindAddressResult = { ok: true; address: BindAddress } | { ok: false; message: string };

/** Parses `:8080`, `host:port`, `[v6]:port`, or `0` (disabled). An empty host means all interfaces. */
export function parseBindAddress(value: string): BindAddressResult {
  const trimmed = value.trim();
  if (trimmed === '0') return { ok: true, address: { kind: 'disabled' } };
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(trimmed);
  if (m === null) {
    return { ok: false, message: `bind address ${JSON.stringify(value)} must be host:port, :port or 0 (disabled)` };
  }
  const port = Number(m[3]);
  if (port > 65535) return { ok: false, message: `bind address ${JSON.stringify(value)}: port ${port} is above 65535` };
  return { ok: true, address: { kind: 'listen', host: m[1] ?? m[2] ?? '', port } };
}

/** A health or readiness check result. */
export interface CheckResult {
  ok: boolean;
  /** Why it fails (shown in the 503 body). */
  message?: string;
}

/** A named, synchronous check; a thrown error counts as a failure carrying its message. */
export type HealthCheck = () => CheckResult | boolean;

/** The evaluation of a set of checks. */
export interface CheckReport {
  ok: boolean;
  failures: { name: string; message: string }[];
  passed: string[];
}

/** Runs checks in registration order (pure apart from the checks themselves). */
export function runChecks(checks: ReadonlyMap<string, HealthCheck>): CheckReport {
  const failures: CheckReport['failures'] = [];
  const passed: string[] = [];
  for (const [name, check] of checks) {
    let result: CheckResult;
    try {
      const raw = check();
      result = typeof raw === 'boolean' ? { ok: raw } : raw;
    } catch (err) {
      result = { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    if (result.ok) passed.push(name);
    else failures.push({ name, message: result.message ?? 'failed' });
  }
  return { ok: failures.length === 0, failures, passed };
}

/** controller-runtime's probe body: `ok`, or one `[-]name failed: reason` line per failure (`[+]` when verbose). */
export function formatCheckReport(endpoint: string, report: CheckReport, verbose: boolean): string {
  if (report.ok && !verbose) return 'ok\n';
  const lines = [
    ...(verbose ? report.passed.map((name) => `[+]${name} ok`) : []),
    ...report.failures.map((f) => `[-]${f.name} failed: ${f.message}`),
  ];
  lines.push(report.ok ? `${endpoint} check passed` : `${endpoint} check failed`);
  return `${lines.join('\n')}\n`;
}

/** Options of {@link EventLoopMonitor}. */
export interface EventLoopMonitorOptions {
  clock?: Clock;
  /** How often the timer ticks. 500 ms. */
  intervalMs?: number;
  /** Lag above which the loop counts as stalled. 5 s. */
  thresholdMs?: number;
}

/**
 * Measures event-loop lag with a timer: each tick notes how late it fired. The check also fails when the next
 * tick is overdue, so a probe served right after a long stall (before the timer phase runs) still sees it.
 */
export class EventLoopMonitor {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #thresholdMs: number;
  #timer: TimerHandle | undefined;
  #expectedAt = 0;
  #lastLagMs = 0;

  constructor(options: EventLoopMonitorOptions = {}) {
    this.#clock = options.clock ?? systemClock();
    this.#intervalMs = options.intervalMs ?? 500;
    this.#thresholdMs = options.thresholdMs ?? 5_000;
  }

  /** Starts ticking (idempotent). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#arm();
  }

  /** Stops ticking. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** Lag of the last tick, or how overdue the next one is, whichever is larger. */
  lagMs(): number {
    if (this.#timer === undefined) return 0;
    return Math.max(this.#lastLagMs, this.#clock.now() - this.#expectedAt);
  }

  /** The liveness check. */
  check(): CheckResult {
    const lag = this.lagMs();
    return lag > this.#thresholdMs
      ? { ok: false, message: `event loop lag ${Math.round(lag)}ms exceeds ${this.#thresholdMs}ms` }
      : { ok: true };
  }

  #arm(): void {
    this.#expectedAt = this.#clock.now() + this.#intervalMs;
    this.#timer = this.#clock.setTimer(
      () => {
        this.#lastLagMs = Math.max(0, this.#clock.now() - this.#expectedAt);
        this.#arm();
      },
      this.#intervalMs,
      { unref: true },
    );
  }
}

/** What `/metrics` serves; a {@link Metrics} instance fits. */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

/** Options of {@link HealthServer}. */
export interface HealthServerOptions {
  /** `:8080` by default in production; `0` disables `/metrics`. */
  metricsAddress: string;
  /** `:8081` by default in production; `0` disables the probes. */
  probeAddress: string;
  metrics?: MetricsSource;
  loopMonitor?: EventLoopMonitor;
  logger?: Logger;
}

/** Where the servers listen after {@link HealthServer.start}; `undefined` when disabled. */
export interface BoundAddresses {
  metrics?: { host: string; port: number };
  probes?: { host: string; port: number };
}

type Role = 'metrics' | 'probes';

/** Serves `/metrics`, `/healthz` and `/readyz`. */
export class HealthServer {
  readonly #options: HealthServerOptions;
  readonly #liveness = new Map<string, HealthCheck>();
  readonly #readiness = new Map<string, HealthCheck>();
  readonly #loop: EventLoopMonitor;
  readonly #servers: http.Server[] = [];

  constructor(options: HealthServerOptions) {
    this.#options = options;
    this.#loop = options.loopMonitor ?? new EventLoopMonitor();
    this.#liveness.set('event-loop', () => this.#loop.check());
  }

  /** Adds a `/healthz` check (e.g. `leader-election` → `elector.isHealthy()`). */
  addLivenessCheck(name: string, check: HealthCheck): void {
    this.#liveness.set(name, check);
  }

  /** Adds a `/readyz` check (e.g. `caches-synced`, `config-loaded`). */
  addReadinessCheck(name: string, check: HealthCheck): void {
    this.#readiness.set(name, check);
  }

  /** The current `/healthz` verdict. */
  liveness(): CheckReport {
    return runChecks(this.#liveness);
  }

  /** The current `/readyz` verdict. */
  readiness(): CheckReport {
    return runChecks(this.#readiness);
  }

  /** Parses both addresses and listens; rejects with a message naming the bad flag or the bind failure. */
  async start(): Promise<BoundAddresses> {
    const metrics = parseBindAddress(this.#options.metricsAddress);
    if (!metrics.ok) throw new Error(`metrics address: ${metrics.message}`);
    const probes = parseBindAddress(this.#options.probeAddress);
    if (!probes.ok) throw new Error(`probe address: ${probes.message}`);
    this.#loop.start();
    const bound: BoundAddresses = {};
    const shared =
      metrics.address.kind === 'listen' &&
      probes.address.kind === 'listen' &&
      metrics.address.host === probes.address.host &&
      metrics.address.port === probes.address.port &&
      metrics.address.port !== 0;
    if (shared && metrics.address.kind === 'listen') {
      const at = await this.#listen(metrics.address, new Set<Role>(['metrics', 'probes']));
      return { metrics: at, probes: at };
    }
    if (metrics.address.kind === 'listen') bound.metrics = await this.#listen(metrics.address, new Set(['metrics']));
    if (probes.address.kind === 'listen') bound.probes = await this.#listen(probes.address, new Set(['probes']));
    return bound;
  }

  /** Closes the servers, cutting idle keep-alive connections, and stops the loop monitor. */
  async close(): Promise<void> {
    this.#loop.stop();
    const servers = this.#servers.splice(0);
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }

  async #listen(
    address: { host: string; port: number },
    roles: ReadonlySet<Role>,
  ): Promise<{ host: string; port: number }> {
    const server = http.createServer((req, res) => {
      this.#handle(req, res, roles).catch((err: unknown) => {
        this.#options.logger?.error({ err }, 'health endpoint failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    // Probes and scrapes are small: do not let a slow client hold a socket.
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const host = address.host === '' ? undefined : address.host;
      server.listen(address.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.push(server);
    const info = server.address() as AddressInfo;
    this.#options.logger?.info({ address: `${info.address}:${info.port}`, roles: [...roles] }, 'serving');
    return { host: info.address, port: info.port };
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse, roles: ReadonlySet<Role>): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    const verbose = url.searchParams.has('verbose');
    if (roles.has('probes') && (url.pathname === '/healthz' || url.pathname === '/livez')) {
      const report = this.liveness();
      send(res, report.ok ? 200 : 503, 'text/plain; charset=utf-8', formatCheckReport('healthz', report, verbose));
      return;
    }
    if (roles.has('probes') && url.pathname === '/readyz') {
      const report = this.readiness();
      send(res, report.ok ? 200 : 503, 'text/plain; charset=utf-8', formatCheckReport('readyz', report, verbose));
      return;
    }
    const source = this.#options.metrics;
    if (roles.has('metrics') && url.pathname === '/metrics' && source !== undefined) {
      send(res, 200, source.contentType, await source.render());
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
