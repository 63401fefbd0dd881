/**
 * Certificates, static tokens and kubeconfigs for the test control plane, made with the system's openssl.
 * EC P-256 keys: as good as RSA for a loopback test cluster and much faster to generate.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';

const run = promisify(execFile);

/** A static-token identity of the test cluster. */
export interface Identity {
  /** File-name friendly key, e.g. `kcm`. */
  readonly key: string;
  readonly user: string;
  readonly groups: readonly string[];
  readonly token: string;
}

/** Paths of the generated PKI. */
export interface Pki {
  readonly dir: string;
  readonly caFile: string;
  readonly apiServerCert: string;
  readonly apiServerKey: string;
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
  readonly tokenFile: string;
  readonly identities: Readonly<Record<IdentityKey, Identity>>;
}

/** The identities this harness creates. */
export type IdentityKey = 'admin' | 'kcm' | 'scheduler' | 'kwok' | 'fakeCsi';

const SUBJECT_ALT_NAMES = [
  'IP:127.0.0.1',
  'IP:10.96.0.1',
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
].join(',');

/** Creates the CA, the API server's serving certificate, the service-account signing key and the token file. */
export async function createPki(runDir: string): Promise<Pki> {
  const dir = join(runDir, 'pki');
  await mkdir(dir, { recursive: true });
  const p = (name: string): string => join(dir, name);
  await createCa(p('ca.key'), p('ca.crt'));
  await Promise.all([
    createServingCert({ dir, caKey: p('ca.key'), caCert: p('ca.crt'), name: 'apiserver' }),
    createEcKeyPair(p('sa.key'), p('sa.pub')),
  ]);
  const identities = makeIdentities();
  const tokenFile = join(runDir, 'tokens.csv');
  await writeFile(tokenFile, tokenCsv(Object.values(identities)), { mode: 0o600 });
  return {
    dir,
    caFile: p('ca.crt'),
    apiServerCert: p('apiserver.crt'),
    apiServerKey: p('apiserver.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPub: p('sa.pub'),
    tokenFile,
    identities,
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr || String(err)}`);
  }
}

async function createCa(key: string, cert: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '3650',
    '-subj',
    '/CN=dataupload-operator-e2e-ca',
    '-keyout',
    key,
    '-out',
    cert,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

async function createServingCert(o: { dir: string; caKey: string; caCert: string; name: string }): Promise<void> {
  const base = join(o.dir, o.name);
  const ext = `${base}.ext`;
  await writeFile(
    ext,
    `subjectAltName=${SUBJECT_ALT_NAMES}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`,
  );
  await openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=kube-apiserver',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.csr`,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    o.caCert,
    '-CAkey',
    o.caKey,
    '-CAcreateserial',
    '-days',
    '3650',
    '-extfile',
    ext,
    '-out',
    `${base}.crt`,
  ]);
}

async function createEcKeyPair(key: string, pub: string): Promise<void> {
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await openssl(['ec', '-in', key, '-pubout', '-out', pub]);
}

function makeIdentities(): Record<IdentityKey, Identity> {
  const id = (key: string, user: string, groups: string[]): Identity => ({
    key,
    user,
    groups,
    token: randomBytes(24).toString('hex'),
  });
  return {
    admin: id('admin', 'admin', ['system:masters']),
    // One identity for every controller (--use-service-account-credentials=false), hence masters.
    kcm: id('kcm', 'system:kube-controller-manager', ['system:masters']),
    // Bootstrap RBAC already binds this user name; no extra groups needed.
    scheduler: id('scheduler', 'system:kube-scheduler', []),
    kwok: id('kwok', 'kwok', ['system:masters']),
    fakeCsi: id('fake-csi', 'fake-csi', ['system:masters']),
  };
}

function tokenCsv(identities: Identity[]): string {
  return identities
    .map((i) => [i.token, i.user, `uid-${i.key}`, ...(i.groups.length ? [`"${i.groups.join(',')}"`] : [])].join(','))
    .join('\n')
    .concat('\n');
}

/** A kubeconfig for one token identity. */
export interface KubeconfigSpec {
  readonly path: string;
  readonly server: string;
  readonly caFile: string;
  readonly user: string;
  readonly token: string;
}

/** Writes a token kubeconfig with a single context named `e2e`. */
export async function writeKubeconfig(spec: KubeconfigSpec): Promise<void> {
  await writeFile(spec.path, kubeconfigYaml(spec), { mode: 0o600 });
}

/** The YAML text of a token kubeconfig. */
export function kubeconfigYaml(spec: Omit<KubeconfigSpec, 'path'>): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server: spec.server, 'certificate-authority': spec.caFile } }],
    users: [{ name: spec.user, user: { token: spec.token } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: spec.user, namespace: 'default' } }],
    'current-context': 'e2e',
  });
}
