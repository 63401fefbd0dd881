/**
 * Text limits for diagnostics that end up in Kubernetes Events and in `status.message`.
 */

/** The API server rejects an Event whose note (message) is longer than 1024 bytes. */
export const EVENT_NOTE_MAX_BYTES = 1024;
/** `status.message` carries one cause line; kept short so `kubectl get -o wide` and the server's error stay readable. */
export const CAUSE_MAX_BYTES = 512;

const ELLIPSIS = '...';

/** Collapses line breaks (and the blanks around them) into single spaces, so the text fits on one line. */
export function singleLine(text: string): string {
  return text.replace(/[ \t]*[\r\n]+[ \t]*/g, ' ').trim();
}

/**
 * Cuts `text` to at most `maxBytes` UTF-8 bytes, ending in `...` when it was cut. It cuts between code points,
 * never inside a character or a surrogate pair, because the API server counts bytes and a broken character would
 * turn into U+FFFD.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const budget = maxBytes - ELLIPSIS.length;
  let used = 0;
  let kept = '';
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (used + size > budget) break;
    used += size;
    kept += char;
  }
  return kept + ELLIPSIS;
}

/** `text`, or `<none>` when it is empty or missing, like kubectl prints unset fields. */
export function orNone(text: string | undefined | null): string {
  return text ? text : '<none>';
}
