import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger, isLogLevel, reconcileLogger } from '../../src/runtime/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
      cb();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  test('lines are JSON with a level name, an ISO time and the message', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'info', destination }).info('started');
    const [line] = lines;
    assert.equal(line?.level, 'info');
    assert.equal(line?.msg, 'started');
    assert.match(String(line?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('the reconcile logger carries the fixed keys and leaves out unknown ones', () => {
    const { lines, destination } = capture();
    const log = reconcileLogger(createLogger({ level: 'debug', destination }), {
      controller: 'dataupload',
      namespace: 'velero',
      name: 'backup-1-x7k2p',
      reconcileID: 'r-1',
      phase: undefined,
    });
    log.debug('planned');
    const [line] = lines;
    assert.equal(line?.controller, 'dataupload');
    assert.equal(line?.namespace, 'velero');
    assert.equal(line?.name, 'backup-1-x7k2p');
    assert.equal(line?.reconcileID, 'r-1');
    assert.equal('phase' in (line ?? {}), false);
  });

  test('secrets are redacted at the top level and inside nested objects', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'info', destination }).info(
      {
        token: 'abc',
        req: { headers: { authorization: 'Bearer abc' } },
        user: { password: 'p', bearer: 'b' },
        ok: 'kept',
      },
      'request',
    );
    const text = JSON.stringify(lines[0]);
    assert.doesNotMatch(text, /abc|"p"|"b"/);
    assert.match(text, /"ok":"kept"/);
    assert.equal((lines[0]?.req as { headers: { authorization: string } }).headers.authorization, '[REDACTED]');
  });

  test('lines below the level are dropped', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'warn', destination }).info('quiet');
    assert.equal(lines.length, 0);
  });

  test('level names are validated', () => {
    assert.equal(isLogLevel('debug'), true);
    assert.equal(isLogLevel('verbose'), false);
  });
});
