/**
 * `HttpKubeClient`: the {@link KubeApi} contract over Node's own `http`/`https`, with one shared keep-alive agent.
 *
 * Why not client-node's generated clients: 1.4.0 builds a new `https.Agent` per request (no connection reuse, FD
 * churn on watch reconnects), has no client-side timeout (a half-open connection hangs forever), swallows throws
 * from watch callbacks, and turns timestamps into `Date`. We keep client-node only for what it does well:
 * exec and auth-provider credential plugins (kubeconfig.ts imports it only when a kubeconfig needs one).
 */
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { User } from '@kubernetes/client-node';
import type { KubeConfigLike } from './kubeconfig.js';
import type { KubeList, KubeObject } from '../api/kube.js';
import {
  KubeApiError,
  resourcePath,
  type DeleteOptions,
  type GetOptions,
  type KubeApi,
  type ListOptions,
  type PatchType,
  type ResourceRef,
  type WatchEvent,
  type WatchOptions,
  type WriteOptions,
} from './kube-api.js';
import { TokenBucket } from './rate-limit.js';

/** What {@link HttpKubeClientOptions.onRequest} learns about each finished request (for `rest_client_*` metrics). */
export interface KubeRequestInfo {
  /** Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch` or `delete`. */
  readonly verb: string;
  /** `resource.group` (`pods`, `datauploads.velero.io`), the way RBAC and audit logs spell it. */
  readonly resource: string;
  /** HTTP status; 0 when no answer came (connection failure, client timeout, abort). */
  readonly code: number;
  /** Until the response was complete; for a watch, until its headers arrived. */
  readonly durationMs: number;
}

/** Tuning of an {@link HttpKubeClient}. */
export interface HttpKubeClientOptions {
  /** `User-Agent` header; default `dataupload-operator`. */
  readonly userAgent?: string;
  /** Client timeout of every non-watch request (and of a watch until its headers arrive); default 30 000 ms. */
  readonly timeoutMs?: number;
  /** Client-side rate limit in requests per second; off (unlimited) unless set. */
  readonly qps?: number;
  /** Bucket size of the client-side rate limit; defaults to `max(1, 2 * qps)`. */
  readonly burst?: number;
  /** Called once per request when it completes or fails; must not throw (a throw is ignored). */
  readonly onRequest?: (info: KubeRequestInfo) => void;
}

/** Supplies the authentication headers of one request; may re-read rotating credentials. */
export type AuthHeaderSource = () => Promise<Record<string, string>>;

/** Everything an {@link HttpKubeClient} needs; {@link HttpKubeClient.fromKubeConfig} builds it from a kubeconfig. */
export interface HttpKubeClientInit {
  /** `https://host:port` (a path prefix is kept). */
  readonly server: string;
  /** The one agent every request goes through; must be keep-alive for connection reuse. */
  readonly agent: http.Agent;
  readonly auth: AuthHeaderSource;
  readonly options?: HttpKubeClientOptions;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** client-go re-reads a token file at most once a minute; projected SA tokens are refreshed well before expiry. */
const TOKEN_FILE_TTL_MS = 60_000;

const PATCH_CONTENT_TYPES: Readonly<Record<PatchType, string>> = Object.freeze({
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  // JSON is valid YAML, so the body stays JSON.
  apply: 'application/apply-patch+yaml',
});

/** The Content-Type of a patch flavour. */
export function patchContentType(type: PatchType): string {
  return PATCH_CONTENT_TYPES[type];
}

/** The `resource.group` label of a resource (core resources have no group suffix). */
export function resourceLabel(r: ResourceRef): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}

type QueryValue = string | number | boolean | undefined;

/** A query string (with its leading `?`, or `''`) from the defined values, in the given order. */
export function buildQuery(params: Readonly<Record<string, QueryValue>>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === '') continue;
    q.set(key, String(value));
  }
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** Query parameters of a collection read. */
export function listQuery(options: ListOptions): string {
  return buildQuery({
    labelSelector: options.labelSelector,
    fieldSelector: options.fieldSelector,
    limit: options.limit,
    continue: options.continue,
    resourceVersion: options.resourceVersion,
    resourceVersionMatch: options.resourceVersionMatch,
  });
}

/** Query parameters of a watch. */
export function watchQuery(options: WatchOptions): string {
  return buildQuery({
    watch: true,
    labelSelector: options.labelSelector,
    fieldSelector: options.fieldSelector,
    resourceVersion: options.resourceVersion,
    allowWatchBookmarks: options.allowWatchBookmarks,
    timeoutSeconds: options.timeoutSeconds,
  });
}

/** Query parameters of a create, replace or patch. */
export function writeQuery(options: WriteOptions, patchType?: PatchType): string {
  return buildQuery({
    fieldManager: options.fieldManager,
    dryRun: options.dryRun ? 'All' : undefined,
    // The apiserver rejects `force` on anything but server-side apply.
    force: patchType === 'apply' && options.force ? true : undefined,
  });
}

/** The body of a DELETE: a `DeleteOptions` object, or `undefined` when nothing is set. */
export function deleteBody(options: DeleteOptions): Record<string, unknown> | undefined {
  const { propagationPolicy, gracePeriodSeconds, preconditions } = options;
  if (propagationPolicy === undefined && gracePeriodSeconds === undefined && preconditions === undefined) {
    return undefined;
  }
  return { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy, gracePeriodSeconds, preconditions };
}

/**
 * `Retry-After` in seconds: delta-seconds or an HTTP date (relative to `nowMs`); `undefined` when absent or
 * unparseable. A date in the past gives 0.
 */
export function parseRetryAfter(header: string | string[] | undefined, nowMs: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

const REASONS_BY_CODE: Readonly<Record<number, string>> = Object.freeze({
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Gone',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
});

interface StatusBody {
  kind?: unknown;
  reason?: unknown;
  message?: unknown;
  code?: unknown;
  details?: { retryAfterSeconds?: unknown };
}

function parseStatus(body: string): StatusBody | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The error of a non-2xx answer: code, reason and message from the `Status` body when there is one. */
export function errorFromResponse(init: {
  code: number;
  body: string;
  retryAfterHeader?: string | string[] | undefined;
  nowMs: number;
  what: string;
}): KubeApiError {
  const status = parseStatus(init.body);
  const reason =
    typeof status?.reason === 'string' && status.reason !== ''
      ? status.reason
      : (REASONS_BY_CODE[init.code] ?? `HTTP${init.code}`);
  const text = init.body.trim().slice(0, 500);
  const message =
    typeof status?.message === 'string' && status.message !== ''
      ? status.message
      : `${init.what}: HTTP ${init.code}${text === '' ? '' : `: ${text}`}`;
  const detailRetry = status?.details?.retryAfterSeconds;
  const retryAfterSeconds =
    parseRetryAfter(init.retryAfterHeader, init.nowMs) ?? (typeof detailRetry === 'number' ? detailRetry : undefined);
  return new KubeApiError({ code: init.code, reason, message, retryAfterSeconds });
}

/** The error of a watch stream's `ERROR` event (a `Status` object), e.g. 410 `Expired`. */
export function errorFromWatchStatus(object: unknown): KubeApiError {
  const status = (typeof object === 'object' && object !== null ? object : {}) as StatusBody;
  const code = typeof status.code === 'number' ? status.code : 500;
  const reason = typeof status.reason === 'string' && status.reason !== '' ? status.reason : REASONS_BY_CODE[code];
  const message = typeof status.message === 'string' ? status.message : `watch ERROR event with code ${code}`;
  return new KubeApiError({ code, reason: reason ?? `HTTP${code}`, message });
}

/**
 * Splits a byte stream into newline-delimited JSON values. Works on bytes: `\n` never occurs inside a multi-byte
 * UTF-8 character, so lines are cut with a native search and decoded once, and a line longer than a chunk is
 * joined once when its newline arrives (string concatenation per chunk showed up in profiles of large watches).
 */
export class NdjsonDecoder {
  #parts: Buffer[] = [];

  /** Feeds a chunk; returns the complete values it finished. Throws a `SyntaxError` on a malformed line. */
  push(chunk: Buffer | string): unknown[] {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (bytes.indexOf(NEWLINE) < 0) {
      if (bytes.length > 0) this.#parts.push(bytes);
      return [];
    }
    const buf = this.#parts.length === 0 ? bytes : Buffer.concat([...this.#parts, bytes]);
    this.#parts = [];
    const out: unknown[] = [];
    let start = 0;
    for (let newline = buf.indexOf(NEWLINE); newline >= 0; newline = buf.indexOf(NEWLINE, start)) {
      if (newline > start) parseLine(buf.toString('utf8', start, newline), out);
      start = newline + 1;
    }
    if (start < buf.length) this.#parts.push(buf.subarray(start));
    return out;
  }

  /** Ends the stream: the last value when it had no trailing newline. */
  end(): unknown[] {
    const rest = Buffer.concat(this.#parts).toString('utf8');
    this.#parts = [];
    const out: unknown[] = [];
    parseLine(rest, out);
    return out;
  }
}

const NEWLINE = 0x0a;

/** The API server writes `{...}`; only a line that does not start with a brace needs the blank check. */
function parseLine(line: string, out: unknown[]): void {
  if (line.charCodeAt(0) === 0x7b || line.trim() !== '') out.push(JSON.parse(line));
}

function readOptionalFile(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return fs.readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}

interface TokenFileProvider {
  authProvider?: { config?: { tokenFile?: unknown } };
}

/**
 * Authentication headers from the kubeconfig user: static bearer token or basic auth directly; an auth-provider
 * token file (the in-cluster ServiceAccount token, which the kubelet rotates) re-read at most once a minute;
 * exec and other auth providers through client-node's own authenticators, which cache their credentials.
 */
export function authFromKubeConfig(kc: KubeConfigLike, now: () => number = Date.now): AuthHeaderSource {
  const user: User | null = kc.getCurrentUser();
  if (!user) return () => Promise.resolve({});
  const extra: Record<string, string> = user.impersonateUser ? { 'Impersonate-User': user.impersonateUser } : {};
  if (user.token) {
    const headers = { ...extra, Authorization: `Bearer ${user.token}` };
    return () => Promise.resolve(headers);
  }
  if (user.username) {
    const basic = Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64');
    const headers = { ...extra, Authorization: `Basic ${basic}` };
    return () => Promise.resolve(headers);
  }
  const tokenFile = (user as TokenFileProvider).authProvider?.config?.tokenFile;
  if (typeof tokenFile === 'string' && tokenFile !== '') return tokenFileAuth(tokenFile, extra, now);
  if (user.exec || user.authProvider) return pluginAuth(kc, extra);
  return () => Promise.resolve(extra);
}

function tokenFileAuth(file: string, extra: Record<string, string>, now: () => number): AuthHeaderSource {
  let cached: { token: string; readAt: number } | undefined;
  return async () => {
    if (cached === undefined || now() - cached.readAt > TOKEN_FILE_TTL_MS) {
      const token = (await readFile(file, 'utf8')).trim();
      cached = { token, readAt: now() };
    }
    return { ...extra, Authorization: `Bearer ${cached.token}` };
  };
}

function pluginAuth(kc: KubeConfigLike, extra: Record<string, string>): AuthHeaderSource {
  return async () => {
    const scratch: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(scratch);
    const authorization = (scratch.headers as Record<string, unknown> | undefined)?.Authorization;
    return typeof authorization === 'string' ? { ...extra, Authorization: authorization } : extra;
  };
}

/** The shared keep-alive agent with the TLS material of the kubeconfig's current cluster and user. */
export function agentFromKubeConfig(kc: KubeConfigLike): http.Agent {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  if (cluster.proxyUrl) {
    throw new Error(`kubeconfig cluster ${cluster.name} uses proxy-url, which HttpKubeClient does not support`);
  }
  const common = { keepAlive: true, keepAliveMsecs: 30_000, scheduling: 'lifo' as const };
  if (cluster.server.startsWith('http:')) return new http.Agent(common);
  const user = kc.getCurrentUser();
  return new https.Agent({
    ...common,
    ca: readOptionalFile(cluster.caFile, cluster.caData),
    cert: readOptionalFile(user?.certFile, user?.certData),
    key: readOptionalFile(user?.keyFile, user?.keyData),
    rejectUnauthorized: !cluster.skipTLSVerify,
    servername: cluster.tlsServerName,
  });
}

interface Call {
  readonly verb: string;
  readonly r: ResourceRef;
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly contentType?: string;
}

function invalidCall(message: string): KubeApiError {
  return new KubeApiError({ code: 400, reason: 'BadRequest', message: `client: ${message}` });
}

/** The namespace a namespaced call addresses; rejects a namespaced object call without one. */
function requireNamespace(r: ResourceRef, namespace: string | undefined, what: string): string | undefined {
  if (r.namespaced && !namespace) throw invalidCall(`${what} of namespaced ${resourceLabel(r)} needs a namespace`);
  return r.namespaced ? namespace : undefined;
}

function transportError(err: unknown, what: string, timedOut: boolean): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return timedOut
    ? new KubeApiError({ code: 0, reason: 'Timeout', message: `${what}: client timeout`, cause: err })
    : new KubeApiError({ code: 0, reason: 'ConnectionFailed', message: `${what}: ${detail}`, cause: err });
}

/** {@link KubeApi} over HTTP(S) with one keep-alive agent; see the module comment for why. */
export class HttpKubeClient implements KubeApi {
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #auth: AuthHeaderSource;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  readonly #limiter: TokenBucket | undefined;
  readonly #onRequest: ((info: KubeRequestInfo) => void) | undefined;
  readonly #transport: typeof http | typeof https;

  constructor(init: HttpKubeClientInit) {
    this.#base = new URL(init.server);
    this.#transport = this.#base.protocol === 'http:' ? http : https;
    this.#agent = init.agent;
    this.#auth = init.auth;
    const o = init.options ?? {};
    this.#userAgent = o.userAgent ?? 'dataupload-operator';
    this.#timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#onRequest = o.onRequest;
    this.#limiter =
      o.qps !== undefined && o.qps > 0
        ? new TokenBucket({ qps: o.qps, burst: o.burst ?? Math.max(1, Math.ceil(2 * o.qps)), now: Date.now })
        : undefined;
  }

  /** A client for the kubeconfig's current context (TLS and credentials read now; token files re-read later). */
  static fromKubeConfig(kc: KubeConfigLike, options?: HttpKubeClientOptions): HttpKubeClient {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    return new HttpKubeClient({
      server: cluster.server,
      agent: agentFromKubeConfig(kc),
      auth: authFromKubeConfig(kc),
      options,
    });
  }

  /** Destroys every connection of the agent, idle or in use: call it at shutdown, after the watches stopped. */
  close(): void {
    this.#agent.destroy();
  }

  async get<T extends KubeObject>(
    r: ResourceRef,
    name: string,
    namespace?: string,
    options: GetOptions = {},
  ): Promise<T> {
    const ns = requireNamespace(r, namespace, 'get');
    const query = options.resourceVersion ? `?resourceVersion=${encodeURIComponent(options.resourceVersion)}` : '';
    return this.#call<T>({ verb: 'get', r, method: 'GET', path: resourcePath(r, ns, name) + query });
  }

  async list<T extends KubeObject>(r: ResourceRef, options: ListOptions = {}): Promise<KubeList<T>> {
    const path = resourcePath(r, options.namespace) + listQuery(options);
    return this.#call<KubeList<T>>({ verb: 'list', r, method: 'GET', path });
  }

  async create<T extends KubeObject>(r: ResourceRef, body: T, options: WriteOptions = {}): Promise<T> {
    const ns = requireNamespace(r, options.namespace ?? body.metadata.namespace, 'create');
    const path = resourcePath(r, ns) + writeQuery(options);
    return this.#call<T>({ verb: 'create', r, method: 'POST', path, body, contentType: 'application/json' });
  }

  async replace<T extends KubeObject>(r: ResourceRef, body: T, options: WriteOptions = {}): Promise<T> {
    const name = body.metadata.name;
    if (!name) throw invalidCall(`replace of ${resourceLabel(r)} needs metadata.name`);
    const ns = requireNamespace(r, options.namespace ?? body.metadata.namespace, 'replace');
    const path = resourcePath(r, ns, name) + writeQuery(options);
    return this.#call<T>({ verb: 'update', r, method: 'PUT', path, body, contentType: 'application/json' });
  }

  async patch<T extends KubeObject>(
    r: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options: WriteOptions = {},
  ): Promise<T> {
    const ns = requireNamespace(r, options.namespace, 'patch');
    const path = resourcePath(r, ns, name) + writeQuery(options, type);
    return this.#call<T>({ verb: 'patch', r, method: 'PATCH', path, body: patch, contentType: patchContentType(type) });
  }

  async delete(r: ResourceRef, name: string, options: DeleteOptions = {}): Promise<void> {
    const ns = requireNamespace(r, options.namespace, 'delete');
    const body = deleteBody(options);
    const contentType = body === undefined ? undefined : 'application/json';
    await this.#call<unknown>({
      verb: 'delete',
      r,
      method: 'DELETE',
      path: resourcePath(r, ns, name),
      body,
      contentType,
    });
  }

  /**
   * Streams a watch. Resolves when the server ends the stream or `signal` aborts; rejects on an HTTP error at
   * connect (410 gives a `Gone` error), a broken connection or a malformed event. A throw from `onEvent` ends the
   * watch and rejects with that error: it is never swallowed.
   */
  async watch<T extends KubeObject>(
    r: ResourceRef,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) return;
    const path = resourcePath(r, options.namespace) + watchQuery(options);
    const call: Call = { verb: 'watch', r, method: 'GET', path };
    const res = await this.#open(call, signal);
    if (res === undefined) return;
    const decoder = new NdjsonDecoder();
    const deliver = (values: unknown[]): void => {
      for (const value of values) {
        try {
          onEvent(value as WatchEvent<T>);
        } catch (err) {
          throw new HandlerError(err);
        }
      }
    };
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) deliver(decoder.push(chunk));
      deliver(decoder.end());
    } catch (err) {
      res.destroy();
      if (err instanceof HandlerError) throw err.inner;
      if (signal.aborted) return;
      if (err instanceof SyntaxError) {
        throw new KubeApiError({ code: 0, reason: 'InvalidWatchEvent', message: `watch ${path}: ${err.message}` });
      }
      throw transportError(err, `watch ${path}`, false);
    }
  }

  /** Opens a watch: resolves with the 2xx response, `undefined` when aborted first, or rejects. */
  async #open(call: Call, signal: AbortSignal): Promise<http.IncomingMessage | undefined> {
    const started = performance.now();
    let code = 0;
    try {
      const res = await this.#dispatch(call, signal, this.#timeoutMs);
      code = res.statusCode ?? 0;
      if (code >= 200 && code < 300) return res;
      const body = await readBody(res);
      throw errorFromResponse({
        code,
        body,
        retryAfterHeader: res.headers['retry-after'],
        nowMs: Date.now(),
        what: `watch ${call.path}`,
      });
    } catch (err) {
      if (signal.aborted && !(err instanceof KubeApiError && err.code !== 0)) return undefined;
      throw err;
    } finally {
      this.#report(call, code, started);
    }
  }

  async #call<T>(call: Call): Promise<T> {
    const started = performance.now();
    let code = 0;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    try {
      const res = await this.#dispatch(call, timeout.signal, this.#timeoutMs);
      code = res.statusCode ?? 0;
      const body = await readBody(res);
      if (code < 200 || code >= 300) {
        throw errorFromResponse({
          code,
          body,
          retryAfterHeader: res.headers['retry-after'],
          nowMs: Date.now(),
          what: `${call.method} ${call.path}`,
        });
      }
      return (body === '' ? undefined : JSON.parse(body)) as T;
    } catch (err) {
      if (err instanceof KubeApiError) throw err;
      if (err instanceof SyntaxError) {
        throw new KubeApiError({
          code,
          reason: 'InvalidResponse',
          message: `${call.method} ${call.path}: ${err.message}`,
        });
      }
      throw transportError(err, `${call.method} ${call.path}`, timeout.signal.aborted);
    } finally {
      clearTimeout(timer);
      this.#report(call, code, started);
    }
  }

  /** Sends one request through the shared agent; resolves when the response headers arrive. */
  async #dispatch(call: Call, signal: AbortSignal, headerTimeoutMs: number): Promise<http.IncomingMessage> {
    const wait = this.#limiter?.reserve() ?? 0;
    if (wait > 0) await abortableSleep(wait, signal);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.#userAgent,
      ...(await this.#auth()),
    };
    const payload = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
    if (payload !== undefined) {
      headers['Content-Type'] = call.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const url = new URL(joinPath(this.#base.pathname, call.path), this.#base);
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.#transport.request(url, { method: call.method, headers, agent: this.#agent, signal });
      const timer = setTimeout(
        () => req.destroy(new Error(`no response headers after ${headerTimeoutMs} ms`)),
        headerTimeoutMs,
      );
      req.once('response', (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      req.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(payload);
    });
  }

  #report(call: Call, code: number, started: number): void {
    if (this.#onRequest === undefined) return;
    try {
      this.#onRequest({
        verb: call.verb,
        resource: resourceLabel(call.r),
        code,
        durationMs: performance.now() - started,
      });
    } catch {
      // Metrics must never break an API call.
    }
  }
}

/** Carries a throw of a watch callback through the stream loop, so it is not mistaken for a transport error. */
class HandlerError extends Error {
  constructor(readonly inner: unknown) {
    super('watch event handler threw');
  }
}

function joinPath(prefix: string, path: string): string {
  return prefix === '/' || prefix === '' ? path : `${prefix.replace(/\/$/, '')}${path}`;
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('aborted while waiting for the client rate limiter'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted while waiting for the client rate limiter'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
