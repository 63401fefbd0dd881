/**
 * The command-line dispatcher: `run`, `check-config`, `diagnose`, `help`, `--version`. It only routes; each command
 * lives in `src/commands/`. `run` and `diagnose` are imported lazily, so `check-config` and `--help` do not load
 * the Kubernetes client. Kept apart from `main.ts` (which runs it on import) so that tests can call it.
 */
import { checkConfigCommand, ExitCode, type CommandIo } from './commands/check-config.js';
import { operatorOptionsUsage } from './config/options.js';

/** A subcommand that takes its own arguments and resolves to an exit code. */
export type Subcommand = (args: string[]) => Promise<number>;

/** What the dispatcher needs from the process, injected for tests. */
export interface CliIo extends CommandIo {
  /** The package version, read only for `--version`. */
  readonly version: () => string;
  /** `run` and `diagnose`; by default the modules in `src/commands/`. */
  readonly commands?: Partial<Record<'run' | 'diagnose', Subcommand>>;
}

const DEFAULT_COMMANDS: Readonly<Record<'run' | 'diagnose', Subcommand>> = Object.freeze({
  run: async (args: string[]) => (await import('./commands/run.js')).runCommand(args),
  diagnose: async (args: string[]) => (await import('./commands/diagnose.js')).diagnoseCommand(args),
});

/** The top-level usage text. */
export function usage(): string {
  return `Usage: dataupload-operator <command> [arguments]

A Velero-compatible DataUpload controller: exposes CSI snapshots to Velero's data mover,
with diagnostics as Kubernetes Events.

Commands:
  run [flags]               run the operator
  check-config <file | ->   validate a node-agent config (its JSON, or a ConfigMap manifest in YAML or JSON)
  diagnose [arguments]      print the expose report of a DataUpload
  help [command]            show help

Flags:
  --help, -h                show help
  --version                 print the version

Flags of run:
${operatorOptionsUsage()}
`;
}

/** Runs the CLI and resolves to the process exit code (0 ok, 1 failure, 2 usage error). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  const commands = { ...DEFAULT_COMMANDS, ...io.commands };
  switch (command) {
    case undefined:
      io.stderr(usage());
      return ExitCode.usage;
    case '--help':
    case '-h':
      io.stdout(usage());
      return ExitCode.ok;
    case 'help':
      return showHelp(rest[0], io);
    case '--version':
    case 'version':
      io.stdout(`${io.version()}\n`);
      return ExitCode.ok;
    case 'check-config':
      return checkConfigCommand(rest, io);
    case 'run':
      return rest.includes('--help') || rest.includes('-h') ? showHelp('run', io) : commands.run(rest);
    case 'diagnose':
      return commands.diagnose(rest);
    default:
      io.stderr(`error: unknown command ${JSON.stringify(command)}\n\n${usage()}`);
      return ExitCode.usage;
  }
}

/** `help [command]`; `diagnose` prints its own help (`diagnose --help`). */
async function showHelp(topic: string | undefined, io: CliIo): Promise<number> {
  if (topic === 'check-config') return checkConfigCommand(['--help'], io);
  if (topic === 'diagnose') return (io.commands?.diagnose ?? DEFAULT_COMMANDS.diagnose)(['--help']);
  io.stdout(
    topic === 'run' ? `Usage: dataupload-operator run [flags]\n\nFlags:\n${operatorOptionsUsage()}\n` : usage(),
  );
  return ExitCode.ok;
}
