/**
 * JSON-lines logging with pino and one fixed set of reconcile keys.
 *
 * Velero's logs spell the same key three ways (`dataupload`, `Dataupload`, `Datadupload`), which breaks every log
 * query. Here the keys are a type: call sites build a reconcile logger through {@link reconcileLogger} and cannot
 * misspell them.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

/** pino's levels, plus `silent` to turn logging off (tests). */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The accepted `--log-level` / `LOG_LEVEL` values. */
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze([
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
]);

/** A type guard for {@link LogLevel}, for flag and environment parsing. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** The logger type every module takes by injection. */
export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: LogLevel;
  /** Where JSON lines go; stdout (synchronous, so nothing is lost on exit) when absent. */
  destination?: DestinationStream;
  /** Fields on every line, e.g. `{ component: 'dataupload-operator' }`. */
  base?: Record<string, string>;
}

/**
 * Field names whose values never reach the log, at any of the first three nesting levels (a request's headers,
 * an error's config, ...). Both spellings of `Authorization` appear in HTTP header objects.
 */
export const REDACTED_FIELDS: readonly string[] = Object.freeze([
  'authorization',
  'Authorization',
  'token',
  'password',
  'bearer',
  'bearerToken',
]);

/** The redaction paths for {@link REDACTED_FIELDS}: pino's wildcards match one level each. */
export function redactionPaths(fields: readonly string[] = REDACTED_FIELDS): string[] {
  return fields.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
}

/** A JSON-lines logger: ISO timestamps, level names instead of numbers, secrets redacted. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: options.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactionPaths(), censor: '[REDACTED]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * The fixed key set of reconcile logs. `controller`, `namespace` and `name` identify the object; `reconcileID`
 * ties together the lines of one pass; `phase` is the DataUpload phase the pass observed.
 */
export interface LogKeys {
  controller: string;
  namespace: string;
  name: string;
  reconcileID?: string;
  phase?: string;
}

/** The names of {@link LogKeys}, for tests and log-query documentation. */
export const LOG_KEY_NAMES: readonly (keyof LogKeys)[] = Object.freeze([
  'controller',
  'namespace',
  'name',
  'reconcileID',
  'phase',
]);

/**
 * A child logger carrying the reconcile keys on every line. Keys that are `undefined` are left out rather than
 * logged as empty, so a query on `phase` only matches lines that know it.
 */
export function reconcileLogger(parent: Logger, keys: LogKeys): Logger {
  const bindings: Record<string, string> = {};
  for (const key of LOG_KEY_NAMES) {
    const value = keys[key];
    if (value !== undefined) bindings[key] = value;
  }
  return parent.child(bindings);
}

/** A logger that drops everything; the default where a logger is optional. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
