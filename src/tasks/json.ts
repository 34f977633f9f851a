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

export function isJsonValue(value: unknown): value is JsonValue {
  return jsonProblem(value) === null;
}
