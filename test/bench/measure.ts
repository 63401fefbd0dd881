/**
 * The benchmark's measurements, as small functions that read `/proc` and the audit log, plus the pure parts
 * (percentiles, write counts, the report table) that the unit tests pin down.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------------------------
// /proc

let ticksPerSecond: number | undefined;

/** `sysconf(_SC_CLK_TCK)`: the unit of utime and stime in `/proc/<pid>/stat` (100 on every Linux we run on). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * utime + stime of a process in seconds (all its threads), from the text of `/proc/<pid>/stat`. The fields are
 * counted after the parenthesised command name, which may itself contain spaces and parentheses.
 */
export function cpuSecondsFromStat(stat: string, ticks: number): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc stat: ${stat}`);
  return (utime + stime) / ticks;
}

/** CPU seconds a live process has used so far; `undefined` when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), clockTicksPerSecond());
  } catch {
    return undefined;
  }
}

/** A `kB` field of `/proc/<pid>/status` (such as `VmHWM` or `VmRSS`) in bytes, from the file's text. */
export function statusFieldBytes(status: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** Peak resident set size (`VmHWM`) of a live process in bytes; `undefined` when it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    return statusFieldBytes(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM');
  } catch {
    return undefined;
  }
}

/** The three load averages of `/proc/loadavg`. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [a ?? NaN, b ?? NaN, c ?? NaN];
}

// ---------------------------------------------------------------------------------------------------------------
// Audit log

/** The fields of one kube-apiserver audit event (JSON line) that the benchmark reads. */
export interface AuditEvent {
  verb: string;
  stage?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string };
  responseStatus?: { code?: number };
}

/** Writes of one identity, split the way the report needs them. */
export interface WriteCounts {
  /** Every write the API server accepted except Events and Leases. */
  objects: number;
  /** Event creates and patches (core and events.k8s.io) the API server accepted. */
  events: number;
  /** Lease writes (leader election) the API server accepted. */
  leases: number;
  /** Writes the API server refused (any status ≥ 400: conflicts, 429s), counted apart from the above. */
  refused: number;
  /** `verb resource[/subresource]` → count, for every accepted write. */
  byVerbAndResource: Record<string, number>;
  /** `verb resource[/subresource] code` → count, for every refused write. */
  refusedByVerbAndResource: Record<string, number>;
}

/** The current size of a file (0 when it does not exist yet), to read only what is appended after it. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The complete lines appended to a file since `offset`. */
export function readLinesSince(path: string, offset: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return [];
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    const text = buf.toString('utf8');
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l !== '');
  } finally {
    closeSync(fd);
  }
}

/** Counts the writes of the users in `usernames` among audit log lines (only the ResponseComplete stage). */
export function countWrites(lines: readonly string[], usernames: ReadonlySet<string>): WriteCounts {
  const counts: WriteCounts = {
    objects: 0,
    events: 0,
    leases: 0,
    refused: 0,
    byVerbAndResource: {},
    refusedByVerbAndResource: {},
  };
  for (const line of lines) {
    let event: AuditEvent;
    try {
      event = JSON.parse(line) as AuditEvent;
    } catch {
      continue;
    }
    if (event.stage !== undefined && event.stage !== 'ResponseComplete') continue;
    if (!usernames.has(event.user?.username ?? '')) continue;
    const resource = event.objectRef?.resource ?? '?';
    const sub = event.objectRef?.subresource ? `/${event.objectRef.subresource}` : '';
    const key = `${event.verb} ${resource}${sub}`;
    const code = event.responseStatus?.code ?? 0;
    if (code >= 400) {
      counts.refused++;
      const refusedKey = `${key} ${code}`;
      counts.refusedByVerbAndResource[refusedKey] = (counts.refusedByVerbAndResource[refusedKey] ?? 0) + 1;
      continue;
    }
    counts.byVerbAndResource[key] = (counts.byVerbAndResource[key] ?? 0) + 1;
    if (resource === 'events') counts.events++;
    else if (resource === 'leases') counts.leases++;
    else counts.objects++;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics and the report

/** The nearest-rank percentile `p` (0–100) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** One process of a system: its CPU during the burst and its peak RSS. */
export interface ProcessUsage {
  name: string;
  pid: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

/** What one system achieved in one run. */
export interface SystemResult {
  system: string;
  count: number;
  /** DataUploads that reached Prepared. */
  prepared: number;
  /** DataUploads that ended Failed or Canceled instead. */
  failed: number;
  /** First create call → last Prepared seen by the watch. */
  makespanSeconds: number;
  perSecond: number;
  /** Create call → first Prepared event, per DataUpload. */
  p50Seconds: number;
  p99Seconds: number;
  /** From the audit log; undefined when the cluster has none. */
  writes?: WriteCounts & { perDataUpload: number; eventsPerDataUpload: number };
  /** Summed over the system's processes, from just before the burst to the last Prepared. */
  cpuSeconds: number;
  cpuSecondsPerDataUpload: number;
  /** Summed VmHWM of the system's processes. */
  peakRssBytes: number;
  processes: ProcessUsage[];
  /** CPU seconds of each control-plane component during the burst (apiserver, etcd, kwok, ...). */
  controlPlaneCpuSeconds: Record<string, number>;
  /** CPU seconds the benchmark process itself used during the burst (creates and the watch). */
  benchCpuSeconds: number;
  loadAverageStart: [number, number, number];
  loadAverageEnd: [number, number, number];
}

const MiB = 1024 * 1024;

function fixed(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${(a / b).toFixed(2)}×`;
}

function padTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
  );
}

/** The per-run table (systems as rows), then the ratios ours/floor and velero/ours. */
export function formatReport(results: readonly SystemResult[]): string {
  const header = [
    'system',
    'N',
    'prepared',
    'makespan s',
    'DU/s',
    'p50 s',
    'p99 s',
    'writes/DU',
    'events/DU',
    'refused',
    'CPU s',
    'CPU ms/DU',
    'peak RSS MiB',
  ];
  const rows = results.map((r) => [
    r.system,
    String(r.count),
    r.failed > 0 ? `${r.prepared} (${r.failed} failed)` : String(r.prepared),
    fixed(r.makespanSeconds, 2),
    fixed(r.perSecond, 1),
    fixed(r.p50Seconds, 2),
    fixed(r.p99Seconds, 2),
    fixed(r.writes?.perDataUpload, 2),
    fixed(r.writes?.eventsPerDataUpload, 2),
    r.writes ? String(r.writes.refused) : '-',
    fixed(r.cpuSeconds, 2),
    fixed(r.cpuSecondsPerDataUpload * 1000, 2),
    fixed(r.peakRssBytes / MiB, 0),
  ]);
  const lines = padTable([header, ...rows]);
  const by = (name: string) => results.find((r) => r.system === name);
  const ours = by('ours');
  const floor = by('floor');
  const velero = by('velero');
  const compare = (label: string, a: SystemResult | undefined, b: SystemResult | undefined) => {
    if (!a || !b) return;
    lines.push(
      `${label}: makespan ${ratio(a.makespanSeconds, b.makespanSeconds)}, ` +
        `p50 ${ratio(a.p50Seconds, b.p50Seconds)}, p99 ${ratio(a.p99Seconds, b.p99Seconds)}, ` +
        `writes/DU ${ratio(a.writes?.perDataUpload, b.writes?.perDataUpload)}, ` +
        `CPU/DU ${ratio(a.cpuSecondsPerDataUpload, b.cpuSecondsPerDataUpload)}, ` +
        `peak RSS ${ratio(a.peakRssBytes, b.peakRssBytes)}`,
    );
  };
  compare('ours/floor', ours, floor);
  compare('velero/ours', velero, ours);
  if (ours) lines.push(`ours: p50 New→Prepared / makespan = ${ratio(ours.p50Seconds, ours.makespanSeconds)}`);
  for (const r of results) {
    const la = (l: [number, number, number]) => l.map((x) => x.toFixed(2)).join(' ');
    const list = (counts: Record<string, number>) =>
      Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    const writes = r.writes ? list(r.writes.byVerbAndResource) : 'no audit log';
    const cp = Object.entries(r.controlPlaneCpuSeconds)
      .sort(([, a], [, b]) => b - a)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ');
    lines.push(`${r.system}: load average ${la(r.loadAverageStart)} → ${la(r.loadAverageEnd)}`);
    lines.push(`  writes: ${writes}`);
    if (r.writes && r.writes.refused > 0) lines.push(`  refused: ${list(r.writes.refusedByVerbAndResource)}`);
    if (r.processes.length > 1) {
      const procs = r.processes
        .map((p) => `${p.name} ${p.cpuSeconds.toFixed(1)} s ${(p.peakRssBytes / MiB).toFixed(0)} MiB`)
        .join(', ');
      lines.push(`  processes: ${procs}`);
    }
    lines.push(`  CPU s during the burst: ${cp}; bench client ${r.benchCpuSeconds.toFixed(1)}`);
  }
  return lines.join('\n');
}
