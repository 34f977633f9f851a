import type { JsonValue } from './types.ts';

/**
 * Where `value` would not survive a JSON round trip unchanged, as a path and reason; null when it would.
 * A stricter check than comparing JSON.stringify output: a Date, Map, class instance, undefined, NaN or
 * function is refused instead of silently turning into something else.
 */
export function jsonProblem(value: unknown, path = '$', seen = new Set<object>()): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path} is ${value}, which JSON cannot hold`;
  if (typeof value !== 'object') return `${path} is a ${typeof value}, which JSON cannot hold`;
  if (seen.has(value)) return `${path} is a circular reference`;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `${path}[${i}] is a hole in a sparse array`;
        const p = jsonProblem(value[i], `${path}[${i}]`, seen);
        if (p) return p;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      return `${path} is a ${(value as object).constructor?.name ?? 'non-plain object'}, not a plain object`;
    }
    for (const [key, v] of Object.entries(value)) {
      const p = jsonProblem(v, `${path}.${key}`, seen);
      if (p) return p;
    }
    return null;
  } finally {
    seen.delete(value);
  }
}

/** What cloneJson returns for a value jsonProblem would refuse. */
export const NOT_JSON: unique symbol = Symbol('not JSON');

/**
 * `JSON.parse(JSON.stringify(value))` for a value jsonProblem accepts, in one pass that also does the
 * check: NOT_JSON for any value jsonProblem refuses (call jsonProblem then for the reason). The hot
 * paths (every enqueue's args, every attempt's return value) used to walk the value three times.
 * Same result as the round trip: plain objects (own enumerable string keys, "__proto__" kept as an own
 * property), dense arrays, finite numbers with -0 turned into 0, shared sub-objects copied apart.
 */
export function cloneJson(value: unknown): JsonValue | typeof NOT_JSON {
  // A primitive (a no-op task's null return value, say) needs no ancestor list.
  return cloneInto(value, value !== null && typeof value === 'object' ? [] : NO_ANCESTORS);
}

const NO_ANCESTORS: object[] = [];

/** `ancestors`: the objects being copied above this one (an array: cheaper than a Set for shallow values). */
function cloneInto(value: unknown, ancestors: object[]): JsonValue | typeof NOT_JSON {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value as JsonValue;
  if (typeof value === 'number') return Number.isFinite(value) ? value + 0 : NOT_JSON;
  if (typeof value !== 'object' || ancestors.includes(value)) return NOT_JSON;
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      const out: JsonValue[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return NOT_JSON;
        const v = cloneInto(value[i], ancestors);
        if (v === NOT_JSON) return NOT_JSON;
        out[i] = v;
      }
      return out;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return NOT_JSON;
    const out: { [key: string]: JsonValue } = {};
    for (const key of Object.keys(value)) {
      const v = cloneInto((value as Record<string, unknown>)[key], ancestors);
      if (v === NOT_JSON) return NOT_JSON;
      // Assigning "__proto__" would set the copy's prototype; JSON.parse makes it an own property.
      if (key === '__proto__') Object.defineProperty(out, key, { value: v, writable: true, enumerable: true, configurable: true });
      else out[key] = v;
    }
    return out;
  } finally {
    ancestors.pop();
  }
}
