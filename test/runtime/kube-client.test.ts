import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import {
  HttpKubeClient,
  NdjsonDecoder,
  authFromKubeConfig,
  errorFromResponse,
  parseRetryAfter,
  watchQuery,
  type KubeRequestInfo,
} from '../../src/runtime/kube-client.js';
import {
  KubeApiError,
  Resources,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  type WatchEvent,
} from '../../src/runtime/kube-api.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A local HTTP server whose answers each test sets; records requests and connections. */
class FakeServer {
  readonly seen: Seen[] = [];
  connections = 0;
  handler: Handler = (_req, res) => res.end('{}');
  readonly #server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      this.handler(req, res, body);
    });
  });

  async start(): Promise<string> {
    this.#server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function status(res: http.ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }));
}

function kubeconfigFor(server: string, user: Record<string, unknown>): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', ...user }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('HttpKubeClient against a local HTTP server', () => {
  const fake = new FakeServer();
  let server = '';
  let client: HttpKubeClient;
  const requests: KubeRequestInfo[] = [];

  before(async () => {
    server = await fake.start();
    client = HttpKubeClient.fromKubeConfig(kubeconfigFor(server, { token: 'secret' }), {
      timeoutMs: 500,
      onRequest: (info) => requests.push(info),
    });
  });
  after(async () => {
    client.close();
    await fake.stop();
  });

  test('a get sends the bearer token and returns the parsed object', async () => {
    fake.handler = (_req, res) => res.end(JSON.stringify({ metadata: { name: 'p1', namespace: 'ns' } }));
    const pod = await client.get(Resources.pods, 'p1', 'ns');
    assert.deepEqual(pod, { metadata: { name: 'p1', namespace: 'ns' } });
    const last = fake.seen.at(-1)!;
    assert.equal(last.url, '/api/v1/namespaces/ns/pods/p1');
    assert.equal(last.headers.authorization, 'Bearer secret');
    assert.deepEqual(requests.at(-1)?.verb, 'get');
    assert.equal(requests.at(-1)?.resource, 'pods');
    assert.equal(requests.at(-1)?.code, 200);
  });

  test('a get with a resourceVersion asks for any version not older than it (the watch cache answers)', async () => {
    fake.handler = (_req, res) => res.end(JSON.stringify({ metadata: { name: 'p1', namespace: 'ns' } }));
    await client.get(Resources.pods, 'p1', 'ns', { resourceVersion: '42' });
    assert.equal(fake.seen.at(-1)!.url, '/api/v1/namespaces/ns/pods/p1?resourceVersion=42');
    await client.get(Resources.pods, 'p1', 'ns', {});
    assert.equal(fake.seen.at(-1)!.url, '/api/v1/namespaces/ns/pods/p1');
  });

  test('status bodies map to NotFound, Conflict and AlreadyExists errors with the server message', async () => {
    fake.handler = (_req, res) => status(res, 404, 'NotFound', 'pods "x" not found');
    const notFound = await client.get(Resources.pods, 'x', 'ns').catch((e: unknown) => e);
    assert.ok(isNotFound(notFound));
    assert.equal((notFound as KubeApiError).message, 'pods "x" not found');

    fake.handler = (_req, res) => status(res, 409, 'Conflict', 'the object has been modified');
    const conflict = await client
      .replace(Resources.configMaps, { metadata: { name: 'c', namespace: 'ns', resourceVersion: '1' } })
      .catch((e: unknown) => e);
    assert.ok(isConflict(conflict));
    assert.ok(!isAlreadyExists(conflict));

    fake.handler = (_req, res) => status(res, 409, 'AlreadyExists', 'configmaps "c" already exists');
    const exists = await client
      .create(Resources.configMaps, { metadata: { name: 'c', namespace: 'ns' } })
      .catch((e: unknown) => e);
    assert.ok(isAlreadyExists(exists));
    assert.equal(fake.seen.at(-1)?.url, '/api/v1/namespaces/ns/configmaps');
  });

  test('a 429 carries its Retry-After seconds', async () => {
    fake.handler = (_req, res) => {
      res.writeHead(429, { 'Retry-After': '7', 'Content-Type': 'text/plain' });
      res.end('slow down');
    };
    const err = await client.list(Resources.pods).catch((e: unknown) => e);
    assert.ok(err instanceof KubeApiError);
    assert.equal(err.code, 429);
    assert.equal(err.reason, 'TooManyRequests');
    assert.equal(err.retryAfterSeconds, 7);
  });

  test('each patch flavour sends its content type, and apply sends fieldManager and force', async () => {
    fake.handler = (_req, res) => res.end('{"metadata":{}}');
    const expected = {
      merge: 'application/merge-patch+json',
      json: 'application/json-patch+json',
      strategic: 'application/strategic-merge-patch+json',
      apply: 'application/apply-patch+yaml',
    } as const;
    for (const [type, contentType] of Object.entries(expected)) {
      await client.patch(Resources.dataUploads, 'du', {}, type as keyof typeof expected, {
        namespace: 'velero',
        fieldManager: 'op',
        force: true,
      });
      const last = fake.seen.at(-1)!;
      assert.equal(last.method, 'PATCH');
      assert.equal(last.headers['content-type'], contentType);
      const query = new URL(last.url, server).searchParams;
      assert.equal(query.get('fieldManager'), 'op');
      assert.equal(query.get('force'), type === 'apply' ? 'true' : null);
    }
    assert.equal(fake.seen.at(-1)?.url.split('?')[0], '/apis/velero.io/v2alpha1/namespaces/velero/datauploads/du');
  });

  test('a delete sends DeleteOptions with preconditions and accepts any 2xx body', async () => {
    fake.handler = (_req, res) => res.end(JSON.stringify({ kind: 'Status', status: 'Success' }));
    await client.delete(Resources.pods, 'p', { namespace: 'ns', preconditions: { uid: 'u1' } });
    const last = fake.seen.at(-1)!;
    assert.equal(last.method, 'DELETE');
    assert.deepEqual(JSON.parse(last.body).preconditions, { uid: 'u1' });
  });

  test('a namespaced object call without a namespace is rejected before sending', async () => {
    const before = fake.seen.length;
    const err = await client.get(Resources.pods, 'p').catch((e: unknown) => e);
    assert.ok(err instanceof KubeApiError);
    assert.equal(err.code, 400);
    assert.equal(fake.seen.length, before);
  });

  test('a server that never answers gives a client timeout with code 0', async () => {
    fake.handler = () => undefined;
    const started = Date.now();
    const err = await client.get(Resources.nodes, 'n1').catch((e: unknown) => e);
    assert.ok(err instanceof KubeApiError);
    assert.equal(err.code, 0);
    assert.equal(err.reason, 'Timeout');
    assert.ok(Date.now() - started < 2000);
    assert.equal(requests.at(-1)?.code, 0);
  });

  test('sequential requests reuse one keep-alive connection', async () => {
    fake.handler = (_req, res) => res.end('{"metadata":{}}');
    const own = HttpKubeClient.fromKubeConfig(kubeconfigFor(server, { token: 't' }));
    const before = fake.connections;
    for (let i = 0; i < 5; i++) await own.get(Resources.nodes, `n${i}`);
    assert.equal(fake.connections - before, 1);
    own.close();
  });

  test('a watch splits events across arbitrary chunk boundaries, including inside a UTF-8 character', async () => {
    const lines = [
      { type: 'ADDED', object: { metadata: { name: 'a', annotations: { note: 'grüße ✓' } } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '42' } } },
      { type: 'DELETED', object: { metadata: { name: 'a' } } },
    ];
    const bytes = Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    fake.handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      let i = 0;
      const step = (): void => {
        if (i >= bytes.length) {
          res.end();
          return;
        }
        res.write(bytes.subarray(i, i + 7));
        i += 7;
        setImmediate(step);
      };
      step();
    };
    const events: WatchEvent[] = [];
    await client.watch(
      Resources.configMaps,
      { namespace: 'ns', resourceVersion: '10', allowWatchBookmarks: true, timeoutSeconds: 60, labelSelector: 'a=b' },
      (e) => events.push(e),
      new AbortController().signal,
    );
    assert.deepEqual(events, lines);
    const query = new URL(fake.seen.at(-1)!.url, server).searchParams;
    assert.equal(query.get('watch'), 'true');
    assert.equal(query.get('resourceVersion'), '10');
    assert.equal(query.get('allowWatchBookmarks'), 'true');
    assert.equal(query.get('timeoutSeconds'), '60');
    assert.equal(query.get('labelSelector'), 'a=b');
  });

  test('a watch answered with HTTP 410 rejects with a Gone error', async () => {
    fake.handler = (_req, res) => status(res, 410, 'Expired', 'too old resource version: 1 (5)');
    const err = await client
      .watch(Resources.pods, { resourceVersion: '1' }, () => undefined, new AbortController().signal)
      .catch((e: unknown) => e);
    assert.ok(isGone(err));
    assert.equal((err as KubeApiError).reason, 'Expired');
  });

  test('aborting a watch resolves it', async () => {
    fake.handler = (_req, res) => {
      res.writeHead(200);
      res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x' } } }) + '\n');
    };
    const ac = new AbortController();
    let count = 0;
    await client.watch(
      Resources.pods,
      {},
      () => {
        count++;
        ac.abort();
      },
      ac.signal,
    );
    assert.equal(count, 1);
  });

  test('a throw from the watch callback rejects the watch with that same error', async () => {
    fake.handler = (_req, res) => {
      res.writeHead(200);
      res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x' } } }) + '\n');
    };
    const boom = new Error('handler bug');
    const err = await client
      .watch(
        Resources.pods,
        {},
        () => {
          throw boom;
        },
        new AbortController().signal,
      )
      .catch((e: unknown) => e);
    assert.equal(err, boom);
  });

  test('a watch whose connection drops mid-stream rejects with code 0', async () => {
    fake.handler = (req, res) => {
      res.writeHead(200);
      res.write('{"type":"ADDED","object":{"metadata":{"name":"x"}}}\n{"type":"MOD');
      setTimeout(() => req.socket.destroy(), 20);
    };
    const events: WatchEvent[] = [];
    const err = await client
      .watch(Resources.pods, {}, (e) => events.push(e), new AbortController().signal)
      .catch((e: unknown) => e);
    assert.equal(events.length, 1);
    assert.ok(err instanceof KubeApiError);
    assert.equal(err.code, 0);
  });
});

test('a refused connection becomes a KubeApiError with code 0', async () => {
  const client = HttpKubeClient.fromKubeConfig(kubeconfigFor('http://127.0.0.1:1', {}), { timeoutMs: 2000 });
  const err = await client.get(Resources.nodes, 'n').catch((e: unknown) => e);
  assert.ok(err instanceof KubeApiError);
  assert.equal(err.code, 0);
  assert.equal(err.reason, 'ConnectionFailed');
  client.close();
});

test('a token file is re-read once its minute has passed, so rotated tokens are used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-client-'));
  try {
    const file = join(dir, 'token');
    writeFileSync(file, 'first\n');
    let now = 1_000_000;
    const auth = authFromKubeConfig(
      kubeconfigFor('http://127.0.0.1:1', { authProvider: { name: 'tokenFile', config: { tokenFile: file } } }),
      () => now,
    );
    assert.equal((await auth()).Authorization, 'Bearer first');
    writeFileSync(file, 'second');
    now += 30_000;
    assert.equal((await auth()).Authorization, 'Bearer first');
    now += 31_000;
    assert.equal((await auth()).Authorization, 'Bearer second');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('pure helpers', () => {
  test('the NDJSON decoder keeps a partial line until its newline arrives', () => {
    const d = new NdjsonDecoder();
    assert.deepEqual(d.push('{"a":1}\n{"b"'), [{ a: 1 }]);
    assert.deepEqual(d.push(':2}\n\n'), [{ b: 2 }]);
    assert.deepEqual(d.push('{"c":3}'), []);
    assert.deepEqual(d.end(), [{ c: 3 }]);
  });

  test('the NDJSON decoder cuts at newlines only, so a multi-byte character split across chunks survives', () => {
    const d = new NdjsonDecoder();
    const line = Buffer.from('{"name":"żółw-🐢"}\n{"n":2}\n', 'utf8');
    const cut = line.indexOf(0xf0) + 2; // inside the 4-byte emoji
    assert.deepEqual(d.push(line.subarray(0, 5)), []);
    assert.deepEqual(d.push(line.subarray(5, cut)), []);
    assert.deepEqual(d.push(line.subarray(cut)), [{ name: 'żółw-🐢' }, { n: 2 }]);
    assert.deepEqual(d.push(Buffer.from('  \r\n')), [], 'a blank line gives nothing');
    assert.deepEqual(d.end(), []);
  });

  test('Retry-After accepts delta-seconds and HTTP dates and ignores garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('12', now), 12);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  test('a non-Status error body still gives a reason from the HTTP code and keeps the body in the message', () => {
    const err = errorFromResponse({ code: 503, body: 'upstream down', nowMs: 0, what: 'GET /x' });
    assert.equal(err.reason, 'ServiceUnavailable');
    assert.match(err.message, /upstream down/);
  });

  test('the Status details retryAfterSeconds is used when no header came', () => {
    const body = JSON.stringify({
      kind: 'Status',
      code: 429,
      reason: 'TooManyRequests',
      details: { retryAfterSeconds: 3 },
    });
    assert.equal(errorFromResponse({ code: 429, body, nowMs: 0, what: 'x' }).retryAfterSeconds, 3);
  });

  test('watch queries leave out unset options', () => {
    assert.equal(watchQuery({}), '?watch=true');
  });
});
