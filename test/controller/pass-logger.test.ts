import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { PassLogger } from '../../src/controller/reconciler.js';
import { createLogger } from '../../src/runtime/logger.js';

/** A real pino logger at `level` writing JSON lines into an array, and how many children were made of it. */
function capture(level: 'info' | 'debug') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level, destination });
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<typeof child>) => {
    children++;
    return child(...args);
  }) as typeof logger.child;
  return { logger, lines, children: () => children };
}

test('a pass that logs only below the level makes no child logger', () => {
  const c = capture('info');
  const log = new PassLogger(c.logger, { namespace: 'velero', name: 'du-1' });
  log.debug({ phase: 'Accepted' }, 'waiting for the backup pod');
  assert.equal(c.children(), 0);
  assert.equal(c.lines.length, 0);
});

test('the lines of one pass carry the reconcile keys and share one reconcileID', () => {
  const c = capture('debug');
  const log = new PassLogger(c.logger, { namespace: 'velero', name: 'du-1' });
  log.debug({ phase: 'New' }, 'adding the finalizer');
  log.info({ phase: 'Accepted' }, 'accepting');
  assert.equal(c.children(), 1);
  assert.equal(c.lines.length, 2);
  for (const line of c.lines) {
    assert.equal(line.controller, 'dataupload');
    assert.equal(line.namespace, 'velero');
    assert.equal(line.name, 'du-1');
  }
  assert.match(String(c.lines[0]!.reconcileID), /^[0-9a-f-]{36}$/);
  assert.equal(c.lines[0]!.reconcileID, c.lines[1]!.reconcileID);
  const other = new PassLogger(c.logger, { namespace: 'velero', name: 'du-1' });
  other.warn({}, 'another pass');
  assert.notEqual(c.lines[2]!.reconcileID, c.lines[0]!.reconcileID, 'each pass has its own');
});
