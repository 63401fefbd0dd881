/**
 * The demo's pure parts: its command line, the verdict on how the DataUploads ended, and the excerpt of
 * `kubectl describe` it prints.
 */
import { DEMO_VOLUMES } from './manifests.js';

/** The demo's command line. */
export interface DemoArgs {
  /** Leave the control plane and the operator running at the end. */
  readonly keep: boolean;
}

/** Usage text of `npm run demo`. */
export const DEMO_USAGE = `Usage: npm run demo [-- --keep]

Runs the operator on the bundled local control plane: installs config/default, creates two DataUploads
(one reaches Prepared, one fails on a misconfigured storage class), prints what kubectl shows, and stops.
  --keep   leave the control plane and the operator running; prints the KUBECONFIG to use`;

/** Parsed arguments, or the text to print instead (usage for --help, an error otherwise) and the exit code. */
export type DemoArgsResult =
  | { readonly ok: true; readonly args: DemoArgs }
  | { readonly ok: false; readonly text: string; readonly exitCode: number };

/** Parses the demo's arguments: only `--keep` and `--help`. */
export function parseDemoArgs(argv: readonly string[]): DemoArgsResult {
  if (argv.includes('--help') || argv.includes('-h')) return { ok: false, text: DEMO_USAGE, exitCode: 0 };
  const unknown = argv.filter((a) => a !== '--keep');
  if (unknown.length > 0)
    return { ok: false, text: `unknown argument ${unknown.join(' ')}\n\n${DEMO_USAGE}`, exitCode: 2 };
  return { ok: true, args: { keep: argv.includes('--keep') } };
}

/** Which DataUploads did not end as designed, as sentences; empty when the demo went as planned. */
export function unexpectedOutcomes(phases: ReadonlyMap<string, string>): string[] {
  return DEMO_VOLUMES.filter((v) => phases.get(v.dataUpload) !== v.expectedPhase).map(
    (v) => `${v.dataUpload} is ${phases.get(v.dataUpload) ?? 'missing'}, expected ${v.expectedPhase}`,
  );
}

/** The parts of `kubectl describe` a user looks at first: the status message and the Events table. */
export function describeSummary(describe: string): string {
  const lines = describe.split('\n');
  const message = lines.find((l) => /^\s+Message:/.test(l))?.trim();
  const start = lines.findIndex((l) => l.startsWith('Events:'));
  const events = start >= 0 ? lines.slice(start).join('\n').trimEnd() : 'Events: (none)';
  return message === undefined ? events : `${message}\n${events}`;
}
