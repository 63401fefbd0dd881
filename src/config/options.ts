/**
 * The operator's options for `run`, from command-line flags and environment variables (flags win over the
 * environment, which wins over defaults). Flag names follow Velero's node-agent where one exists
 * (`--node-agent-configmap`, `--data-mover-prepare-timeout`) and controller-runtime's otherwise
 * (`--leader-elect`, `--metrics-bind-address`, `--health-probe-bind-address`). Boolean flags take Go's forms:
 * `--leader-elect`, `--leader-elect=false`.
 */
import { hostname as osHostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseGoDuration } from '../api/duration.js';
import { deepFreeze } from './deep-freeze.js';
import { closestName } from './suggest.js';
import { dnsLabelProblems, dnsSubdomainProblems } from './kube-validation.js';

/** A `host:port` to listen on; an empty host means every interface. */
export interface BindAddress {
  readonly host: string;
  readonly port: number;
}

/** The backupPod's security context: Velero's (`runAsUser: 0`) or the restricted Pod Security profile. */
export type BackupPodSecurityContext = 'root' | 'restricted';

/** Log levels (pino's names; Velero's `warning` and `panic` are accepted as `warn` and `fatal`). */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** The options of `run`, frozen. */
export interface OperatorOptions {
  /** Velero's namespace: DataUploads outside it are never touched, and the node-agent ConfigMap lives there. */
  readonly namespace: string;
  /** Name of the node-agent ConfigMap; `undefined` means no config (Velero's defaults). */
  readonly nodeAgentConfigMap?: string;
  /** How long a DataUpload may stay Accepted before it fails (Velero's `--data-mover-prepare-timeout`). */
  readonly prepareTimeoutMs: number;
  /** Reconcile workers. */
  readonly workers: number;
  /** At most this many DataUploads being exposed at once (see observe.ts, `exposing`); 0: no limit. */
  readonly maxConcurrentExposes: number;
  readonly leaderElect: boolean;
  readonly leaderElectionNamespace: string;
  readonly leaseName: string;
  /** Where `/metrics` listens; `undefined` when disabled with `0`. */
  readonly metricsBindAddress?: BindAddress;
  /** Where `/healthz` and `/readyz` listen; `undefined` when disabled with `0`. */
  readonly healthProbeBindAddress?: BindAddress;
  /** The node this pod runs on (downward API), if known. */
  readonly nodeName?: string;
  /** This pod's name: the leader-election identity. */
  readonly podName: string;
  /** Image of the backupPod; overrides the one inherited from the node-agent DaemonSet. */
  readonly backupPodImage?: string;
  /** ServiceAccount of the backupPod; overrides the inherited one. */
  readonly backupPodServiceAccount?: string;
  /** DaemonSet whose pod template the backupPod inherits from (image, SA, env, volumes); `undefined`: none. */
  readonly inheritFromNodeAgent?: string;
  readonly backupPodSecurityContext: BackupPodSecurityContext;
  readonly logLevel: LogLevel;
  /** Client-side request rate limit towards the API server; 0 means off. */
  readonly kubeApiQps: number;
  /** Burst of that rate limit; 0 means off. */
  readonly kubeApiBurst: number;
  /**
   * Path of a kubeconfig; `undefined` means in-cluster config or the default kubeconfig. When it comes from
   * `KUBECONFIG` it may be a list of paths, as kubectl allows.
   */
  readonly kubeconfig?: string;
}

/** Outcome of {@link parseOperatorOptions}: every problem is reported, each naming its flag or variable. */
export type OperatorOptionsResult =
  { readonly ok: true; readonly options: OperatorOptions } | { readonly ok: false; readonly errors: readonly string[] };

/** One flag, for parsing and for `--help`. */
interface FlagSpec {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly env?: string;
  readonly boolean?: boolean;
  readonly valueName: string;
  readonly defaultText?: string;
  readonly description: string;
}

const DEFAULT_PREPARE_TIMEOUT = '30m';
const DEFAULT_PREPARE_TIMEOUT_MS = 30 * 60_000;
/**
 * Enough to keep the API server, the CSI driver and the scheduler busy (throughput × time to expose one), few
 * enough that each exposes quickly; measured with `npm run bench`.
 */
export const DEFAULT_MAX_CONCURRENT_EXPOSES = 32;

const FLAGS: readonly FlagSpec[] = deepFreeze([
  {
    name: 'namespace',
    env: 'VELERO_NAMESPACE',
    valueName: 'name',
    defaultText: 'velero',
    description: "Velero's namespace; only DataUploads there are handled",
  },
  {
    name: 'node-agent-configmap',
    valueName: 'name',
    description: 'ConfigMap in that namespace holding the node-agent JSON (read once at start)',
  },
  {
    name: 'prepare-timeout',
    aliases: ['data-mover-prepare-timeout'],
    valueName: 'duration',
    defaultText: DEFAULT_PREPARE_TIMEOUT,
    description: 'how long a DataUpload may wait for its backupPod before it fails (Go duration)',
  },
  { name: 'workers', valueName: 'n', defaultText: '4', description: 'concurrent reconciles' },
  {
    name: 'max-concurrent-exposes',
    valueName: 'n',
    defaultText: String(DEFAULT_MAX_CONCURRENT_EXPOSES),
    description:
      'DataUploads being exposed at once (accepted; a backupPod older than 5s no longer counts); more wait in New, first come first served, so a burst reaches Prepared in order; 0: no limit',
  },
  {
    name: 'leader-elect',
    boolean: true,
    valueName: 'bool',
    defaultText: 'true',
    description: 'elect a leader with a Lease; only the leader reconciles',
  },
  {
    name: 'leader-election-namespace',
    valueName: 'name',
    defaultText: 'the namespace',
    description: 'namespace of the Lease',
  },
  { name: 'lease-name', valueName: 'name', defaultText: 'dataupload-operator', description: 'name of the Lease' },
  {
    name: 'metrics-bind-address',
    valueName: 'host:port',
    defaultText: ':8080',
    description: 'where Prometheus metrics are served; 0 disables them',
  },
  {
    name: 'health-probe-bind-address',
    valueName: 'host:port',
    defaultText: ':8081',
    description: 'where /healthz and /readyz are served; 0 disables them',
  },
  {
    name: 'backup-pod-image',
    valueName: 'image',
    description: 'image of the backupPod (default: the node-agent DaemonSet image)',
  },
  {
    name: 'backup-pod-service-account',
    valueName: 'name',
    description: 'ServiceAccount of the backupPod (default: the node-agent DaemonSet one)',
  },
  {
    name: 'node-agent-daemonset',
    valueName: 'name',
    defaultText: 'node-agent',
    description: 'DaemonSet the backupPod inherits image, ServiceAccount, env and volumes from; empty: none',
  },
  {
    name: 'backup-pod-security-context',
    valueName: 'root|restricted',
    defaultText: 'root',
    description: "root: Velero's runAsUser 0; restricted: non-root, no privilege escalation, drop ALL, RuntimeDefault",
  },
  {
    name: 'log-level',
    valueName: 'level',
    defaultText: 'info',
    description: 'trace, debug, info, warn(ing), error or fatal',
  },
  {
    name: 'kube-api-qps',
    valueName: 'qps',
    defaultText: '0, off',
    description: 'client-side rate limit towards the API server',
  },
  { name: 'kube-api-burst', valueName: 'n', defaultText: '0, off', description: 'burst of that rate limit' },
  {
    name: 'kubeconfig',
    env: 'KUBECONFIG',
    valueName: 'path',
    description: 'kubeconfig file; without one, the in-cluster config',
  },
]);

/** Environment variables read besides the flags' own. */
const ENV_NODE_NAME = 'NODE_NAME';
const ENV_POD_NAME = 'POD_NAME';
const ENV_HOSTNAME = 'HOSTNAME';

/** The usage text of the `run` options, one flag a line. */
export function operatorOptionsUsage(): string {
  const lines = FLAGS.map((flag) => {
    const names = [flag.name, ...(flag.aliases ?? [])].map((name) => `--${name}`).join(', ');
    const head = `  ${names}${flag.boolean ? `[=${flag.valueName}]` : ` <${flag.valueName}>`}`;
    const extras = [
      flag.defaultText === undefined ? undefined : `default ${flag.defaultText}`,
      flag.env === undefined ? undefined : `env ${flag.env}`,
    ].filter((extra) => extra !== undefined);
    return `${head}\n      ${flag.description}${extras.length > 0 ? ` (${extras.join('; ')})` : ''}`;
  });
  lines.push(`  env ${ENV_NODE_NAME}: the node this pod runs on; env ${ENV_POD_NAME}: the leader-election identity`);
  return lines.join('\n');
}

/** A raw value and where it came from, for error messages: `--workers` or `env VELERO_NAMESPACE`. */
interface RawValue {
  readonly text: string;
  readonly origin: string;
}

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/**
 * Parses the options of `run`.
 * @param argv the arguments after the subcommand.
 * @param env the process environment.
 * @param hostname the fallback pod name when `POD_NAME` and `HOSTNAME` are unset.
 */
export function parseOperatorOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  hostname: () => string = osHostname,
): OperatorOptionsResult {
  const errors: string[] = [];
  const raw = readRawValues(argv, env, errors);
  const take = <T>(flag: string, parse: (text: string) => Parsed<T>, fallback: T): T => {
    const value = raw.get(flag);
    if (value === undefined) return fallback;
    const parsed = parse(value.text);
    if (parsed.ok) return parsed.value;
    errors.push(`invalid ${value.origin} ${JSON.stringify(value.text)}: ${parsed.problem}`);
    return fallback;
  };
  const namespace = take('namespace', parseNamespace, 'velero');
  const options: OperatorOptions = {
    namespace,
    nodeAgentConfigMap: take('node-agent-configmap', optional(parseObjectName), undefined),
    prepareTimeoutMs: take('prepare-timeout', parsePositiveDuration, DEFAULT_PREPARE_TIMEOUT_MS),
    workers: take('workers', parsePositiveInteger, 4),
    maxConcurrentExposes: take('max-concurrent-exposes', parseNonNegativeInteger, DEFAULT_MAX_CONCURRENT_EXPOSES),
    leaderElect: take('leader-elect', parseBoolean, true),
    leaderElectionNamespace: take('leader-election-namespace', parseNamespace, namespace),
    leaseName: take('lease-name', parseObjectName, 'dataupload-operator'),
    metricsBindAddress: take('metrics-bind-address', parseBindAddress, { host: '', port: 8080 }),
    healthProbeBindAddress: take('health-probe-bind-address', parseBindAddress, { host: '', port: 8081 }),
    nodeName: nonEmpty(env[ENV_NODE_NAME]),
    podName: nonEmpty(env[ENV_POD_NAME]) ?? nonEmpty(env[ENV_HOSTNAME]) ?? hostname(),
    backupPodImage: take('backup-pod-image', parseImage, undefined),
    backupPodServiceAccount: take('backup-pod-service-account', parseObjectName, undefined),
    inheritFromNodeAgent: take('node-agent-daemonset', optional(parseObjectName), 'node-agent'),
    backupPodSecurityContext: take('backup-pod-security-context', parseSecurityContext, 'root'),
    logLevel: take('log-level', parseLogLevel, 'info'),
    kubeApiQps: take('kube-api-qps', parseNonNegativeNumber, 0),
    kubeApiBurst: take('kube-api-burst', parseNonNegativeInteger, 0),
    kubeconfig: take('kubeconfig', optional(parsePath), undefined),
  };
  if (errors.length > 0) return deepFreeze({ ok: false, errors });
  return deepFreeze({ ok: true, options: withoutUndefined(options) });
}

/**
 * Tokenizes argv with `parseArgs` (non-strict, so that every problem is collected rather than the first thrown),
 * then layers the environment under the flags. Aliases are folded into their flag's name.
 */
function readRawValues(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  errors: string[],
): Map<string, RawValue> {
  const byName = new Map<string, FlagSpec>();
  for (const flag of FLAGS) for (const name of [flag.name, ...(flag.aliases ?? [])]) byName.set(name, flag);
  const { tokens } = parseArgs({
    args: argv.map((arg) => (byName.get(arg.slice(2))?.boolean && arg.startsWith('--') ? `${arg}=true` : arg)),
    options: Object.fromEntries([...byName.keys()].map((name) => [name, { type: 'string' as const }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const raw = new Map<string, RawValue>();
  for (const flag of FLAGS) {
    const text = flag.env === undefined ? undefined : nonEmpty(env[flag.env]);
    if (text !== undefined) raw.set(flag.name, { text, origin: `env ${flag.env}` });
  }
  const fromFlags = new Map<string, string>();
  // The argument right after an unknown `--flag` is probably its value, not a second mistake to report.
  let valueOfUnknownAt = -1;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (token.index !== valueOfUnknownAt) errors.push(`unexpected argument ${JSON.stringify(token.value)}`);
      continue;
    }
    if (token.kind !== 'option') continue;
    const flag = byName.get(token.name);
    if (flag === undefined || !token.rawName.startsWith('--')) {
      errors.push(`unknown flag ${token.rawName}${suggestFlag(token.name, byName)}`);
      if (!token.inlineValue) valueOfUnknownAt = token.index + 1;
      continue;
    }
    if (token.value === undefined) {
      errors.push(`flag ${token.rawName} needs a value`);
      continue;
    }
    const earlier = fromFlags.get(flag.name);
    if (earlier !== undefined && earlier !== token.rawName) {
      errors.push(`flags ${earlier} and ${token.rawName} both set the same option; give only one`);
      continue;
    }
    fromFlags.set(flag.name, token.rawName);
    raw.set(flag.name, { text: token.value, origin: token.rawName });
  }
  return raw;
}

/** Shortest unknown name that is suggested the one flag it begins. */
const MIN_PREFIX_LENGTH = 4;

/**
 * A close flag name, or the one flag that starts with the unknown name: Velero's v1.17 docs tell users to pass
 * `--node-agent-config`, which is a prefix of the real `--node-agent-configmap`.
 */
function suggestFlag(name: string, byName: ReadonlyMap<string, FlagSpec>): string {
  const known = [...byName.keys()];
  const normalized = name.replace(/_/g, '-').toLowerCase();
  const extensions =
    normalized.length >= MIN_PREFIX_LENGTH ? known.filter((candidate) => candidate.startsWith(normalized)) : [];
  const close = closestName(normalized, known) ?? (extensions.length === 1 ? extensions[0] : undefined);
  return close === undefined ? '' : `; did you mean --${close}?`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

// ---------------------------------------------------------------------------------------------------------------
// Value parsers: each returns the value or the problem, never throws.

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function problem<T>(text: string): Parsed<T> {
  return { ok: false, problem: text };
}

/** An empty value means "not set" (`--node-agent-configmap=` like Velero's empty flag). */
function optional<T>(parse: (text: string) => Parsed<T>): (text: string) => Parsed<T | undefined> {
  return (text) => (text === '' ? ok(undefined) : parse(text));
}

function parseNamespace(text: string): Parsed<string> {
  const problems = dnsLabelProblems(text);
  return problems.length === 0 ? ok(text) : problem(`a namespace name ${problems.join('; ')}`);
}

function parseObjectName(text: string): Parsed<string> {
  const problems = dnsSubdomainProblems(text);
  return problems.length === 0 ? ok(text) : problem(`an object name ${problems.join('; ')}`);
}

function parsePositiveDuration(text: string): Parsed<number> {
  const ms = parseGoDuration(text);
  if (ms === undefined || text.trim() !== text)
    return problem('expected a Go duration such as "30m", "1h30m" or "90s"');
  return ms > 0 ? ok(ms) : problem('must be greater than zero');
}

const INTEGER = /^\d+$/;
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

function parsePositiveInteger(text: string): Parsed<number> {
  const value = Number(text);
  return INTEGER.test(text) && Number.isSafeInteger(value) && value > 0
    ? ok(value)
    : problem('expected a positive integer');
}

function parseNonNegativeInteger(text: string): Parsed<number> {
  const value = Number(text);
  return INTEGER.test(text) && Number.isSafeInteger(value) ? ok(value) : problem('expected an integer >= 0');
}

function parseNonNegativeNumber(text: string): Parsed<number> {
  return NUMBER.test(text) ? ok(Number(text)) : problem('expected a number >= 0');
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

/** Go's `strconv.ParseBool` forms, which Velero's and controller-runtime's flags accept. */
function parseBoolean(text: string): Parsed<boolean> {
  if (TRUE_WORDS.has(text)) return ok(true);
  if (FALSE_WORDS.has(text)) return ok(false);
  return problem('expected true or false');
}

const BIND_ADDRESS = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/;
const MAX_PORT = 65535;

/** `host:port`, `:port` or `[ipv6]:port`; `0` disables the listener (controller-runtime's convention). */
function parseBindAddress(text: string): Parsed<BindAddress | undefined> {
  if (text === '0') return ok(undefined);
  const match = BIND_ADDRESS.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > MAX_PORT) {
    return problem('expected host:port, :port or [ipv6]:port with a port up to 65535, or 0 to disable');
  }
  return ok({ host: match[1] ?? match[2] ?? '', port });
}

function parseImage(text: string): Parsed<string> {
  return text !== '' && !/\s/.test(text) ? ok(text) : problem('expected an image reference without spaces');
}

function parsePath(text: string): Parsed<string> {
  return ok(text);
}

function parseSecurityContext(text: string): Parsed<BackupPodSecurityContext> {
  return text === 'root' || text === 'restricted' ? ok(text) : problem('expected root or restricted');
}

const LOG_LEVELS: Readonly<Record<string, LogLevel>> = Object.freeze({
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  panic: 'fatal',
});

function parseLogLevel(text: string): Parsed<LogLevel> {
  const level = Object.hasOwn(LOG_LEVELS, text.toLowerCase()) ? LOG_LEVELS[text.toLowerCase()] : undefined;
  return level === undefined ? problem('expected trace, debug, info, warn, error or fatal') : ok(level);
}
