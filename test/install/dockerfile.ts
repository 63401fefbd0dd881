/**
 * A small Dockerfile reader for the image tests: instructions with line continuations joined and comments
 * dropped, grouped into build stages. Enough for the checks we can make without a Docker engine.
 */

/** One instruction, e.g. `{ keyword: 'COPY', args: '--from=build /app/dist ./dist' }`. */
export interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** A build stage: its base image, its name (`AS name`) and its instructions after `FROM`. */
export interface Stage {
  readonly image: string;
  readonly name?: string;
  readonly instructions: readonly Instruction[];
}

/** Splits a Dockerfile into instructions, joining `\` continuations and skipping comments and blank lines. */
export function parseInstructions(text: string): Instruction[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending !== '') logical.push(pending.trim());
  return logical.map((line) => {
    const [keyword = '', ...rest] = line.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
}

/** Groups instructions into stages; anything before the first `FROM` (ARG) is ignored. */
export function parseStages(text: string): Stage[] {
  const stages: { image: string; name?: string; instructions: Instruction[] }[] = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--platform'));
      stages.push(as?.toUpperCase() === 'AS' && name ? { image, name, instructions: [] } : { image, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** The arguments of every instruction with this keyword in a stage. */
export function argsOf(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** An exec-form (JSON array) ENTRYPOINT or CMD; `undefined` for the shell form, which signals would not reach. */
export function execForm(args: string): string[] | undefined {
  try {
    const value: unknown = JSON.parse(args);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `ENV` pairs in the `KEY=value` form (quotes removed). */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of argsOf(stage, 'ENV')) {
    for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) {
      env[match[1]!] = match[2]!.replace(/^"|"$/g, '');
    }
  }
  return env;
}

/** A `COPY` split into its `--from` stage (if any), sources and destination. */
export interface Copy {
  readonly from?: string;
  readonly sources: readonly string[];
  readonly destination: string;
}

/** The `COPY` instructions of a stage. */
export function copiesOf(stage: Stage): Copy[] {
  return argsOf(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    const destination = paths.pop() ?? '';
    return from === undefined ? { sources: paths, destination } : { from, sources: paths, destination };
  });
}
