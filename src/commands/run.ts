/**
 * `run`: the operator itself. Parses flags and environment, boots, and resolves with the exit code once an
 * orderly shutdown (SIGTERM/SIGINT, or lost leadership) has finished.
 */
import { parseOperatorOptions } from '../config/options.js';
import { BootError, startOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';

/** Runs the operator with the given arguments (after `run`) and resolves to the exit code. */
export async function runCommand(args: string[]): Promise<number> {
  const parsed = parseOperatorOptions(args, process.env);
  if (!parsed.ok) {
    for (const error of parsed.errors) process.stderr.write(`error: ${error}\n`);
    return 2;
  }
  const options = parsed.options;
  const logger = createLogger({ level: options.logLevel, base: { component: 'dataupload-operator' } });
  try {
    const operator = await startOperator(options, {
      logger,
      signals: process,
      exit: (code) => process.exit(code),
    });
    const code = await operator.done;
    // Everything is closed; if a stray handle still holds the loop, do not hang the pod's termination.
    setTimeout(() => process.exit(code), 2_000).unref();
    return code;
  } catch (err) {
    if (!(err instanceof BootError)) throw err;
    logger.fatal({}, err.message);
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
}
