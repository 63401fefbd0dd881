/** Kubernetes resource quantities (`"1Gi"`, `"500m"`, `"1e3"`), parsed to numbers of base units. */

const SUFFIX_FACTOR: Readonly<Record<string, number>> = Object.freeze({
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
});

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/;

/**
 * Parses a quantity into base units (bytes for storage, cores for CPU).
 * @returns the value, or `undefined` when the text is not a valid Kubernetes quantity.
 */
export function parseQuantity(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const match = QUANTITY.exec(value.trim());
  if (!match) return undefined;
  const [, digits, exponent, suffix] = match;
  const factor = exponent ? 10 ** Number(exponent.slice(1)) : SUFFIX_FACTOR[suffix ?? '']!;
  return Number(digits) * factor;
}

/** Whether the text is a valid Kubernetes quantity. */
export function isQuantity(value: string): boolean {
  return parseQuantity(value) !== undefined;
}
