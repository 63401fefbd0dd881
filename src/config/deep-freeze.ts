/**
 * Freezes a plain-data value and everything reachable from it. Boot config is shared by every reconcile; Velero's
 * shared `LoadAffinity` was mutated on each expose and grew duplicate terms (velero#10341), so ours cannot be.
 * In ESM (strict mode) a write to a frozen object throws a TypeError instead of being silently dropped.
 *
 * @returns the same value, now frozen (shallowly frozen children are frozen too; cycles are safe).
 */
export function deepFreeze<T>(value: T): T {
  freezeReachable(value, new WeakSet());
  return value;
}

function freezeReachable(value: unknown, visited: WeakSet<object>): void {
  if (value === null || typeof value !== 'object' || visited.has(value)) return;
  visited.add(value);
  Object.freeze(value);
  for (const key of Reflect.ownKeys(value)) {
    freezeReachable((value as Record<PropertyKey, unknown>)[key], visited);
  }
}
