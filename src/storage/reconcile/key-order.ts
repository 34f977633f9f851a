// Key order of both scans: Unicode code points, which is UTF-8 byte order (SQLite BINARY, PostgreSQL
// COLLATE "C", S3 listings). JavaScript's `<` compares UTF-16 code units, which disagrees only when a
// surrogate (a code point above U+FFFF) meets a character in U+E000–U+FFFF.

export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

const SURROGATE = /[\ud800-\udfff]/;

/**
 * Sorts in place by `keyOf` in code-point order. Without surrogates (nearly always) code-unit order is the
 * same and the plain comparison is several times faster than compareCodePoints on 10,000-entry folders.
 */
export function sortByKey<T>(items: T[], keyOf: (item: T) => string): T[] {
  let plain = true;
  for (const item of items) {
    if (SURROGATE.test(keyOf(item))) {
      plain = false;
      break;
    }
  }
  if (plain) items.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  else items.sort((a, b) => compareCodePoints(keyOf(a), keyOf(b)));
  return items;
}

/** Groups a one-at-a-time sorted iterable (a BlobStore scan) into pages for the engine. */
export async function* inPages<T>(source: AsyncIterable<T> | Iterable<T>, size = 1000): AsyncGenerator<T[]> {
  let page: T[] = [];
  for await (const item of source) {
    page.push(item);
    if (page.length >= size) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}
