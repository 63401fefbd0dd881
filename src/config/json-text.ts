/**
 * JSON parsing that says where the text is broken. `JSON.parse` reports an offset for most errors on Node 20
 * (`... in JSON at position 7`) but not for all (`Unexpected token ']', "[1,]" is not valid JSON`), and users edit
 * ConfigMaps by line, so failures are located by line and column here.
 */

/** Outcome of {@link parseJsonText}. */
export type JsonParseResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly line: number; readonly column: number; readonly message: string };

/** A line and a column, both counted from 1. */
export interface TextPosition {
  readonly line: number;
  readonly column: number;
}

const POSITION_SUFFIX = / (?:in JSON )?at position (\d+)(?: \(line \d+ column \d+\))?$/;
// V8 quotes the text, shortened with "..." on either side: `Unexpected token 'b', "backupPVC:"... is not valid JSON`.
const QUOTED_TEXT_SUFFIX = /, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s;

/**
 * Parses JSON text; on failure returns the engine's message (without its offset suffix) and the 1-based line and
 * column of the first offending character, or of the end of the text when it ends too early.
 */
export function parseJsonText(text: string): JsonParseResult {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const raw = error instanceof Error ? error.message : String(error);
    const reported = POSITION_SUFFIX.exec(raw);
    const offset = reported ? Number(reported[1]) : (findJsonErrorOffset(text) ?? text.length);
    const message = raw.replace(POSITION_SUFFIX, '').replace(QUOTED_TEXT_SUFFIX, '');
    return { ok: false, ...positionAt(text, offset), message };
  }
}

/** The 1-based line and column of a UTF-16 offset in the text. */
export function positionAt(text: string, offset: number): TextPosition {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1 };
}

/** Thrown inside the scanner to unwind to the offset of the first error. */
class ScanStop extends Error {
  constructor(readonly offset: number) {
    super(`JSON scan stopped at offset ${offset}`);
  }
}

// A source string, not a shared sticky RegExp: a sticky RegExp carries `lastIndex` state between calls.
const NUMBER_SOURCE = String.raw`-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?`;
const ESCAPES = '"\\/bfnrt';
const HEX = /^[0-9a-fA-F]$/;

/**
 * Scans the text with the JSON grammar and returns the offset of the first character that cannot continue it
 * (`text.length` when the text ends too early), or `undefined` when the text is valid JSON. Used only when the
 * engine's message carries no offset.
 */
export function findJsonErrorOffset(text: string): number | undefined {
  return scanJson(text, () => undefined);
}

/** A key that appears twice in one JSON object. */
export interface DuplicateKey {
  readonly key: string;
  /** Where the second occurrence starts. */
  readonly line: number;
  readonly column: number;
}

/**
 * The keys that repeat within one object of a valid JSON text. `JSON.parse` silently keeps the last one, while
 * Go merges or overrides them depending on the field's type, so a repeated key hides a config that reads differently
 * in Velero. Returns nothing for invalid JSON.
 */
export function findDuplicateKeys(text: string): DuplicateKey[] {
  const duplicates: DuplicateKey[] = [];
  const stopped = scanJson(text, (key, offset) => void duplicates.push({ key, ...positionAt(text, offset) }));
  return stopped === undefined ? duplicates : [];
}

/** Called for each key seen a second time in the same object. */
type DuplicateKeyHandler = (key: string, offset: number) => void;

/** The JSON scanner behind {@link findJsonErrorOffset} and {@link findDuplicateKeys}. */
function scanJson(text: string, onDuplicateKey: DuplicateKeyHandler): number | undefined {
  let at = 0;
  const stopUnless = (condition: boolean): void => {
    if (!condition) throw new ScanStop(at);
  };
  const skipWhitespace = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const scanLiteral = (literal: string): void => {
    for (const char of literal) {
      stopUnless(text[at] === char);
      at++;
    }
  };
  const scanString = (): void => {
    at++; // the opening quote
    for (;;) {
      stopUnless(at < text.length);
      const char = text[at]!;
      if (char === '"') {
        at++;
        return;
      }
      stopUnless(char >= ' ');
      at++;
      if (char === '\\') {
        const escape = text[at] ?? '';
        if (escape === 'u') {
          at++;
          for (let digit = 0; digit < 4; digit++) {
            stopUnless(HEX.test(text[at] ?? ''));
            at++;
          }
        } else {
          stopUnless(escape !== '' && ESCAPES.includes(escape));
          at++;
        }
      }
    }
  };
  const scanNumber = (): void => {
    const pattern = new RegExp(NUMBER_SOURCE, 'y');
    pattern.lastIndex = at;
    stopUnless(pattern.exec(text) !== null);
    at = pattern.lastIndex;
  };
  const scanSequence = (close: string, scanItem: () => void): void => {
    at++; // the opening bracket
    skipWhitespace();
    if (text[at] === close) {
      at++;
      return;
    }
    for (;;) {
      scanItem();
      skipWhitespace();
      if (text[at] === ',') {
        at++;
        continue;
      }
      stopUnless(text[at] === close);
      at++;
      return;
    }
  };
  const scanValue = (): void => {
    skipWhitespace();
    const char = text[at];
    if (char === '{') {
      const keys = new Set<string>();
      scanSequence('}', () => {
        skipWhitespace();
        stopUnless(text[at] === '"');
        const keyStart = at;
        scanString();
        const key = JSON.parse(text.slice(keyStart, at)) as string;
        if (keys.has(key)) onDuplicateKey(key, keyStart);
        keys.add(key);
        skipWhitespace();
        stopUnless(text[at] === ':');
        at++;
        scanValue();
      });
    } else if (char === '[') scanSequence(']', scanValue);
    else if (char === '"') scanString();
    else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) scanNumber();
    else if (char === 't') scanLiteral('true');
    else if (char === 'f') scanLiteral('false');
    else if (char === 'n') scanLiteral('null');
    else stopUnless(false);
  };
  try {
    scanValue();
    skipWhitespace();
    stopUnless(at === text.length);
    return undefined;
  } catch (stop) {
    if (stop instanceof ScanStop) return stop.offset;
    throw stop;
  }
}
