import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkQueue, type WorkQueueMetrics } from '../../src/runtime/work-queue.js';
import { ManualClock, deferred, flush } from './manual-clock.js';

function setup(metrics?: WorkQueueMetrics): { clock: ManualClock; queue: WorkQueue } {
  const clock = new ManualClock();
  return { clock, queue: new WorkQueue({ clock, metrics }) };
}

describe('WorkQueue', () => {
  test('priority lanes: higher lanes first, FIFO within a lane, and a starving key is served anyway', async () => {
    const clock = new ManualClock();
    const lane = (k: string) => (k.startsWith('hi') ? 1 : 0);
    const queue = new WorkQueue({ clock, priorityOf: lane, starvationMs: 1000 });
    for (const k of ['lo-1', 'hi-1', 'lo-2', 'hi-2']) queue.add(k);
    assert.equal(queue.len(), 4);
    const seen: string[] = [];
    const gate = deferred();
    const running = queue.run({
      workers: 1,
      handler: async (k) => {
        seen.push(k);
        if (k === 'hi-2') await gate.promise;
      },
    });
    await flush();
    assert.deepEqual(seen, ['hi-1', 'hi-2'], 'the high lane goes first, in order');
    // While the worker is busy, more high-lane work arrives; lo-1 has waited past the starvation limit.
    queue.add('hi-3');
    await clock.advance(1500);
    gate.resolve();
    await flush();
    assert.deepEqual(seen, ['hi-1', 'hi-2', 'lo-1', 'lo-2', 'hi-3'], 'starving keys first, then the high lane');
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('a key added several times before a worker takes it runs once', async () => {
    const { queue } = setup();
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    assert.equal(queue.len(), 2);
    const seen: string[] = [];
    const running = queue.run({ workers: 2, handler: (k) => Promise.resolve(void seen.push(k)) });
    await flush();
    assert.deepEqual(seen.sort(), ['ns/a', 'ns/b']);
    assert.equal(await queue.shutDownWithDrain(100), true);
    await running;
  });

  test('a key is never processed by two workers at once, and an add during processing runs it once more after', async () => {
    const { queue } = setup();
    const gate = deferred();
    let active = 0;
    let maxActive = 0;
    const runs: string[] = [];
    const running = queue.run({
      workers: 4,
      handler: async (k) => {
        active++;
        maxActive = Math.max(maxActive, active);
        runs.push(k);
        if (runs.length === 1) await gate.promise;
        active--;
      },
    });
    queue.add('a');
    await flush();
    assert.deepEqual(runs, ['a']);
    queue.add('a');
    queue.add('a');
    queue.add('a');
    await flush();
    assert.deepEqual(runs, ['a'], 'the second run must wait for the first');
    assert.equal(queue.len(), 0, 'a dirty key in processing is not in the queue');
    gate.resolve();
    await flush();
    assert.deepEqual(runs, ['a', 'a'], 'three adds during processing give exactly one more run');
    assert.equal(maxActive, 1);
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('different keys run concurrently up to the worker count', async () => {
    const { queue } = setup();
    const gate = deferred();
    let active = 0;
    let maxActive = 0;
    const running = queue.run({
      workers: 3,
      handler: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await gate.promise;
        active--;
      },
    });
    for (const k of ['a', 'b', 'c', 'd', 'e']) queue.add(k);
    await flush();
    assert.equal(maxActive, 3);
    assert.equal(queue.len(), 2);
    gate.resolve();
    await flush();
    assert.equal(queue.len(), 0);
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('the per-key backoff doubles from 5 ms and is capped at 1000 s', async () => {
    const { clock, queue } = setup();
    const delays: number[] = [];
    for (let n = 0; n < 30; n++) {
      queue.addRateLimited('k');
      delays.push(clock.pendingDelays()[0] ?? -1);
      await clock.advance(clock.pendingDelays()[0] ?? 0);
    }
    assert.deepEqual(delays.slice(0, 5), [5, 10, 20, 40, 80]);
    assert.equal(Math.max(...delays), 1_000_000);
    assert.equal(delays.at(-1), 1_000_000);
    assert.equal(queue.numRequeues('k'), 30);
    assert.equal(queue.len(), 1, 'the retried key is waiting once');
  });

  test('forget resets the backoff to its first step', async () => {
    const { clock, queue } = setup();
    for (let n = 0; n < 4; n++) {
      queue.addRateLimited('k');
      await clock.advance(1000);
    }
    assert.equal(queue.numRequeues('k'), 4);
    queue.forget('k');
    assert.equal(queue.numRequeues('k'), 0);
    queue.addRateLimited('k');
    assert.deepEqual(clock.pendingDelays(), [5]);
  });

  test('the overall bucket spaces retries of many keys at 10 per second after a burst of 100', () => {
    const { clock, queue } = setup();
    for (let i = 0; i < 102; i++) queue.addRateLimited(`k${i}`);
    const delays = clock.pendingDelays();
    assert.equal(delays.filter((d) => d === 5).length, 100);
    assert.deepEqual(delays.slice(100), [100, 200]);
  });

  test('delayed adds come out in due order, and the earlier of two schedules for one key wins', async () => {
    const { clock, queue } = setup();
    const seen: string[] = [];
    const running = queue.run({ workers: 1, handler: (k) => Promise.resolve(void seen.push(k)) });
    queue.addAfter('a', 300);
    queue.addAfter('b', 100);
    queue.addAfter('c', 200);
    queue.addAfter('c', 500);
    queue.addAfter('d', 900);
    queue.addAfter('d', 50);
    await clock.advance(99);
    assert.deepEqual(seen, ['d']);
    await clock.advance(1000);
    assert.deepEqual(seen, ['d', 'b', 'c', 'a']);
    assert.equal(clock.pendingTimers(), 0, 'superseded schedules leave no timers behind');
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('a failing handler is retried with growing backoff and success resets the count', async () => {
    const { clock, queue } = setup();
    let calls = 0;
    const running = queue.run({
      workers: 1,
      handler: (k) => {
        calls++;
        return calls <= 3 ? Promise.reject(new Error(`fail ${k}`)) : Promise.resolve();
      },
    });
    queue.add('k');
    await flush();
    assert.equal(calls, 1);
    assert.deepEqual(clock.pendingDelays(), [5]);
    await clock.advance(5);
    assert.equal(calls, 2);
    assert.deepEqual(clock.pendingDelays(), [10]);
    await clock.advance(10);
    assert.equal(queue.numRequeues('k'), 3);
    await clock.advance(20);
    assert.equal(calls, 4);
    assert.equal(queue.numRequeues('k'), 0);
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('a handler that asks for a rate-limited retry itself keeps its backoff growing', async () => {
    const { clock, queue } = setup();
    const running = queue.run({
      workers: 1,
      handler: (k) => {
        queue.addRateLimited(k);
        return Promise.resolve();
      },
    });
    queue.add('k');
    await flush();
    await clock.advance(5);
    await clock.advance(10);
    assert.equal(queue.numRequeues('k'), 3);
    assert.deepEqual(clock.pendingDelays(), [20]);
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('shutdown with drain stops taking keys and waits for the run in flight', async () => {
    const { queue } = setup();
    const gate = deferred();
    const seen: string[] = [];
    const running = queue.run({
      workers: 1,
      handler: async (k) => {
        seen.push(k);
        await gate.promise;
      },
    });
    queue.add('a');
    queue.add('b');
    await flush();
    let drained: boolean | undefined;
    const drain = queue.shutDownWithDrain(1000).then((ok) => (drained = ok));
    queue.add('c');
    await flush();
    assert.equal(drained, undefined, 'drain waits for the run in flight');
    gate.resolve();
    await drain;
    await running;
    assert.equal(drained, true);
    assert.deepEqual(seen, ['a'], 'queued and later keys are not started');
  });

  test('shutdown with drain gives up at its deadline when a run hangs', async () => {
    const { clock, queue } = setup();
    const never = deferred();
    void queue.run({ workers: 1, handler: () => never.promise });
    queue.add('a');
    await flush();
    let drained: boolean | undefined;
    const drain = queue.shutDownWithDrain(1000).then((ok) => (drained = ok));
    await clock.advance(999);
    assert.equal(drained, undefined);
    await clock.advance(1);
    await drain;
    assert.equal(drained, false);
  });

  test('metrics hooks see adds, depth, queue latency, work duration and retries', async () => {
    const events: string[] = [];
    const { clock, queue } = setup({
      onAdd: (k) => events.push(`add ${k}`),
      onDepth: (d) => events.push(`depth ${d}`),
      onQueueLatency: (s) => events.push(`latency ${s}`),
      onWorkDuration: (s) => events.push(`work ${s}`),
      onRetry: (k) => events.push(`retry ${k}`),
    });
    queue.add('a');
    queue.add('a');
    await clock.advance(250);
    const gate = deferred();
    const running = queue.run({
      workers: 1,
      handler: async () => {
        await gate.promise;
        throw new Error('boom');
      },
    });
    await flush();
    await clock.advance(40);
    gate.resolve();
    await flush();
    assert.deepEqual(events, ['add a', 'depth 1', 'latency 0.25', 'depth 0', 'retry a', 'work 0.04']);
    await queue.shutDownWithDrain(100);
    await running;
  });

  test('a throwing metrics hook does not break the queue', async () => {
    const { queue } = setup({
      onAdd: () => {
        throw new Error('metrics bug');
      },
    });
    queue.add('a');
    assert.equal(queue.len(), 1);
    await queue.shutDownWithDrain(10);
  });
});
