import { InvalidBlobKey } from './blob-store.port.ts';
import { TEMP_PREFIX } from './safe-path.ts';

// Keys of the BlobStore port (blob-store.port.ts). Pure string rules, no I/O. A key is '/'-separated
// segments in NFC, with no leading or trailing '/', no empty, '.' or '..' segment, no NUL, control
// character or backslash, and no segment starting with TEMP_PREFIX (adapters keep their temp entries
// under that prefix, so no key can ever name one). '' is the store's root, accepted only where a method
// says so. A key can therefore never climb out of the store, on any adapter.

/** Longest segment, in UTF-8 bytes (NAME_MAX of ext4, xfs, btrfs, apfs). */
export const MAX_KEY_SEGMENT_BYTES = 255;
/** Longest key in UTF-8 bytes. Adapters may allow less (s3: 1024; see their `maxKeyBytes`). */
export const MAX_KEY_BYTES = 4096;
/** Deepest key. Files allow 64 folders below a user's root, and the root is one more segment. */
export const MAX_KEY_DEPTH = 128;

// C0 controls, DEL and C1 controls (NUL included).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why one segment (a file or folder name) cannot be part of a key, or null. Fast for plain ASCII names,
 * since scan() runs it on every name of a million-file tree.
 */
export function segmentProblem(s: string): string | null {
  if (s === '') return 'contains an empty segment (or a leading or trailing "/")';
  if (s === '.' || s === '..') return `contains a "${s}" segment`;
  if (s.startsWith(TEMP_PREFIX)) return `segments starting with "${TEMP_PREFIX}" are reserved`;
  if (s.includes('\\')) return 'contains a backslash';
  if (PRINTABLE_ASCII.test(s)) return s.length > MAX_KEY_SEGMENT_BYTES ? `a segment is longer than ${MAX_KEY_SEGMENT_BYTES} bytes` : null;
  if (CONTROL.test(s)) return 'contains a NUL or control character';
  if (LONE_SURROGATE.test(s)) return 'is not well-formed Unicode';
  if (s.normalize('NFC') !== s) return 'is not in NFC';
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long names need counting.
  if (s.length * 3 > MAX_KEY_SEGMENT_BYTES && Buffer.byteLength(s) > MAX_KEY_SEGMENT_BYTES) {
    return `a segment is longer than ${MAX_KEY_SEGMENT_BYTES} bytes`;
  }
  return null;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Why `key` is not canonical, or null when it is. Cheap enough to run on every call of every adapter. */
export function keyProblem(key: string, allowRoot = false): string | null {
  if (typeof key !== 'string') return 'not a string';
  if (key === '') return allowRoot ? null : 'the root cannot be used here';
  if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  const segments = key.split('/');
  if (segments.length > MAX_KEY_DEPTH) return `deeper than ${MAX_KEY_DEPTH} segments`;
  for (const s of segments) {
    const problem = segmentProblem(s);
    if (problem) return problem;
  }
  return null;
}

/** Throws InvalidBlobKey('malformed') unless `key` is canonical. Every adapter method calls it first. */
export function assertBlobKey(key: string, options: { allowRoot?: boolean } = {}): void {
  const problem = keyProblem(key, options.allowRoot);
  if (problem) throw new InvalidBlobKey(String(key), 'malformed', problem);
}

/**
 * Builds a key from segments or partial keys ('a/b', 'c' → 'a/b/c'), normalising to NFC and validating.
 * Empty parts are skipped, so `blobKey(prefix, rel)` works with a '' prefix or rel.
 * @throws InvalidBlobKey('malformed')
 */
export function blobKey(...parts: string[]): string {
  const key = parts
    .filter((p) => p !== '')
    .join('/')
    .normalize('NFC');
  assertBlobKey(key, { allowRoot: true });
  return key;
}

/** The folder holding `key`: 'a/b/c' → 'a/b', 'a' → '' (the root). */
export function parentKey(key: string): string {
  const i = key.lastIndexOf('/');
  return i < 0 ? '' : key.slice(0, i);
}

/** The last segment of `key`: 'a/b/c' → 'c'. */
export function keyName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** True when `key` is `prefix` or lies below it ('' contains everything). */
export function isKeyWithin(key: string, prefix: string): boolean {
  return prefix === '' || key === prefix || key.startsWith(`${prefix}/`);
}

/** `key` relative to `prefix` (which must contain it): ('a/b/c', 'a') → 'b/c'; the prefix itself → ''. */
export function relativeKey(key: string, prefix: string): string {
  if (prefix === '') return key;
  return key === prefix ? '' : key.slice(prefix.length + 1);
}

/**
 * Compares two strings in the byte order of their UTF-8 encoding (= code point order), which is how scan()
 * sorts and how SQLite (BINARY) and PostgreSQL (COLLATE "C") sort. JavaScript's `<` compares UTF-16 code
 * units instead, which differs for characters above U+FFFF against U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points above FFFF: move them above E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
