import { DEVICE_ID_PATTERN } from '../devices/devices.types.ts';

/**
 * Vector clocks keyed by server-issued device id (docs/sync-protocol.md). Pure logic: no I/O.
 * A missing entry counts as 0, so `{}` and `{a: 0}` are the same clock.
 *
 * Clocks arrive from clients, so a key may be any string, `constructor` or `__proto__` included. Every
 * lookup here goes through `entry()` (own properties only) and every clock built here has a null
 * prototype, so an inherited property can never pose as a counter (issue 12: `compare({dev_a:5},
 * {constructor:5, dev_a:4})` said `after`). Untrusted clocks must pass `clockProblem` first, which admits
 * device ids and `server` only.
 */
export type VectorClock = Readonly<Record<string, number>>;

/** How clock `a` relates to clock `b`: AFTER = a happened after b (a dominates), BEFORE = the reverse. */
export type ClockOrder = 'before' | 'after' | 'equal' | 'concurrent';

/** The entry written by the server itself (REST edits and conflict resolutions); never a device id. */
export const SERVER_CLOCK_KEY = 'server';

/** Largest counter accepted: counters must stay exact in JSON numbers and in JS. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** `key`'s counter in `clock`: own properties only, 0 when absent. */
function entry(clock: VectorClock, key: string): number {
  return Object.hasOwn(clock, key) ? clock[key]! : 0;
}

/** An empty clock without a prototype. */
function emptyClock(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

export function compareClocks(a: VectorClock, b: VectorClock): ClockOrder {
  let aBigger = false;
  let bBigger = false;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = entry(a, key);
    const y = entry(b, key);
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
  const out = emptyClock();
  for (const clock of clocks) {
    for (const key of Object.keys(clock)) {
      const value = entry(clock, key);
      if (value > entry(out, key)) out[key] = value;
    }
  }
  return normalizeClock(out);
}

/** The clock with `key`'s counter advanced by one: an event by that actor after everything in `clock`. */
export function incrementClock(clock: VectorClock, key: string): VectorClock {
  const out = emptyClock();
  for (const k of Object.keys(clock)) out[k] = entry(clock, k);
  out[key] = entry(clock, key) + 1;
  return normalizeClock(out);
}

/** Sorted keys, zero entries removed, no prototype: one canonical form for storage and checksums. */
export function normalizeClock(clock: VectorClock): VectorClock {
  const out = emptyClock();
  for (const key of Object.keys(clock).sort()) {
    const value = entry(clock, key);
    if (value !== 0) out[key] = value;
  }
  return out;
}

/** Device ids and the server's own entry: the only keys a clock may hold. */
export function isClockKey(key: string): boolean {
  return key === SERVER_CLOCK_KEY || DEVICE_ID_PATTERN.test(key);
}

/** Why `value` is not a valid clock, or null when it is (device-id or `server` keys, non-negative safe integers). */
export function clockProblem(value: unknown, maxEntries = 1000): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object of {device_id: counter}';
  const keys = Object.keys(value);
  if (keys.length > maxEntries) return `has more than ${maxEntries} entries`;
  for (const key of keys) {
    if (!isClockKey(key)) return `keys must be device ids (dev_ + 16 hex digits) or "server", not ${JSON.stringify(key.slice(0, 64))}`;
    const counter = (value as Record<string, unknown>)[key];
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0 || counter > MAX_COUNTER) {
      return `counter for "${key}" must be a whole number >= 0`;
    }
  }
  return null;
}

/** A clock from its stored JSON text, without a prototype (like every clock built here). */
export function clockFromJson(text: string): VectorClock {
  return Object.assign(emptyClock(), JSON.parse(text) as VectorClock);
}
