/**
 * The node-agent ConfigMap (`--node-agent-configmap`): Velero v1.18.3's JSON, validated field by field. Every field
 * of v1.18.3's `NodeAgentConfigs` is known, so none of them draws an "unknown key" warning.
 *
 * Compatibility with Velero (Go `encoding/json` into `NodeAgentConfigs`): keys of objects match case-insensitively,
 * unknown keys are ignored, and `null` means "absent". Where Velero is weak we are stricter or louder
 * (spec section 8, items 5–7): exactly one data key, repeated keys rejected, every error located by its JSON path
 * and reported together, warnings (with a suggestion) for keys that Velero silently ignores, `podResources` values
 * that stand on their own, and a deeply frozen result.
 *
 * The resolved config holds only known fields, under their canonical names, and only values that take effect:
 * - `loadConcurrency.globalConfig <= 0` is dropped with a warning (Velero then uses its default, 1);
 * - `perNodeConfig` rules with `number <= 0` are dropped with a warning (Velero skips them);
 * - a negative `prepareQueueLength` is dropped with a warning (only values > 0 enable the queue);
 * - empty strings that Velero reads as "not set" (`backupPVC[].storageClass`, `loadAffinity[].storageClass`,
 *   `priorityClassName`, `cachePVC.storageClass`) are dropped;
 * - a name repeated in `secretNames` or `configMapNames` is dropped with a warning (Velero copies it once);
 * - map keys (storage classes, labels, annotations) are sorted, so builders that iterate them are deterministic.
 */
import type { ConfigMap } from '../api/kube.js';
import { parseQuantity } from '../api/quantity.js';
import { deepFreeze } from './deep-freeze.js';
import { findDuplicateKeys, parseJsonText } from './json-text.js';
import {
  annotationsSizeProblems,
  dnsSubdomainProblems,
  labelValueProblems,
  qualifiedNameProblems,
} from './kube-validation.js';
import { closestName } from './suggest.js';
import type {
  BackupPVCConfig,
  CachePVCConfig,
  LabelSelector,
  LabelSelectorRequirement,
  LoadAffinity,
  LoadConcurrency,
  NodeAgentConfig,
  PodResources,
  RestorePVCConfig,
  RuledConfig,
} from './types.js';

/** A problem in the config. `path` locates it (a JSON path such as `backupPVC["gp3"].readOnly`, or the source). */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** Outcome of parsing a node-agent config; the whole result is deeply frozen. */
export type ConfigResult =
  | { readonly ok: true; readonly config: NodeAgentConfig; readonly warnings: readonly ConfigIssue[] }
  | { readonly ok: false; readonly errors: readonly ConfigIssue[]; readonly warnings: readonly ConfigIssue[] };

/** Renders an issue as one line: `backupPVC["gp3"].readOnly: expected boolean, got "yes"`. */
export function formatIssue(issue: ConfigIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
}

/**
 * Parses and validates the node-agent JSON, the value of the ConfigMap's single data key.
 * @param source names the text in document-level messages, e.g. `config.json`.
 */
export function parseNodeAgentConfigJson(text: string, source: string): ConfigResult {
  const log = new IssueLog();
  let body = text;
  if (body.startsWith(BYTE_ORDER_MARK)) {
    log.warn(source, 'the byte order mark (BOM) at the start is ignored; Velero rejects it, so remove it');
    body = body.slice(BYTE_ORDER_MARK.length);
  }
  if (body.trim() === '') {
    log.error(
      source,
      'the value is empty; expected a JSON object such as {"backupPVC": {...}} (Velero fails with "unexpected end of JSON input")',
    );
    return log.result(undefined);
  }
  const parsed = parseJsonText(body);
  if (!parsed.ok) {
    log.error(source, `invalid JSON at line ${parsed.line}, column ${parsed.column}: ${parsed.message}`);
    return log.result(undefined);
  }
  for (const duplicate of findDuplicateKeys(body)) {
    log.error(
      source,
      `duplicate key ${JSON.stringify(duplicate.key)} at line ${duplicate.line}, column ${duplicate.column}; keep only one (Velero silently merges or overrides repeated keys)`,
    );
  }
  return log.result(resolveConfig(parsed.value, log));
}

/**
 * Reads the node-agent config from its ConfigMap. Like Velero v1.18, the single key in `data` holds the JSON
 * whatever its name; zero or several keys are an error, and `binaryData` is never read.
 */
export function parseNodeAgentConfigMap(cm: ConfigMap): ConfigResult {
  const log = new IssueLog();
  const where = configMapName(cm);
  // The object comes from outside (the API server, or a manifest a user wrote), so its shape is checked too.
  const data: unknown = cm.data ?? {};
  if (!isPlainObject(data)) {
    log.error(`${where} data`, `expected an object of strings, got ${describe(data)}`);
    return log.result(undefined);
  }
  const keys = Object.keys(data).sort();
  const binaryKeys = isPlainObject(cm.binaryData) ? Object.keys(cm.binaryData).sort() : [];
  if (keys.length === 0) {
    log.error(
      where,
      binaryKeys.length > 0
        ? `only binaryData is set (${quoteList(binaryKeys)}); binaryData is not read (Velero does not read it either), put the JSON under data`
        : 'data is empty; expected exactly one key holding the node-agent JSON',
    );
    return log.result(undefined);
  }
  if (keys.length > 1) {
    log.error(
      where,
      `data has ${keys.length} keys (${quoteList(keys)}); expected exactly one key holding the node-agent JSON (Velero v1.18 rejects this too)`,
    );
    return log.result(undefined);
  }
  if (binaryKeys.length > 0) log.warn(where, `binaryData (${quoteList(binaryKeys)}) is ignored, as Velero does`);
  const key = keys[0]!;
  const value = data[key];
  if (typeof value !== 'string') {
    log.error(`${where} data${entrySuffix(key)}`, `expected string, got ${describe(value)}`);
    return log.result(undefined);
  }
  const inner = parseNodeAgentConfigJson(value, `${where} data${entrySuffix(key)}`);
  return inner.ok
    ? deepFreeze({ ok: true, config: inner.config, warnings: [...log.warnings, ...inner.warnings] })
    : deepFreeze({ ok: false, errors: inner.errors, warnings: [...log.warnings, ...inner.warnings] });
}

/**
 * Validates an already-parsed node-agent config value (for example one read from YAML) and resolves it.
 * Document-level issues are reported with an empty path.
 */
export function resolveNodeAgentConfig(value: unknown): ConfigResult {
  const log = new IssueLog();
  return log.result(resolveConfig(value, log));
}

// ---------------------------------------------------------------------------------------------------------------
// Issue collection and paths

const BYTE_ORDER_MARK = '\uFEFF';

/** Collects the issues of one parse; created per call, so parses share no state. */
class IssueLog {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];

  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  /** The frozen result: the config only when no error was found. */
  result(config: NodeAgentConfig | undefined): ConfigResult {
    if (this.errors.length === 0 && config !== undefined) {
      return deepFreeze({ ok: true, config, warnings: [...this.warnings] });
    }
    return deepFreeze({ ok: false, errors: [...this.errors], warnings: [...this.warnings] });
  }
}

/** Path of a struct field: `loadConcurrency.globalConfig`. */
function fieldPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}.${name}`;
}

/** Path of a map entry: `backupPVC["gp3"]`. Map keys are data, so they are always quoted. */
function entryPath(parent: string, key: string): string {
  return `${parent}${entrySuffix(key)}`;
}

function entrySuffix(key: string): string {
  return `[${JSON.stringify(key)}]`;
}

/** Path of an array element: `loadAffinity[0]`. */
function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

const MAX_DESCRIBED_LENGTH = 60;

/** The offending value as JSON, shortened: `"yes"`, `2.5`, `null`, `{"a":1}`. */
function describe(value: unknown): string {
  const json = value === undefined ? 'nothing' : JSON.stringify(value);
  return json.length > MAX_DESCRIBED_LENGTH ? `${json.slice(0, MAX_DESCRIBED_LENGTH - 3)}...` : json;
}

function quoteList(values: readonly string[]): string {
  return values.map((value) => JSON.stringify(value)).join(', ');
}

function configMapName(cm: ConfigMap): string {
  const { namespace, name } = isPlainObject(cm.metadata) ? (cm.metadata as ConfigMap['metadata']) : {};
  return `ConfigMap ${namespace ? `${namespace}/` : ''}${name ?? '(unnamed)'}`;
}

/** JSON `null` reads as "not set", like Go's `encoding/json`. */
function isAbsent(value: unknown): value is null | undefined {
  return value === null || value === undefined;
}

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Drops `undefined` properties, so the resolved config holds only what was set. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

// ---------------------------------------------------------------------------------------------------------------
// Field names: where each one belongs, for case-insensitive matching and for suggestions

const TOP_FIELDS = [
  'loadConcurrency',
  'loadAffinity',
  'backupPVC',
  'restorePVC',
  'podResources',
  'priorityClassName',
  'privilegedFsBackup',
  'cachePVC',
  'podLabels',
  'podAnnotations',
] as const;
const LOAD_CONCURRENCY_FIELDS = ['globalConfig', 'perNodeConfig', 'prepareQueueLength'] as const;
const RULED_CONFIG_FIELDS = ['nodeSelector', 'number'] as const;
const LOAD_AFFINITY_FIELDS = ['nodeSelector', 'storageClass'] as const;
const BACKUP_PVC_FIELDS = [
  'storageClass',
  'readOnly',
  'spcNoRelabeling',
  'annotations',
  'secretNames',
  'configMapNames',
] as const;
const RESTORE_PVC_FIELDS = ['ignoreDelayBinding', 'secretNames', 'configMapNames'] as const;
const POD_RESOURCES_FIELDS = [
  'cpuRequest',
  'memoryRequest',
  'cpuLimit',
  'memoryLimit',
  'ephemeralStorageRequest',
  'ephemeralStorageLimit',
] as const;
const CACHE_PVC_FIELDS = ['storageClass', 'residentThresholdInMB'] as const;
const LABEL_SELECTOR_FIELDS = ['matchLabels', 'matchExpressions'] as const;
const REQUIREMENT_FIELDS = ['key', 'operator', 'values'] as const;

const SELECTOR_HOME = '"loadAffinity[]" or "loadConcurrency.perNodeConfig[]"';
const BACKUP_PVC_HOME =
  'under the "backupPVC" entries, which are keyed by the source storage class: {"backupPVC": {"<class>": {...}}}';

/** Where a known field lives (`at ...` or `under ...`), for keys found in the wrong place; keyed by lowercase name. */
const FIELD_HOMES: ReadonlyMap<string, { readonly name: string; readonly home: string }> = new Map(
  (
    [
      ...TOP_FIELDS.map((name) => [name, 'at the top level']),
      ...LOAD_CONCURRENCY_FIELDS.map((name) => [name, 'under "loadConcurrency"']),
      ['number', 'under "loadConcurrency.perNodeConfig[]"'],
      ['nodeSelector', `under ${SELECTOR_HOME}`],
      ['storageClass', `under "loadAffinity[]" or "cachePVC", or ${BACKUP_PVC_HOME}`],
      ['readOnly', BACKUP_PVC_HOME],
      ['spcNoRelabeling', BACKUP_PVC_HOME],
      ['annotations', BACKUP_PVC_HOME],
      ['ignoreDelayBinding', 'under "restorePVC"'],
      ['secretNames', `under "restorePVC", or ${BACKUP_PVC_HOME}`],
      ['configMapNames', `under "restorePVC", or ${BACKUP_PVC_HOME}`],
      ...POD_RESOURCES_FIELDS.map((name) => [name, 'under "podResources"']),
      ['residentThresholdInMB', 'under "cachePVC"'],
      ...LABEL_SELECTOR_FIELDS.map((name) => [name, `in a "nodeSelector" of ${SELECTOR_HOME}`]),
      ...REQUIREMENT_FIELDS.map((name) => [name, 'under "nodeSelector.matchExpressions[]"']),
    ] as [string, string][]
  ).map(([name, home]) => [name.toLowerCase(), { name, home }]),
);

/**
 * Reads an object with known fields. Keys match case-insensitively as in Go (honoured, with a warning when the
 * case differs); two keys for the same field are an error, since Go would silently merge them; other keys are
 * ignored with a warning that suggests what was probably meant.
 * @returns the values by canonical field name, or `undefined` when the value is absent or not an object.
 */
function readStruct<K extends string>(
  value: unknown,
  path: string,
  fields: readonly K[],
  log: IssueLog,
): Partial<Record<K, unknown>> | undefined {
  if (isAbsent(value)) return undefined;
  if (!isPlainObject(value)) {
    log.error(path, `expected object, got ${describe(value)}`);
    return undefined;
  }
  const byLowerCase = new Map<string, K>(fields.map((field) => [field.toLowerCase(), field]));
  const usedKey = new Map<K, string>();
  const found: Partial<Record<K, unknown>> = {};
  for (const key of Object.keys(value)) {
    const field = byLowerCase.get(key.toLowerCase());
    if (field === undefined) {
      reportUnknownKey(key, path, fields, log);
      continue;
    }
    const previous = usedKey.get(field);
    if (previous !== undefined) {
      log.error(
        path,
        `"${previous}" and "${key}" both set "${field}" (keys match case-insensitively, as in Velero); keep only one`,
      );
      continue;
    }
    if (key !== field) {
      log.warn(
        path,
        `"${key}": did you mean "${field}"? It is read as "${field}" because Velero matches keys case-insensitively`,
      );
    }
    usedKey.set(field, key);
    found[field] = value[key];
  }
  return found;
}

function reportUnknownKey(key: string, path: string, fields: readonly string[], log: IssueLog): void {
  const home = FIELD_HOMES.get(key.toLowerCase());
  if (home !== undefined) {
    const here = path === '' ? 'at the top level' : 'here';
    const subject = key === home.name ? 'it' : `"${home.name}"`;
    log.warn(path, `"${key}": has no effect ${here} (Velero ignores it too); ${subject} belongs ${home.home}`);
    return;
  }
  const suggestion = closestName(key, fields);
  log.warn(path, `"${key}": unknown key, ignored${suggestion === undefined ? '' : `; did you mean "${suggestion}"?`}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Scalars, arrays and maps

function readBoolean(value: unknown, path: string, log: IssueLog): boolean | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value === 'boolean') return value;
  log.error(path, `expected boolean, got ${describe(value)}`);
  return undefined;
}

function readString(value: unknown, path: string, log: IssueLog): string | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value === 'string') return value;
  log.error(path, `expected string, got ${describe(value)}`);
  return undefined;
}

function readInteger(value: unknown, path: string, log: IssueLog): number | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  log.error(path, `expected integer, got ${describe(value)}`);
  return undefined;
}

/** Reads an array whose elements must all be present; a `null` element is an error. */
function readArray<T>(
  value: unknown,
  path: string,
  log: IssueLog,
  readElement: (element: unknown, path: string) => T | undefined,
): T[] | undefined {
  if (isAbsent(value)) return undefined;
  if (!Array.isArray(value)) {
    log.error(path, `expected array, got ${describe(value)}`);
    return undefined;
  }
  const elements: T[] = [];
  value.forEach((element: unknown, index) => {
    const path_ = indexPath(path, index);
    if (element === null) {
      log.error(path_, 'expected a value, got null');
      return;
    }
    const read = readElement(element, path_);
    if (read !== undefined) elements.push(read);
  });
  return elements;
}

/** How a string map's keys and values are checked. */
interface StringMapRules {
  /** What a key is, for messages: `label key`. */
  readonly keyKind: string;
  readonly keyProblems: (key: string) => string[];
  readonly valueKind?: string;
  readonly valueProblems?: (value: string) => string[];
}

/** Reads a `map[string]string`, with keys sorted. */
function readStringMap(
  value: unknown,
  path: string,
  log: IssueLog,
  rules: StringMapRules,
): Record<string, string> | undefined {
  if (isAbsent(value)) return undefined;
  if (!isPlainObject(value)) {
    log.error(path, `expected object of strings, got ${describe(value)}`);
    return undefined;
  }
  const entries: [string, string][] = [];
  for (const key of Object.keys(value).sort()) {
    const path_ = entryPath(path, key);
    const item = value[key];
    const keyProblems = rules.keyProblems(key);
    if (keyProblems.length > 0)
      log.error(path_, `invalid ${rules.keyKind} ${JSON.stringify(key)}: ${keyProblems.join('; ')}`);
    if (typeof item !== 'string') {
      log.error(path_, `expected string, got ${describe(item)}`);
      continue;
    }
    const valueProblems = rules.valueProblems?.(item) ?? [];
    if (valueProblems.length > 0) {
      log.error(path_, `invalid ${rules.valueKind ?? 'value'} ${describe(item)}: ${valueProblems.join('; ')}`);
    }
    entries.push([key, item]);
  }
  return Object.fromEntries(entries);
}

const LABEL_RULES: StringMapRules = Object.freeze({
  keyKind: 'label key',
  keyProblems: qualifiedNameProblems,
  valueKind: 'label value',
  valueProblems: labelValueProblems,
});

const ANNOTATION_RULES: StringMapRules = Object.freeze({
  keyKind: 'annotation key',
  keyProblems: qualifiedNameProblems,
});

function readLabels(value: unknown, path: string, log: IssueLog): Record<string, string> | undefined {
  return readStringMap(value, path, log, LABEL_RULES);
}

function readAnnotations(value: unknown, path: string, log: IssueLog): Record<string, string> | undefined {
  const annotations = readStringMap(value, path, log, ANNOTATION_RULES);
  if (annotations !== undefined) {
    for (const problem of annotationsSizeProblems(annotations)) log.error(path, problem);
  }
  return annotations;
}

/**
 * A storage class name used to create objects: a bad one is an error. Empty means "not set" and is dropped.
 */
function readStorageClassName(value: unknown, path: string, log: IssueLog): string | undefined {
  const name = readString(value, path, log);
  if (name === undefined || name === '') return undefined;
  const problems = dnsSubdomainProblems(name);
  if (problems.length > 0)
    log.error(path, `invalid storage class name ${JSON.stringify(name)}: ${problems.join('; ')}`);
  return name;
}

/** A storage class name that is only compared with others: a bad one can never match, which is worth a warning. */
function readStorageClassMatch(value: unknown, path: string, log: IssueLog): string | undefined {
  const name = readString(value, path, log);
  if (name === undefined || name === '') return undefined;
  warnIfNeverMatches(name, path, log);
  return name;
}

/**
 * `secretNames` / `configMapNames`: objects to copy by name, so each must be a valid object name. Velero copies a
 * repeated name once (its second copy finds the first), so a repeat is dropped with a warning, not an error.
 */
function readObjectNames(
  value: unknown,
  path: string,
  log: IssueLog,
  kind: 'Secret' | 'ConfigMap',
): string[] | undefined {
  const firstPathByName = new Map<string, string>();
  return readArray(value, path, log, (element, path_) => {
    const name = readString(element, path_, log);
    if (name === undefined) return undefined;
    const first = firstPathByName.get(name);
    if (first !== undefined) {
      log.warn(path_, `${JSON.stringify(name)} repeats ${first}; it is copied once, so remove the repeat`);
      return undefined;
    }
    firstPathByName.set(name, path_);
    const problems = dnsSubdomainProblems(name);
    if (problems.length > 0) log.error(path_, `invalid ${kind} name ${JSON.stringify(name)}: ${problems.join('; ')}`);
    return name;
  });
}

function warnIfNeverMatches(name: string, path: string, log: IssueLog): void {
  const problems = dnsSubdomainProblems(name);
  if (problems.length > 0) {
    log.warn(path, `${JSON.stringify(name)} never matches: a storage class name ${problems.join('; ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

function resolveConfig(value: unknown, log: IssueLog): NodeAgentConfig | undefined {
  if (value === null) {
    log.warn('', 'the config is null; Velero reads that as an empty config, so the defaults apply');
    return {};
  }
  if (!isPlainObject(value)) {
    log.error('', `the config must be a JSON object, got ${describe(value)}`);
    return undefined;
  }
  const fields = readStruct(value, '', TOP_FIELDS, log) ?? {};
  const priorityClassName = readPriorityClassName(fields.priorityClassName, 'priorityClassName', log);
  return compact<NodeAgentConfig>({
    loadConcurrency: readLoadConcurrency(fields.loadConcurrency, 'loadConcurrency', log),
    loadAffinity: readLoadAffinities(fields.loadAffinity, 'loadAffinity', log),
    backupPVC: readBackupPvcs(fields.backupPVC, 'backupPVC', log),
    restorePVC: readRestorePvc(fields.restorePVC, 'restorePVC', log),
    podResources: readPodResources(fields.podResources, 'podResources', log),
    priorityClassName,
    privilegedFsBackup: readBoolean(fields.privilegedFsBackup, 'privilegedFsBackup', log),
    cachePVC: readCachePvc(fields.cachePVC, 'cachePVC', log),
    podLabels: readLabels(fields.podLabels, 'podLabels', log),
    podAnnotations: readAnnotations(fields.podAnnotations, 'podAnnotations', log),
  });
}

function readLoadConcurrency(value: unknown, path: string, log: IssueLog): LoadConcurrency | undefined {
  const fields = readStruct(value, path, LOAD_CONCURRENCY_FIELDS, log);
  if (fields === undefined) return undefined;
  let globalConfig = readInteger(fields.globalConfig, fieldPath(path, 'globalConfig'), log);
  if (globalConfig !== undefined && globalConfig <= 0) {
    log.warn(
      fieldPath(path, 'globalConfig'),
      `${globalConfig} is not positive; ignored, so the default 1 applies (as in Velero)`,
    );
    globalConfig = undefined;
  }
  const perNodeConfig = readArray(fields.perNodeConfig, fieldPath(path, 'perNodeConfig'), log, (element, path_) =>
    readRuledConfig(element, path_, log),
  );
  let prepareQueueLength = readInteger(fields.prepareQueueLength, fieldPath(path, 'prepareQueueLength'), log);
  if (prepareQueueLength !== undefined && prepareQueueLength < 0) {
    log.warn(
      fieldPath(path, 'prepareQueueLength'),
      `${prepareQueueLength} is negative; ignored, so the prepare queue is unlimited (only values > 0 enable it)`,
    );
    prepareQueueLength = undefined;
  }
  return compact<LoadConcurrency>({ globalConfig, perNodeConfig, prepareQueueLength });
}

function readRuledConfig(value: unknown, path: string, log: IssueLog): RuledConfig | undefined {
  const fields = readStruct(value, path, RULED_CONFIG_FIELDS, log);
  if (fields === undefined) return undefined;
  const nodeSelector = readNodeSelector(
    fields.nodeSelector,
    fieldPath(path, 'nodeSelector'),
    log,
    'matches every node',
  );
  const number = readInteger(fields.number, fieldPath(path, 'number'), log);
  if (number === undefined) {
    if (isAbsent(fields.number)) log.warn(fieldPath(path, 'number'), 'not set; the rule is skipped (as in Velero)');
    return undefined;
  }
  if (number <= 0) {
    log.warn(fieldPath(path, 'number'), `${number} is not positive; the rule is skipped (as in Velero)`);
    return undefined;
  }
  return nodeSelector === undefined ? undefined : { nodeSelector, number };
}

/**
 * `loadAffinity`. Velero applies only the first entry whose `storageClass` equals the backupPVC's final storage
 * class, else the first entry without one; later entries for the same class are dead, which deserves a warning.
 */
function readLoadAffinities(value: unknown, path: string, log: IssueLog): LoadAffinity[] | undefined {
  const firstPathByClass = new Map<string, string>();
  return readArray(value, path, log, (element, path_) => {
    const affinity = readLoadAffinity(element, path_, log);
    if (affinity === undefined) return undefined;
    const storageClass = affinity.storageClass ?? '';
    const first = firstPathByClass.get(storageClass);
    if (first === undefined) firstPathByClass.set(storageClass, path_);
    else {
      log.warn(
        path_,
        storageClass === ''
          ? `never applied: ${first} is already the entry for storage classes without their own entry (only the first one applies)`
          : `never applied: ${first} already applies to storage class ${JSON.stringify(storageClass)} (only the first one applies)`,
      );
    }
    return affinity;
  });
}

function readLoadAffinity(value: unknown, path: string, log: IssueLog): LoadAffinity | undefined {
  const fields = readStruct(value, path, LOAD_AFFINITY_FIELDS, log);
  if (fields === undefined) return undefined;
  const nodeSelector = readNodeSelector(
    fields.nodeSelector,
    fieldPath(path, 'nodeSelector'),
    log,
    'places no constraint on the node',
  );
  const storageClass = readStorageClassMatch(fields.storageClass, fieldPath(path, 'storageClass'), log);
  return nodeSelector === undefined ? undefined : compact<LoadAffinity>({ nodeSelector, storageClass });
}

/** A node selector; an absent or empty one is valid but worth a warning (`emptyMeans` says what it does). */
function readNodeSelector(value: unknown, path: string, log: IssueLog, emptyMeans: string): LabelSelector | undefined {
  if (isAbsent(value)) {
    log.warn(path, `not set; an empty selector ${emptyMeans}`);
    return {};
  }
  const errorsBefore = log.errors.length;
  const selector = readLabelSelector(value, path, log);
  // A selector emptied by its own invalid parts has errors already; "empty" would only mislead.
  const empty = selector !== undefined && !selector.matchLabels && !selector.matchExpressions;
  if (empty && log.errors.length === errorsBefore) {
    log.warn(path, `empty; an empty selector ${emptyMeans}`);
  }
  return selector;
}

function readLabelSelector(value: unknown, path: string, log: IssueLog): LabelSelector | undefined {
  const fields = readStruct(value, path, LABEL_SELECTOR_FIELDS, log);
  if (fields === undefined) return undefined;
  const matchLabels = readLabels(fields.matchLabels, fieldPath(path, 'matchLabels'), log);
  const matchExpressions = readArray(
    fields.matchExpressions,
    fieldPath(path, 'matchExpressions'),
    log,
    (element, path_) => readRequirement(element, path_, log),
  );
  return compact<LabelSelector>({
    matchLabels: matchLabels && Object.keys(matchLabels).length > 0 ? matchLabels : undefined,
    matchExpressions: matchExpressions && matchExpressions.length > 0 ? matchExpressions : undefined,
  });
}

const OPERATORS: readonly LabelSelectorRequirement['operator'][] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function isOperator(value: string): value is LabelSelectorRequirement['operator'] {
  return (OPERATORS as readonly string[]).includes(value);
}

/** A `matchExpressions[]` entry, with the API server's rules for keys, operators and values. */
function readRequirement(value: unknown, path: string, log: IssueLog): LabelSelectorRequirement | undefined {
  const fields = readStruct(value, path, REQUIREMENT_FIELDS, log);
  if (fields === undefined) return undefined;
  const key = readString(fields.key, fieldPath(path, 'key'), log);
  if (key === undefined) {
    if (isAbsent(fields.key)) log.error(fieldPath(path, 'key'), 'required');
  } else {
    const problems = qualifiedNameProblems(key);
    if (problems.length > 0)
      log.error(fieldPath(path, 'key'), `invalid label key ${JSON.stringify(key)}: ${problems.join('; ')}`);
  }
  const operator = readOperator(fields.operator, fieldPath(path, 'operator'), log);
  const values = readArray(fields.values, fieldPath(path, 'values'), log, (element, path_) => {
    const text = readString(element, path_, log);
    const problems = text === undefined ? [] : labelValueProblems(text);
    if (problems.length > 0) log.error(path_, `invalid label value ${describe(text)}: ${problems.join('; ')}`);
    return text;
  });
  if (key === undefined || operator === undefined) return undefined;
  const needsValues = operator === 'In' || operator === 'NotIn';
  if (needsValues && (values === undefined || values.length === 0)) {
    log.error(fieldPath(path, 'values'), `operator "${operator}" needs at least one value`);
  }
  if (!needsValues && values !== undefined && values.length > 0) {
    log.error(fieldPath(path, 'values'), `operator "${operator}" takes no values, got ${describe(values)}`);
  }
  return needsValues ? { key, operator, values: values ?? [] } : { key, operator };
}

function readOperator(value: unknown, path: string, log: IssueLog): LabelSelectorRequirement['operator'] | undefined {
  const operator = readString(value, path, log);
  if (operator === undefined) {
    if (isAbsent(value)) log.error(path, `required: one of ${quoteList(OPERATORS)}`);
    return undefined;
  }
  if (isOperator(operator)) return operator;
  log.error(path, `expected one of ${quoteList(OPERATORS)}, got ${describe(operator)}`);
  return undefined;
}

/** `backupPVC`: a map from the source storage class to its backupPVC settings. */
function readBackupPvcs(
  value: unknown,
  path: string,
  log: IssueLog,
): Readonly<Record<string, BackupPVCConfig>> | undefined {
  if (isAbsent(value)) return undefined;
  if (!isPlainObject(value)) {
    log.error(path, `expected object keyed by source storage class, got ${describe(value)}`);
    return undefined;
  }
  const entries: [string, BackupPVCConfig][] = [];
  for (const sourceClass of Object.keys(value).sort()) {
    const path_ = entryPath(path, sourceClass);
    const item = value[sourceClass];
    if (!isPlainObject(item) && BACKUP_PVC_FIELDS.some((field) => field.toLowerCase() === sourceClass.toLowerCase())) {
      log.error(
        path_,
        `expected object, got ${describe(item)}; backupPVC is keyed by the source storage class, e.g. {"backupPVC": {"gp3": {"${sourceClass}": ${describe(item)}}}}`,
      );
      continue;
    }
    if (item === null) {
      log.error(path_, 'expected object, got null');
      continue;
    }
    if (sourceClass !== '') warnIfNeverMatches(sourceClass, path_, log);
    const entry = readBackupPvc(item, path_, log);
    if (entry !== undefined) entries.push([sourceClass, entry]);
  }
  return Object.fromEntries(entries);
}

function readBackupPvc(value: unknown, path: string, log: IssueLog): BackupPVCConfig | undefined {
  const fields = readStruct(value, path, BACKUP_PVC_FIELDS, log);
  if (fields === undefined) return undefined;
  const readOnly = readBoolean(fields.readOnly, fieldPath(path, 'readOnly'), log);
  const spcNoRelabeling = readBoolean(fields.spcNoRelabeling, fieldPath(path, 'spcNoRelabeling'), log);
  if (spcNoRelabeling === true && (readOnly === false || isAbsent(fields.readOnly))) {
    log.warn(
      fieldPath(path, 'spcNoRelabeling'),
      'has no effect without "readOnly": true (Velero ignores it too); the backupPod gets no spc_t SELinux type',
    );
  }
  return compact<BackupPVCConfig>({
    storageClass: readStorageClassName(fields.storageClass, fieldPath(path, 'storageClass'), log),
    readOnly,
    spcNoRelabeling,
    annotations: readAnnotations(fields.annotations, fieldPath(path, 'annotations'), log),
    secretNames: readObjectNames(fields.secretNames, fieldPath(path, 'secretNames'), log, 'Secret'),
    configMapNames: readObjectNames(fields.configMapNames, fieldPath(path, 'configMapNames'), log, 'ConfigMap'),
  });
}

function readRestorePvc(value: unknown, path: string, log: IssueLog): RestorePVCConfig | undefined {
  const fields = readStruct(value, path, RESTORE_PVC_FIELDS, log);
  if (fields === undefined) return undefined;
  return compact<RestorePVCConfig>({
    ignoreDelayBinding: readBoolean(fields.ignoreDelayBinding, fieldPath(path, 'ignoreDelayBinding'), log),
    secretNames: readObjectNames(fields.secretNames, fieldPath(path, 'secretNames'), log, 'Secret'),
    configMapNames: readObjectNames(fields.configMapNames, fieldPath(path, 'configMapNames'), log, 'ConfigMap'),
  });
}

function readCachePvc(value: unknown, path: string, log: IssueLog): CachePVCConfig | undefined {
  const fields = readStruct(value, path, CACHE_PVC_FIELDS, log);
  if (fields === undefined) return undefined;
  return compact<CachePVCConfig>({
    storageClass: readStorageClassMatch(fields.storageClass, fieldPath(path, 'storageClass'), log),
    residentThresholdInMB: readInteger(fields.residentThresholdInMB, fieldPath(path, 'residentThresholdInMB'), log),
  });
}

function readPriorityClassName(value: unknown, path: string, log: IssueLog): string | undefined {
  const name = readString(value, path, log);
  if (name === undefined || name === '') return undefined;
  const problems = dnsSubdomainProblems(name);
  if (problems.length > 0)
    log.error(path, `invalid PriorityClass name ${JSON.stringify(name)}: ${problems.join('; ')}`);
  return name;
}

/** A request is compared with its limit with this relative slack, since quantities are parsed to floats. */
const QUANTITY_TOLERANCE = 1e-9;

const RESOURCE_PAIRS = [
  ['cpuRequest', 'cpuLimit'],
  ['memoryRequest', 'memoryLimit'],
  ['ephemeralStorageRequest', 'ephemeralStorageLimit'],
] as const;

/**
 * `podResources`. Unlike Velero, which drops the whole section when one value is missing or invalid, each value
 * stands on its own; an invalid one is an error. `"0"` means unbounded and is kept (the pod builder omits it).
 */
function readPodResources(value: unknown, path: string, log: IssueLog): PodResources | undefined {
  const fields = readStruct(value, path, POD_RESOURCES_FIELDS, log);
  if (fields === undefined) return undefined;
  const resources: PodResources = {};
  const amounts: Partial<Record<keyof PodResources, number>> = {};
  for (const name of POD_RESOURCES_FIELDS) {
    const read = readQuantity(fields[name], fieldPath(path, name), log);
    if (read === undefined) continue;
    resources[name] = read.text;
    amounts[name] = read.amount;
  }
  for (const [request, limit] of RESOURCE_PAIRS) {
    const requested = amounts[request];
    const limited = amounts[limit];
    if (requested === undefined || limited === undefined || limited === 0) continue;
    if (requested > limited * (1 + QUANTITY_TOLERANCE)) {
      log.error(
        fieldPath(path, request),
        `${request} ${JSON.stringify(resources[request])} is greater than ${limit} ${JSON.stringify(resources[limit])}; a request may not exceed its limit`,
      );
    }
  }
  return resources;
}

function readQuantity(value: unknown, path: string, log: IssueLog): { text: string; amount: number } | undefined {
  const text = readString(value, path, log);
  if (text === undefined) return undefined;
  if (text === '') {
    log.error(path, 'empty quantity; remove the field, or use "0" for unbounded');
    return undefined;
  }
  const amount = text.trim() === text ? parseQuantity(text) : undefined;
  if (amount === undefined) {
    log.error(
      path,
      `invalid quantity ${JSON.stringify(text)}; expected a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"`,
    );
    return undefined;
  }
  if (amount < 0) {
    log.error(path, `must not be negative, got ${JSON.stringify(text)}`);
    return undefined;
  }
  return { text, amount };
}
