/**
 * A kubeconfig loader of our own, for the operator and the CLI.
 *
 * `@kubernetes/client-node`'s `KubeConfig` imports the whole generated API client with it: measured in the
 * operator's heap, that is about 15 MB of retained module source and 8 MB of compiled code, a quarter of the
 * operator's memory, for a class of which we use four fields. This loader reads the kubeconfig YAML (or the
 * in-cluster ServiceAccount) into the same shapes (`Cluster`, `User`) and covers bearer tokens, token files (the
 * rotated in-cluster token), client certificates, basic auth and impersonation. Only a user that needs an `exec`
 * credential plugin or an `auth-provider` makes it import client-node, on first use, for its authenticators.
 *
 * Files are found like client-node's `loadFromDefault`: `--kubeconfig`, else `$KUBECONFIG` (several files, `:`
 * separated, merged with the first one winning), else `~/.kube/config`, else the in-cluster ServiceAccount.
 */
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type { Cluster, User } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';

/** What {@link HttpKubeClient} needs from a kubeconfig; client-node's `KubeConfig` fits too. */
export interface KubeConfigLike {
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
  /** Adds plugin credentials (exec, auth-provider) to request options. */
  applyToHTTPSOptions(options: https.RequestOptions): Promise<void>;
}

/** Where a ServiceAccount's credentials are mounted in a pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type RawCluster = {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
};
type RawUser = {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  as?: string;
  exec?: unknown;
  'auth-provider'?: { name?: string; config?: Record<string, string> };
};
type RawDoc = {
  'current-context'?: string;
  clusters?: { name: string; cluster?: RawCluster }[];
  users?: { name: string; user?: RawUser }[];
  contexts?: { name: string; context?: { cluster?: string; user?: string } }[];
};

/** A loaded kubeconfig: its current cluster and user, in client-node's shapes. */
export class LightKubeConfig implements KubeConfigLike {
  #plugin: Promise<KubeConfigLike> | undefined;

  constructor(
    private readonly cluster: Cluster | null,
    private readonly user: User | null,
    /** The files it came from, for client-node when a plugin is needed. */
    private readonly files: readonly string[],
  ) {}

  getCurrentCluster(): Cluster | null {
    return this.cluster;
  }

  getCurrentUser(): User | null {
    return this.user;
  }

  async applyToHTTPSOptions(options: https.RequestOptions): Promise<void> {
    this.#plugin ??= loadWithClientNode(this.files);
    await (await this.#plugin).applyToHTTPSOptions(options);
  }
}

/** Loads `path` (the first of `a:b` lists), or the default locations; see the module comment. */
export function loadKubeConfig(path?: string, env: NodeJS.ProcessEnv = process.env): LightKubeConfig {
  if (path) return fromFiles([path.split(delimiter)[0]!]);
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '' && existsSync(f));
  if (fromEnv.length > 0) return fromFiles(fromEnv);
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFiles([home]);
  if (env.KUBERNETES_SERVICE_HOST) return inCluster(env);
  throw new Error(
    'no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod with a ServiceAccount',
  );
}

/** The in-cluster configuration: the API server from the service environment, the mounted token and CA. */
export function inCluster(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): LightKubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new LightKubeConfig(
    { name: 'inCluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false },
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } },
    [],
  );
}

function fromFiles(files: string[]): LightKubeConfig {
  const docs = files.map((file) => ({ file, doc: (parseYaml(readFileSync(file, 'utf8')) ?? {}) as RawDoc }));
  // Merged like kubectl: the first file that names an entry (or the current context) wins.
  const find = <T extends { name: string }>(pick: (d: RawDoc) => T[] | undefined, name: string | undefined) => {
    for (const { file, doc } of docs) {
      const entry = pick(doc)?.find((e) => e.name === name);
      if (entry) return { entry, dir: dirname(file) };
    }
    return undefined;
  };
  const current = docs.find((d) => d.doc['current-context'])?.doc['current-context'];
  if (!current) throw new Error(`kubeconfig ${files.join(', ')}: no current-context`);
  const context = find((d) => d.contexts, current)?.entry.context;
  if (!context) throw new Error(`kubeconfig ${files.join(', ')}: context ${current} not found`);
  const cluster = find((d) => d.clusters, context.cluster);
  const user = find((d) => d.users, context.user);
  return new LightKubeConfig(
    cluster ? toCluster(cluster.entry.name, cluster.entry.cluster ?? {}, cluster.dir) : null,
    user ? toUser(user.entry.name, user.entry.user ?? {}, user.dir) : null,
    files,
  );
}

function toCluster(name: string, c: RawCluster, dir: string): Cluster {
  return {
    name,
    server: (c.server ?? '').replace(/\/+$/, ''),
    caData: c['certificate-authority-data'],
    caFile: absolute(dir, c['certificate-authority']),
    skipTLSVerify: c['insecure-skip-tls-verify'] === true,
    tlsServerName: c['tls-server-name'],
    proxyUrl: c['proxy-url'],
  };
}

function toUser(name: string, u: RawUser, dir: string): User {
  const tokenFile = absolute(dir, u.tokenFile);
  return {
    name,
    token: u.token,
    certData: u['client-certificate-data'],
    certFile: absolute(dir, u['client-certificate']),
    keyData: u['client-key-data'],
    keyFile: absolute(dir, u['client-key']),
    username: u.username,
    password: u.password,
    impersonateUser: u.as,
    exec: u.exec,
    authProvider:
      u['auth-provider'] ?? (tokenFile && !u.token ? { name: 'tokenFile', config: { tokenFile } } : undefined),
  };
}

function absolute(dir: string, file: string | undefined): string | undefined {
  if (!file) return undefined;
  return isAbsolute(file) ? file : join(dir, file);
}

/** client-node's KubeConfig, imported only now, for its exec and auth-provider authenticators. */
async function loadWithClientNode(files: readonly string[]): Promise<KubeConfigLike> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (files.length === 1) kc.loadFromFile(files[0]!);
  else kc.loadFromDefault();
  return kc;
}
