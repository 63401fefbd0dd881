import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '../../src/api/kube.js';
import { Resources, type KubeApi } from '../../src/runtime/kube-api.js';
import {
  decideLease,
  electionTimings,
  leaderIdentity,
  LeaderElector,
  observeLease,
  releasedRecord,
  type Lease,
  type LeaseObservation,
  type LeaseRecord,
  type StopReason,
} from '../../src/runtime/leader-election.js';
import { formatMicroTime, type Clock } from '../../src/runtime/timing.js';
import { apiError, InMemoryKube } from './in-memory-kube.js';
import { ManualClock } from './manual-clock.js';

const NS = 'velero';
const LEASE = 'dataupload-operator';
const T0 = Date.parse('2026-11-23T21:50:00Z');

function record(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    holderIdentity: 'other_1',
    leaseDurationSeconds: 15,
    acquireTime: formatMicroTime(T0 - 60_000),
    renewTime: formatMicroTime(T0 - 1_000),
    leaseTransitions: 3,
    ...overrides,
  };
}

function observed(rec: LeaseRecord, observedAt: number): LeaseObservation {
  return { record: rec, observedAt };
}

describe('decideLease', () => {
  test('a missing Lease is created with us as holder, zero transitions and MicroTime stamps', () => {
    const d = decideLease({ observation: undefined, identity: 'me_1', now: T0 + 0.5, leaseDurationSeconds: 15 });
    assert.equal(d.kind, 'create');
    assert.equal(d.reason, 'LeaseMissing');
    if (d.kind !== 'create') return;
    assert.deepEqual(d.record, {
      holderIdentity: 'me_1',
      leaseDurationSeconds: 15,
      acquireTime: '2026-11-23T21:50:00.000500Z',
      renewTime: '2026-11-23T21:50:00.000500Z',
      leaseTransitions: 0,
    });
  });

  test('our own Lease is renewed, keeping acquireTime and the transition count', () => {
    const mine = record({ holderIdentity: 'me_1' });
    const d = decideLease({
      observation: observed(mine, T0),
      identity: 'me_1',
      now: T0 + 2000,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'update');
    if (d.kind !== 'update') return;
    assert.equal(d.reason, 'Renew');
    assert.equal(d.record.acquireTime, mine.acquireTime);
    assert.equal(d.record.leaseTransitions, 3);
    assert.equal(d.record.renewTime, formatMicroTime(T0 + 2000));
  });

  test('a Lease held by another candidate is left alone until it has been unchanged for its duration', () => {
    const d = decideLease({
      observation: observed(record(), T0),
      identity: 'me_1',
      now: T0 + 14_999,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'wait');
    if (d.kind !== 'wait') return;
    assert.equal(d.holder, 'other_1');
    assert.equal(d.expiresAt, T0 + 15_000);
  });

  test('an expired Lease is taken over with one more transition and a fresh acquireTime', () => {
    const d = decideLease({
      observation: observed(record(), T0),
      identity: 'me_1',
      now: T0 + 15_000,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'update');
    if (d.kind !== 'update') return;
    assert.equal(d.reason, 'Expired');
    assert.equal(d.record.holderIdentity, 'me_1');
    assert.equal(d.record.leaseTransitions, 4);
    assert.equal(d.record.acquireTime, formatMicroTime(T0 + 15_000));
  });

  test('expiry counts on the local clock: a renewTime far in the future does not keep a dead holder alive', () => {
    const skewed = record({ renewTime: formatMicroTime(T0 + 3_600_000) });
    const d = decideLease({
      observation: observed(skewed, T0),
      identity: 'me_1',
      now: T0 + 15_000,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'update');
  });

  test('expiry counts on the local clock: a renewTime far in the past does not let us steal a live Lease', () => {
    const skewed = record({ renewTime: formatMicroTime(T0 - 3_600_000) });
    const d = decideLease({
      observation: observed(skewed, T0),
      identity: 'me_1',
      now: T0 + 1_000,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'wait');
  });

  test('the holder’s own leaseDurationSeconds decides its expiry, not ours', () => {
    const long = record({ leaseDurationSeconds: 60 });
    const d = decideLease({
      observation: observed(long, T0),
      identity: 'me_1',
      now: T0 + 30_000,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'wait');
  });

  test('a released Lease (no holder) is taken at once', () => {
    const d = decideLease({
      observation: observed(releasedRecord(record(), T0), T0),
      identity: 'me_1',
      now: T0,
      leaseDurationSeconds: 15,
    });
    assert.equal(d.kind, 'update');
    if (d.kind !== 'update') return;
    assert.equal(d.reason, 'Vacant');
    assert.equal(d.record.leaseTransitions, 4);
  });
});

describe('observeLease', () => {
  const lease = (rec: LeaseRecord): Lease => ({ metadata: { name: LEASE }, spec: rec });

  test('an unchanged record keeps its first observation time, so it ages', () => {
    const first = observeLease(undefined, lease(record()), T0);
    const again = observeLease(first, lease(record()), T0 + 10_000);
    assert.equal(again.observedAt, T0);
  });

  test('a renewed record restarts the observation time', () => {
    const first = observeLease(undefined, lease(record()), T0);
    const renewed = observeLease(first, lease(record({ renewTime: formatMicroTime(T0 + 2_000) })), T0 + 10_000);
    assert.equal(renewed.observedAt, T0 + 10_000);
  });
});

describe('releasedRecord and timings', () => {
  test('a released record has no holder and a one-second duration, and keeps the transition count', () => {
    const r = releasedRecord(record(), T0);
    assert.equal(r.holderIdentity, '');
    assert.equal(r.leaseDurationSeconds, 1);
    assert.equal(r.leaseTransitions, 3);
  });

  test('the defaults are client-go’s 15 s / 10 s / 2 s', () => {
    const t = electionTimings({});
    assert.equal(t.leaseDurationSeconds, 15);
    assert.equal(t.renewDeadlineMs, 10_000);
    assert.equal(t.retryPeriodMs, 2_000);
  });

  test('a renew deadline as long as the lease duration is refused, naming both values', () => {
    assert.throws(
      () => electionTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
      /leaseDuration \(10000ms\) must exceed renewDeadline \(10000ms\)/,
    );
  });

  test('an identity is the pod name, an underscore and a unique suffix', () => {
    assert.equal(leaderIdentity('operator-7d9f-abcde', 'x1'), 'operator-7d9f-abcde_x1');
    const a = leaderIdentity('pod');
    const b = leaderIdentity('pod');
    assert.match(a, /^pod_[0-9a-f-]{36}$/);
    assert.notEqual(a, b);
  });
});

/** A per-candidate view of the shared fake that can fail or hang this candidate's calls only. */
class CandidateApi implements KubeApi {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  constructor(readonly inner: InMemoryKube) {}
  #gate(): Promise<void> {
    if (this.mode === 'fail') return Promise.reject(apiError(503, 'ServiceUnavailable'));
    if (this.mode === 'hang') return new Promise<void>(() => undefined);
    return Promise.resolve();
  }
  async get<T extends KubeObject>(...a: Parameters<KubeApi['get']>): Promise<T> {
    await this.#gate();
    return this.inner.get<T>(...a);
  }
  async list<T extends KubeObject>(...a: Parameters<KubeApi['list']>) {
    await this.#gate();
    return this.inner.list<T>(...a);
  }
  async create<T extends KubeObject>(
    r: Parameters<KubeApi['create']>[0],
    body: T,
    o?: Parameters<KubeApi['create']>[2],
  ) {
    await this.#gate();
    return this.inner.create<T>(r, body, o);
  }
  async replace<T extends KubeObject>(
    r: Parameters<KubeApi['replace']>[0],
    body: T,
    o?: Parameters<KubeApi['replace']>[2],
  ) {
    await this.#gate();
    return this.inner.replace<T>(r, body, o);
  }
  async patch<T extends KubeObject>(...a: Parameters<KubeApi['patch']>): Promise<T> {
    await this.#gate();
    return this.inner.patch<T>(...a);
  }
  async delete(...a: Parameters<KubeApi['delete']>) {
    await this.#gate();
    return this.inner.delete(...a);
  }
  watch(): Promise<void> {
    return this.inner.watch();
  }
}

interface Candidate {
  elector: LeaderElector;
  api: CandidateApi;
  stop: AbortController;
  done: Promise<void>;
  log: string[];
  leadingSignal: AbortSignal | undefined;
  stopped: StopReason | undefined;
}

function candidate(store: InMemoryKube, clock: Clock, id: string): Candidate {
  const api = new CandidateApi(store);
  const stop = new AbortController();
  const c: Partial<Candidate> & { log: string[] } = { log: [], api, stop };
  const elector = new LeaderElector({
    api,
    namespace: NS,
    name: LEASE,
    identity: id,
    clock,
    random: () => 0.5,
    callbacks: {
      onStartedLeading: (signal) => {
        c.leadingSignal = signal;
        c.log.push('started');
      },
      onStoppedLeading: (reason) => {
        c.stopped = reason;
        c.log.push(`stopped:${reason}`);
      },
      onNewLeader: (identity) => c.log.push(`leader:${identity}`),
    },
  });
  c.elector = elector;
  c.done = elector.run(stop.signal);
  return c as Candidate;
}

function storedLease(store: InMemoryKube): Lease {
  const lease = store.peek<Lease>(Resources.leases, LEASE, NS);
  assert.ok(lease, 'the Lease exists');
  return lease;
}

/** Advances in small steps, asserting after each that at most one candidate leads; returns the first time `until` held. */
async function advanceChecking(
  clock: ManualClock,
  candidates: Candidate[],
  totalMs: number,
  until?: () => boolean,
): Promise<number | undefined> {
  for (let t = 0; t < totalMs; t += 100) {
    await clock.advance(100);
    const leaders = candidates.filter((c) => c.elector.isLeader()).map((c) => c.elector.identity);
    assert.ok(leaders.length <= 1, `two leaders at +${t + 100}ms: ${leaders.join(', ')}`);
    if (until?.() === true) return clock.now();
  }
  return undefined;
}

describe('LeaderElector', () => {
  test('a lone candidate creates the Lease, leads, announces itself and renews every retry period', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    assert.equal(a.elector.isLeader(), true);
    assert.deepEqual(a.log, ['leader:a_1', 'started']);
    const created = storedLease(store);
    assert.equal(created.spec?.holderIdentity, 'a_1');
    assert.equal(created.spec?.leaseDurationSeconds, 15);
    assert.equal(created.spec?.leaseTransitions, 0);
    assert.match(created.spec?.acquireTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    await clock.advance(10_000);
    assert.equal(store.callsOf('update', 'leases').length, 5, 'one renew per 2 s');
    const renewed = storedLease(store);
    assert.equal(renewed.spec?.renewTime, formatMicroTime(T0 + 10_000));
    assert.equal(renewed.spec?.acquireTime, created.spec?.acquireTime);
    a.stop.abort();
    await a.done;
  });

  test('two candidates never both lead, and the survivor takes over within the lease duration after a kill', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    const b = candidate(store, clock, 'b_1');
    await advanceChecking(clock, [a, b], 20_000);
    assert.equal(a.elector.isLeader(), true);
    assert.equal(b.elector.isLeader(), false);
    assert.ok(b.log.includes('leader:a_1'), 'the standby learned who leads');

    // A kill: the leader stops renewing without releasing.
    a.stop.abort();
    await a.done;
    const killedAt = clock.now();
    const tookOver = await advanceChecking(clock, [a, b], 30_000, () => b.elector.isLeader());
    assert.ok(tookOver !== undefined, 'the standby took over');
    const failover = tookOver - killedAt;
    assert.ok(failover >= 13_000, `not before the lease expired (${failover}ms)`);
    assert.ok(failover <= 15_000 + 2 * 2_400, `within the lease duration plus polling (${failover}ms)`);
    const lease = storedLease(store);
    assert.equal(lease.spec?.holderIdentity, 'b_1');
    assert.equal(lease.spec?.leaseTransitions, 1);
    assert.equal(a.stopped, 'stopped');
    b.stop.abort();
    await b.done;
  });

  test('release clears the holder and the standby takes over within one retry period', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    const b = candidate(store, clock, 'b_1');
    await clock.advance(5_000);
    assert.equal(await a.elector.release(), true);
    assert.equal(a.stopped, 'released');
    assert.equal(a.leadingSignal?.aborted, true);
    const released = storedLease(store);
    assert.equal(released.spec?.holderIdentity, '');
    assert.equal(released.spec?.leaseDurationSeconds, 1);

    const releasedAt = clock.now();
    const tookOver = await advanceChecking(clock, [a, b], 5_000, () => b.elector.isLeader());
    assert.ok(tookOver !== undefined && tookOver - releasedAt <= 2_400, 'within one jittered retry period');
    assert.equal(storedLease(store).spec?.leaseTransitions, 1);
    b.stop.abort();
    await b.done;
  });

  test('a leader whose renewals fail stops leading by the renew deadline, before anyone may take over', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    const b = candidate(store, clock, 'b_1');
    await clock.advance(4_000);
    const lastRenew = clock.now();
    a.api.mode = 'fail';
    const stoppedAt = await advanceChecking(clock, [a, b], 12_000, () => !a.elector.isLeader());
    assert.ok(stoppedAt !== undefined, 'leadership ended');
    assert.ok(stoppedAt - lastRenew <= 10_000, `stopped ${stoppedAt - lastRenew}ms after the last renew`);
    assert.equal(a.stopped, 'lost');
    assert.equal(a.leadingSignal?.aborted, true);
    await a.done;
    const bLeads = await advanceChecking(clock, [a, b], 20_000, () => b.elector.isLeader());
    assert.ok(bLeads !== undefined && bLeads - lastRenew >= 15_000, 'the standby waited out the lease');
    b.stop.abort();
    await b.done;
  });

  test('a hanging API call cannot hold leadership past the renew deadline', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    const lastRenew = clock.now();
    a.api.mode = 'hang';
    await clock.advance(10_000);
    assert.equal(a.elector.isLeader(), false);
    assert.equal(a.stopped, 'lost');
    assert.ok(clock.now() - lastRenew <= 10_000);
    await a.done;
  });

  test('a leader that finds another holder on the Lease stops leading at once', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    const lease = storedLease(store);
    await store.replace(
      Resources.leases,
      { ...lease, spec: { ...lease.spec, holderIdentity: 'intruder_1' } },
      { namespace: NS },
    );
    await clock.advance(2_000);
    assert.equal(a.elector.isLeader(), false);
    assert.equal(a.stopped, 'lost');
    assert.ok(a.log.includes('leader:intruder_1'));
    await a.done;
  });

  test('two candidates racing for a vacant Lease: the guarded replace lets exactly one win', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    await store.create<Lease>(
      Resources.leases,
      { metadata: { name: LEASE, namespace: NS }, spec: releasedRecord(record(), T0) },
      { namespace: NS },
    );
    const a = candidate(store, clock, 'a_1');
    const b = candidate(store, clock, 'b_1');
    await advanceChecking(clock, [a, b], 10_000);
    assert.equal([a, b].filter((c) => c.elector.isLeader()).length, 1);
    assert.equal(storedLease(store).spec?.leaseTransitions, 4);
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.done, b.done]);
  });

  test('isHealthy fails only when we lead and the last renew is older than the deadline plus the margin', async () => {
    const store = new InMemoryKube();
    const manual = new ManualClock(T0);
    let offset = 0;
    const skewed = { now: () => manual.now() + offset, setTimer: manual.setTimer.bind(manual) };
    const a = candidate(store, skewed, 'a_1');
    await manual.advance(0);
    assert.equal(a.elector.isHealthy(), true);
    offset = 14_000; // the loop is wedged: time passes, no timer fires
    assert.equal(a.elector.isHealthy(), true);
    offset = 15_001;
    assert.equal(a.elector.isHealthy(), false);
    a.stop.abort();
    await a.done;
    assert.equal(a.elector.isHealthy(), true, 'a non-leader is healthy');
  });

  test('release by a candidate that never led leaves the Lease untouched', async () => {
    const store = new InMemoryKube();
    const clock = new ManualClock(T0);
    const a = candidate(store, clock, 'a_1');
    await clock.advance(0);
    const b = candidate(store, clock, 'b_1');
    await clock.advance(2_000);
    assert.equal(await b.elector.release(), false);
    assert.equal(storedLease(store).spec?.holderIdentity, 'a_1');
    assert.equal(b.stopped, undefined, 'onStoppedLeading is only called after onStartedLeading');
    a.stop.abort();
    await a.done;
  });
});
