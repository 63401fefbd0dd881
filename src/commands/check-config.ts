/**
 * `check-config <file | ->`: validates a node-agent config before it reaches a cluster. Accepts the JSON file
 * users pass to `kubectl create configmap --from-file`, or a ConfigMap manifest in YAML or JSON. Prints the
 * resolved config on stdout and warnings on stderr (exit 0), or every error on stderr (exit 1).
 */
import { parseAllDocuments } from 'yaml';
import type { ConfigMap } from '../api/kube.js';
import { parseJsonText } from '../config/json-text.js';
import {
  formatIssue,
  parseNodeAgentConfigJson,
  parseNodeAgentConfigMap,
  type ConfigIssue,
  type ConfigResult,
} from '../config/node-agent-config.js';

/** The I/O a command needs, injected so that tests run it without a process. */
export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Reads all of standard input (called only when the input is `-`). */
  readonly readStdin: () => Promise<string>;
  readonly readFile: (path: string) => Promise<string>;
}

/** Exit codes of the CLI. */
export const ExitCode = Object.freeze({ ok: 0, invalid: 1, usage: 2 });

/** Usage of `check-config`. */
export const CHECK_CONFIG_USAGE = `Usage: dataupload-operator check-config <file | ->

Validates a node-agent config: the JSON file you pass to
"kubectl create configmap <name> --from-file=<file>", or a ConfigMap manifest (YAML or JSON).
"-" reads standard input, e.g. "kubectl get cm node-agent-config -n velero -o yaml | dataupload-operator check-config -".

Prints the resolved config as JSON on stdout and warnings on stderr, and exits 0;
on errors prints each one on stderr ("error: <path>: <message>") and exits 1.`;

/** Runs `check-config` and returns the exit code. */
export async function checkConfigCommand(args: readonly string[], io: CommandIo): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(`${CHECK_CONFIG_USAGE}\n`);
    return ExitCode.ok;
  }
  if (args.length !== 1 || (args[0]!.startsWith('-') && args[0] !== '-')) {
    io.stderr(`error: check-config takes exactly one file name, or - for standard input\n\n${CHECK_CONFIG_USAGE}\n`);
    return ExitCode.usage;
  }
  const input = args[0]!;
  const source = input === '-' ? '<stdin>' : input;
  let text: string;
  try {
    text = input === '-' ? await io.readStdin() : await io.readFile(input);
  } catch (error) {
    io.stderr(`error: cannot read ${source}: ${error instanceof Error ? error.message : String(error)}\n`);
    return ExitCode.invalid;
  }
  const checked = checkConfigText(text, source);
  for (const warning of checked.result.warnings) io.stderr(`warning: ${formatIssue(warning)}\n`);
  if (!checked.result.ok) {
    for (const error of checked.result.errors) io.stderr(`error: ${formatIssue(error)}\n`);
    if (checked.hint !== undefined) io.stderr(`hint: ${checked.hint}\n`);
    return ExitCode.invalid;
  }
  io.stdout(`${JSON.stringify(checked.result.config, null, 2)}\n`);
  return ExitCode.ok;
}

/** The outcome of checking a text, with an optional hint for the most common confusion. */
export interface CheckedText {
  readonly result: ConfigResult;
  readonly hint?: string;
}

/**
 * Decides what the text is (a ConfigMap manifest in JSON or YAML, or the node-agent JSON itself) and validates
 * it. Text that is not a ConfigMap is always checked as JSON, since that is what Velero reads, so that broken
 * JSON is reported as JSON (with its line and column) and not as whatever YAML makes of it.
 */
export function checkConfigText(text: string, source: string): CheckedText {
  const json = parseJsonText(text.replace(/^\uFEFF/, ''));
  if (json.ok) {
    return isConfigMap(json.value)
      ? { result: parseNodeAgentConfigMap(json.value) }
      : { result: parseNodeAgentConfigJson(text, source) };
  }
  const yaml = readYamlConfigMap(text, source);
  if (yaml.kind === 'configmap') return { result: withWarnings(parseNodeAgentConfigMap(yaml.cm), yaml.warnings) };
  if (yaml.kind === 'broken-manifest') return { result: failed(yaml.errors) };
  return {
    result: parseNodeAgentConfigJson(text, source),
    hint:
      yaml.kind === 'yaml-object'
        ? 'this looks like YAML; the node-agent config must be JSON (Velero parses it as JSON), or a ConfigMap manifest whose data value holds the JSON'
        : undefined,
  };
}

type YamlReading =
  | { readonly kind: 'configmap'; readonly cm: ConfigMap; readonly warnings: readonly ConfigIssue[] }
  | { readonly kind: 'broken-manifest'; readonly errors: readonly ConfigIssue[] }
  | { readonly kind: 'yaml-object' }
  | { readonly kind: 'not-a-manifest' };

const CONFIGMAP_KIND_LINE = /^kind:\s*["']?ConfigMap["']?\s*(#.*)?$/m;

function readYamlConfigMap(text: string, source: string): YamlReading {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) return { kind: 'not-a-manifest' };
  const yamlErrors = documents.flatMap((document) => document.errors);
  if (yamlErrors.length > 0) {
    if (!CONFIGMAP_KIND_LINE.test(text)) return { kind: 'not-a-manifest' };
    return {
      kind: 'broken-manifest',
      errors: yamlErrors.map((error) => {
        const at = error.linePos?.[0];
        const where = at === undefined ? '' : ` at line ${at.line}, column ${at.col}`;
        const message = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        return { path: source, message: `invalid YAML${where}: ${message}` };
      }),
    };
  }
  const values: unknown[] = documents.map((document) => document.toJS() as unknown);
  const configMaps = values.filter(isConfigMap);
  if (configMaps.length === 1) {
    const others = values.length - 1;
    const warnings: ConfigIssue[] =
      others > 0 ? [{ path: source, message: `${others} other document(s) besides the ConfigMap ignored` }] : [];
    return { kind: 'configmap', cm: configMaps[0]!, warnings };
  }
  if (configMaps.length > 1) {
    const names = configMaps.map((cm) => `${cm.metadata?.namespace ?? ''}/${cm.metadata?.name ?? ''}`).join(', ');
    return {
      kind: 'broken-manifest',
      errors: [{ path: source, message: `holds ${configMaps.length} ConfigMaps (${names}); check one at a time` }],
    };
  }
  return values.some(isObject) ? { kind: 'yaml-object' } : { kind: 'not-a-manifest' };
}

/** A manifest of kind ConfigMap; the parser checks the rest of its shape. */
function isConfigMap(value: unknown): value is ConfigMap {
  return isObject(value) && value.kind === 'ConfigMap';
}

function isObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function failed(errors: readonly ConfigIssue[]): ConfigResult {
  return { ok: false, errors, warnings: [] };
}

function withWarnings(result: ConfigResult, warnings: readonly ConfigIssue[]): ConfigResult {
  if (warnings.length === 0) return result;
  return { ...result, warnings: [...warnings, ...result.warnings] };
}
