// Pure helpers for HTTP conditional and range requests (RFC 9110 §13 and §14), shared by the files and
// share-link routes. No I/O.

/** A satisfiable byte range, inclusive on both ends. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a representation of `size` bytes.
 * - undefined: no header, or one we ignore (not bytes, several ranges, malformed) → send the whole file,
 *   which RFC 9110 §14.2 allows;
 * - 'unsatisfiable': a well-formed single range that lies outside the file → 416;
 * - a ByteRange otherwise.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    // Suffix range: the last N bytes.
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    if (size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  if (b !== '' && Number(b) < start) return undefined; // invalid range-spec: ignore the header
  return { start, end };
}

/** Splits an If-Match / If-None-Match value into its entity tags ('*' stays '*'). */
function tagsOf(header: string): string[] {
  return header
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** If-Match (strong comparison): true when the request may proceed. `current` null = no such file. */
export function ifMatchPasses(header: string | undefined, current: string | null): boolean {
  if (header === undefined) return true;
  const tags = tagsOf(header);
  if (tags.includes('*')) return current !== null;
  return current !== null && tags.includes(current);
}

/** If-None-Match (weak comparison): true when the request may proceed (for GET: false means 304). */
export function ifNoneMatchPasses(header: string | undefined, current: string | null): boolean {
  if (header === undefined) return true;
  const tags = tagsOf(header);
  if (tags.includes('*')) return current === null;
  if (current === null) return true;
  const weakless = (t: string) => t.replace(/^W\//, '');
  return !tags.some((t) => weakless(t) === weakless(current));
}
