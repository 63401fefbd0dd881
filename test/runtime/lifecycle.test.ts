import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { exitCodeFor, Lifecycle } from '../../src/runtime/lifecycle.js';
import { deferred, flush, ManualClock } from './manual-clock.js';

function setup(deadlineMs = 25_000) {
  const signals = new EventEmitter();
  const clock = new ManualClock(0);
  const exits: number[] = [];
  const lifecycle = new Lifecycle({ signals, clock, deadlineMs, exit: (code) => exits.push(code) });
  lifecycle.listen();
  return { signals, clock, exits, lifecycle };
}

describe('Lifecycle', () => {
  test('SIGTERM runs the steps in order and resolves 0', async () => {
    const { signals, lifecycle } = setup();
    const order: string[] = [];
    for (const name of ['stop watches', 'drain', 'flush events', 'release lease', 'close servers']) {
      lifecycle.addStep(name, async () => {
        await flush(1);
        order.push(name);
      });
    }
    signals.emit('SIGTERM');
    assert.equal(await lifecycle.done, 0);
    assert.deepEqual(order, ['stop watches', 'drain', 'flush events', 'release lease', 'close servers']);
    assert.equal(signals.listenerCount('SIGTERM'), 0, 'listeners are removed afterwards');
    assert.equal(signals.listenerCount('SIGINT'), 0);
  });

  test('a failing step does not stop the later ones, and the exit code is 1', async () => {
    const { signals, lifecycle } = setup();
    const ran: string[] = [];
    lifecycle.addStep('drain', () => {
      throw new Error('worker crashed');
    });
    lifecycle.addStep('release lease', () => {
      ran.push('release lease');
    });
    signals.emit('SIGINT');
    assert.equal(await lifecycle.done, 1);
    assert.deepEqual(ran, ['release lease']);
    assert.deepEqual(
      lifecycle.outcomes().map((o) => [o.name, o.ok, o.error]),
      [
        ['drain', false, 'worker crashed'],
        ['release lease', true, undefined],
      ],
    );
  });

  test('a step overrunning the deadline is aborted and the remaining steps still run with a short budget', async () => {
    const { signals, clock, lifecycle } = setup(25_000);
    let drainSignal: AbortSignal | undefined;
    const released = deferred();
    lifecycle.addStep('drain', (signal) => {
      drainSignal = signal;
      return new Promise(() => undefined); // a reconcile that never ends
    });
    lifecycle.addStep('release lease', async () => {
      await clock.advance(0);
      released.resolve();
    });
    signals.emit('SIGTERM');
    await clock.advance(24_999);
    assert.equal(drainSignal?.aborted, false);
    await clock.advance(1);
    assert.equal(drainSignal?.aborted, true);
    await released.promise;
    assert.equal(await lifecycle.done, 1);
    assert.equal(lifecycle.outcomes()[0]?.error, 'timeout');
    assert.equal(lifecycle.outcomes()[1]?.ok, true);
  });

  test('a second signal forces exit through the injected function', async () => {
    const { signals, exits, lifecycle } = setup();
    lifecycle.addStep('drain', () => new Promise(() => undefined));
    signals.emit('SIGTERM');
    await flush();
    assert.deepEqual(exits, []);
    signals.emit('SIGTERM');
    assert.deepEqual(exits, [1]);
  });

  test('a shutdown requested with code 1 (leadership lost) exits 1 even when every step succeeds', async () => {
    const { lifecycle } = setup();
    lifecycle.addStep('close servers', () => undefined);
    const first = lifecycle.shutdown('leader election lost', 1);
    const second = lifecycle.shutdown('SIGTERM');
    assert.equal(await first, 1);
    assert.equal(await second, 1);
    assert.equal(lifecycle.outcomes().length, 1, 'steps ran once');
  });

  test('exitCodeFor is 0 only when every step succeeded and no failure was requested', () => {
    assert.equal(exitCodeFor([{ name: 'a', ok: true, durationMs: 1 }], 0), 0);
    assert.equal(exitCodeFor([{ name: 'a', ok: false, durationMs: 1 }], 0), 1);
    assert.equal(exitCodeFor([], 1), 1);
  });
});
