/**
 * The differential comparison of the interop tests: the objects Velero's node-agent exposed and the ones our operator
 * exposed for the same input, normalised (names, uids, timestamps and other per-run values become placeholders) and
 * compared field by field. Every difference is either explained by an entry of an allow-list or reported.
 *
 * Pure functions only; the test file owns the allow-list and the cluster work.
 */

/** Stands for a field one side does not have. */
export const ABSENT: unique symbol = Symbol('absent');

/** One field where the two sides differ. */
export interface Difference {
  /** Which exposed object: `backupPod`, `backupPVC`, `DataUpload`, ... */
  readonly object: string;
  /** Where, e.g. `spec.containers[<du-uid>].imagePullPolicy` or `metadata.labels["velero.io/data-upload"]`. */
  readonly path: string;
  /** Velero's value, normalised; {@link ABSENT} when Velero has no such field. */
  readonly velero: unknown;
  /** Ours, normalised; {@link ABSENT} when we have no such field. */
  readonly ours: unknown;
  /** `order`: the same items in another order (reported once, for the whole list). */
  readonly kind: 'value' | 'order';
}

/** What an allow-list entry expects on one side: a test of the normalised value ({@link ABSENT} for none). */
export type Matcher = (value: unknown) => boolean;

/** A matcher for exactly this normalised value ({@link ABSENT}: the side has no such field). */
export function is(expected: unknown): Matcher {
  return (value) => sameValue(expected, value);
}

/** One deliberate (or accepted) difference, with its reason. */
export interface AllowedDifference {
  readonly object: string;
  /** The exact path, or a pattern over paths. */
  readonly path: string | RegExp;
  /** What Velero has there. */
  readonly velero: Matcher;
  /** What we have there. */
  readonly ours: Matcher;
  /** Only for differences of this kind; `value` by default. */
  readonly kind?: Difference['kind'];
  /** The cases where it may show up; every case when left out. */
  readonly cases?: readonly string[];
  /** Why we differ. */
  readonly reason: string;
  /**
   * Velero's side is random from run to run (Go map order), so the difference shows in some runs only, and an entry
   * that explained nothing in a run is not stale.
   */
  readonly intermittent?: boolean;
  /** A term that README's "How it relates to Velero" must contain, so the list there stays the same as this one. */
  readonly readme: string;
}

/** Options of {@link normalise}. */
export interface Normalisation {
  /** Literal strings (names, uids) and the placeholder each becomes, wherever it appears in a string or a key. */
  readonly tokens: Readonly<Record<string, string>>;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** The ServiceAccount admission plugin's projected token volume, named with a random suffix. */
const TOKEN_VOLUME = /^kube-api-access-[a-z0-9]{5}$/;

/**
 * A deep copy of `value` in which per-run values no longer differ between two runs on the same input:
 * - every token (a DataUpload name, a namespace, a uid) becomes its placeholder, in strings and in map keys,
 *   longest token first;
 * - whole-string RFC 3339 timestamps become `<time>`, IPv4 addresses `<ip>`, the projected token volume's name
 *   `kube-api-access-<random>`, and any uid that no token named `<uid>`;
 * - `resourceVersion` becomes `<rv>` wherever it appears, and `metadata.managedFields` is dropped (it names the
 *   writing client, which always differs).
 */
export function normalise<T>(value: T, opts: Normalisation): T {
  const tokens = Object.entries(opts.tokens)
    .filter(([literal]) => literal !== '')
    .sort(([a], [b]) => b.length - a.length);
  const text = (s: string): string => {
    let out = s;
    for (const [literal, placeholder] of tokens) out = out.split(literal).join(placeholder);
    if (RFC3339.test(out)) return '<time>';
    if (IPV4.test(out)) return '<ip>';
    if (TOKEN_VOLUME.test(out)) return 'kube-api-access-<random>';
    return out.replace(UUID, '<uid>');
  };
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (typeof v === 'string') return key === 'resourceVersion' ? '<rv>' : text(v);
    if (Array.isArray(v)) return v.map((item) => walk(item, undefined));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, child] of Object.entries(v)) {
        if (k === 'managedFields' && key === 'metadata') continue;
        out[text(k)] = walk(child, k);
      }
      return out;
    }
    return v;
  };
  return walk(value, undefined) as T;
}

/**
 * The differences between Velero's and our version of one object, field by field. Lists whose items all carry a
 * distinct `name` (containers, volumes, mounts, env) are matched by name, and also reported once as `order` when the
 * shared names come in another order; other lists are reported once as `order` when they hold the same items in
 * another order, and compared item by item otherwise.
 */
export function diffObjects(object: string, velero: unknown, ours: unknown): Difference[] {
  const out: Difference[] = [];
  walkDiff(object, '', velero, ours, out);
  return out;
}

function walkDiff(object: string, path: string, a: unknown, b: unknown, out: Difference[]): void {
  if (sameValue(a, b)) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    diffLists(object, path, a, b, out);
    return;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const key of keys) {
      walkDiff(
        object,
        join(path, key),
        Object.hasOwn(a, key) ? a[key] : ABSENT,
        Object.hasOwn(b, key) ? b[key] : ABSENT,
        out,
      );
    }
    return;
  }
  out.push({ object, path, velero: a, ours: b, kind: 'value' });
}

function diffLists(object: string, path: string, a: unknown[], b: unknown[], out: Difference[]): void {
  const names = (list: unknown[]) =>
    list.every((item) => isPlainObject(item) && typeof item['name'] === 'string')
      ? list.map((item) => (item as { name: string }).name)
      : undefined;
  const namesA = names(a);
  const namesB = names(b);
  if (namesA && namesB && new Set(namesA).size === namesA.length && new Set(namesB).size === namesB.length) {
    const sharedA = namesA.filter((n) => namesB.includes(n));
    const sharedB = namesB.filter((n) => namesA.includes(n));
    if (!sameValue(sharedA, sharedB)) out.push({ object, path, velero: namesA, ours: namesB, kind: 'order' });
    for (const name of [...namesA, ...namesB.filter((n) => !namesA.includes(n))]) {
      const itemA = a[namesA.indexOf(name)];
      const itemB = b[namesB.indexOf(name)];
      walkDiff(
        object,
        `${path}[${name}]`,
        itemA === undefined ? ABSENT : itemA,
        itemB === undefined ? ABSENT : itemB,
        out,
      );
    }
    return;
  }
  if (a.length === b.length && sameValue([...a].map(canonical).sort(), [...b].map(canonical).sort())) {
    out.push({ object, path, velero: a, ours: b, kind: 'order' });
    return;
  }
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    walkDiff(object, `${path}[${i}]`, i < a.length ? a[i] : ABSENT, i < b.length ? b[i] : ABSENT, out);
  }
}

/** Splits differences into the ones an entry of `allowed` explains (for this case) and the rest. */
export function explain(
  differences: readonly Difference[],
  allowed: readonly AllowedDifference[],
  caseName: string,
): { explained: { difference: Difference; entry: AllowedDifference }[]; unexplained: Difference[] } {
  const explained: { difference: Difference; entry: AllowedDifference }[] = [];
  const unexplained: Difference[] = [];
  for (const difference of differences) {
    const entry = allowed.find((e) => explains(e, difference, caseName));
    if (entry) explained.push({ difference, entry });
    else unexplained.push(difference);
  }
  return { explained, unexplained };
}

function explains(entry: AllowedDifference, d: Difference, caseName: string): boolean {
  if (entry.object !== d.object) return false;
  if ((entry.kind ?? 'value') !== d.kind) return false;
  if (entry.cases && !entry.cases.includes(caseName)) return false;
  const pathMatches = typeof entry.path === 'string' ? entry.path === d.path : entry.path.test(d.path);
  return pathMatches && entry.velero(d.velero) && entry.ours(d.ours);
}

/** One line per difference: `backupPod spec.x: Velero "a", ours "b"`. */
export function formatDifference(d: Difference): string {
  const what = d.kind === 'order' ? ' (same items, other order)' : '';
  return `${d.object} ${d.path || '(whole object)'}${what}: Velero ${show(d.velero)}, ours ${show(d.ours)}`;
}

function show(v: unknown): string {
  if (v === ABSENT) return '(absent)';
  const text = JSON.stringify(v);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/** Whether two JSON values (or {@link ABSENT}) are equal, map key order aside. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === ABSENT || b === ABSENT) return a === b;
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isPlainObject(v)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  }
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  const segment = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  return path === '' && segment.startsWith('.') ? segment.slice(1) : `${path}${segment}`;
}
