/**
 * A minimal JSON-over-HTTPS client for the test control plane. The harness talks to the API server directly
 * (bearer token, cluster CA) so it depends on nothing the operator itself is still building.
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';

/** Where and as whom to connect. */
export interface RestTarget {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly caFile: string;
  readonly token: string;
}

/** One request. `body` is sent as JSON unless it is already a string. */
export interface RestRequest {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** Defaults to `application/json`, or `application/merge-patch+json` for PATCH. */
  readonly contentType?: string;
  readonly timeoutMs?: number;
}

/** A response with its parsed JSON body (or the raw text when it was not JSON). */
export interface RestResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** A non-2xx answer, or a transport failure (`status` 0). */
export class RestError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(init: { status: number; reason: string; message: string; cause?: unknown }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'RestError';
    this.status = init.status;
    this.reason = init.reason;
  }
}

/** Whether `err` is an API answer with the given HTTP status. */
export function hasStatus(err: unknown, status: number): boolean {
  return err instanceof RestError && err.status === status;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** A JSON client bound to one server and identity, over one keep-alive agent. */
export class RestClient {
  private readonly agent: https.Agent;
  private readonly base: URL;
  private readonly token: string;

  constructor(target: RestTarget) {
    this.base = new URL(target.server);
    this.token = target.token;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: readFileSync(target.caFile) });
  }

  /** Builds a client from a kubeconfig that uses a CA file and a bearer token (what this harness writes). */
  static fromKubeconfig(path: string): RestClient {
    return new RestClient(readKubeconfigTarget(path));
  }

  /** Sends a request and resolves with any HTTP answer; rejects only on transport errors and timeouts. */
  send<T = unknown>(req: RestRequest): Promise<RestResponse<T>> {
    return new Promise((resolve, reject) => {
      const request = https.request(this.url(req.path), this.options(req), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(transportError(req, err)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: parseBody<T>(chunks) }));
      });
      request.setTimeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => request.destroy(new Error('request timed out')));
      request.on('error', (err) => reject(transportError(req, err)));
      if (req.body !== undefined) request.write(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
      request.end();
    });
  }

  /** Sends a request and resolves with the body of a 2xx answer; rejects with a {@link RestError} otherwise. */
  async call<T = unknown>(req: RestRequest): Promise<T> {
    const res = await this.send<T>(req);
    if (res.status >= 200 && res.status < 300) return res.body;
    throw answerError(req, res);
  }

  /** Opens a streaming GET (a watch) and resolves once a 2xx status line arrived. */
  openStream(path: string, idleTimeoutMs: number): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = https.request(this.url(path), this.options({ path }), (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => reject(answerError({ path }, { status: res.statusCode ?? 0, body: parseBody(chunks) })));
          return;
        }
        resolve(res);
      });
      // Socket inactivity: a watch that goes silent (server gone without a FIN) is torn down and re-listed.
      request.setTimeout(idleTimeoutMs, () => request.destroy(new Error('watch went silent')));
      request.on('error', (err) => reject(transportError({ path }, err)));
      request.end();
    });
  }

  /** Closes idle keep-alive sockets so the process can exit. */
  close(): void {
    this.agent.destroy();
  }

  private url(path: string): URL {
    return new URL(path, this.base);
  }

  private options(req: RestRequest): https.RequestOptions {
    const method = req.method ?? 'GET';
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    if (req.body !== undefined) {
      headers['Content-Type'] =
        req.contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
    }
    return { method, headers, agent: this.agent };
  }
}

/** Reads server, CA file and token from a kubeconfig's current context. */
export function readKubeconfigTarget(path: string): RestTarget {
  const doc = parseYaml(readFileSync(path, 'utf8')) as KubeconfigDoc;
  const context = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
  const cluster = doc.clusters?.find((c) => c.name === context?.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === context?.user)?.user;
  if (!cluster?.server || !cluster['certificate-authority'] || !user?.token) {
    throw new Error(`${path}: expected a server, a certificate-authority file and a token`);
  }
  return { server: cluster.server, caFile: cluster['certificate-authority'], token: user.token };
}

interface KubeconfigDoc {
  'current-context'?: string;
  clusters?: { name: string; cluster?: { server?: string; 'certificate-authority'?: string } }[];
  users?: { name: string; user?: { token?: string } }[];
  contexts?: { name: string; context?: { cluster?: string; user?: string } }[];
}

function parseBody<T>(chunks: Buffer[]): T {
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

function answerError(req: RestRequest, res: RestResponse): RestError {
  const status = res.body as { reason?: string; message?: string } | string;
  const reason = typeof status === 'object' && status.reason ? status.reason : `HTTP${res.status}`;
  const detail = typeof status === 'object' ? (status.message ?? '') : status.slice(0, 300);
  return new RestError({
    status: res.status,
    reason,
    message: `${req.method ?? 'GET'} ${req.path}: ${res.status} ${reason}: ${detail}`,
  });
}

function transportError(req: RestRequest, cause: Error): RestError {
  return new RestError({
    status: 0,
    reason: 'Transport',
    message: `${req.method ?? 'GET'} ${req.path}: ${cause.message}`,
    cause,
  });
}
