/**
 * Vector clocks keyed by server-issued device id (docs/sync-protocol.md). Pure logic: no I/O.
 * A missing entry counts as 0, so `{}` and `{a: 0}` are the same clock.
 */
export type VectorClock = Readonly<Record<string, number>>;

/** How clock `a` relates to clock `b`: AFTER = a happened after b (a dominates), BEFORE = the reverse. */
export type ClockOrder = 'before' | 'after' | 'equal' | 'concurrent';

/** The entry written by the server itself (REST edits and conflict resolutions); never a device id. */
export const SERVER_CLOCK_KEY = 'server';

/** Largest counter accepted: counters must stay exact in JSON numbers and in JS. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export function compareClocks(a: VectorClock, b: VectorClock): ClockOrder {
  let aBigger = false;
  let bBigger = false;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[key] ?? 0;
    const y = b[key] ?? 0;
    if (x > y) aBigger = true;
    else if (y > x) bBigger = true;
    if (aBigger && bBigger) return 'concurrent';
  }
  if (aBigger) return 'after';
  if (bBigger) return 'before';
  return 'equal';
}

/** a ≤ b in the partial order (b has seen everything a has). */
export function clockLessOrEqual(a: VectorClock, b: VectorClock): boolean {
  const order = compareClocks(a, b);
  return order === 'before' || order === 'equal';
}

/** Element-wise max; zero entries are dropped so equal clocks have one representation. */
export function mergeClocks(...clocks: VectorClock[]): VectorClock {
  const out: Record<string, number> = {};
  for (const clock of clocks) {
    for (const [key, value] of Object.entries(clock)) {
      if (value > (out[key] ?? 0)) out[key] = value;
    }
  }
  return normalizeClock(out);
}

/** The clock with `key`'s counter advanced by one: an event by that actor after everything in `clock`. */
export function incrementClock(clock: VectorClock, key: string): VectorClock {
  return normalizeClock({ ...clock, [key]: (clock[key] ?? 0) + 1 });
}

/** Sorted keys, zero entries removed: one canonical form for storage and checksums. */
export function normalizeClock(clock: VectorClock): VectorClock {
  const out: Record<string, number> = {};
  for (const key of Object.keys(clock).sort()) {
    const value = clock[key]!;
    if (value !== 0) out[key] = value;
  }
  return out;
}

/** Why `value` is not a valid clock, or null when it is (non-negative safe integers, non-empty keys). */
export function clockProblem(value: unknown, maxEntries = 1000): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object of {device_id: counter}';
  const entries = Object.entries(value);
  if (entries.length > maxEntries) return `has more than ${maxEntries} entries`;
  for (const [key, counter] of entries) {
    if (key.length === 0 || key.length > 64) return 'keys must be 1-64 characters';
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0 || counter > MAX_COUNTER) {
      return `counter for "${key}" must be a whole number >= 0`;
    }
  }
  return null;
}
