import path from 'node:path';
import { AppError } from '../errors.ts';

// Pure path rules for user-supplied file paths (issue 2, "Paths"). No I/O here: the symlink half of the
// containment check (realpath/lstat) lives with the filesystem code in storage/fs-blob-store.ts.
// `node:path` is only string manipulation.

/**
 * Prefix of every temp file Stormvault writes next to its target (see atomic.ts). A user may never create
 * or address such a name, so reconciliation and listings can skip them without ever hiding user data.
 */
export const TEMP_PREFIX = '.sv-tmp-';

/** Longest segment, in UTF-8 bytes: the common filesystem limit (ext4, xfs, btrfs, apfs). */
export const MAX_SEGMENT_BYTES = 255;
/** Longest whole relative path, in UTF-8 bytes (PATH_MAX minus room for storage root and user id). */
export const MAX_PATH_BYTES = 3072;
/** Deepest nesting accepted; deeper trees are almost certainly abuse and make recursive work expensive. */
export const MAX_DEPTH = 64;

const encoder = new TextEncoder();
const byteLength = (s: string) => encoder.encode(s).length;

// C0 controls, DEL and C1 controls. NUL is among them.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function invalid(input: string, why: string): AppError {
  const shown = JSON.stringify(input.length > 120 ? `${input.slice(0, 120)}…` : input);
  return new AppError('invalid_path', `invalid path ${shown}: ${why}`);
}

export interface NormalizeOptions {
  /** Accept the empty path (or "/") as the user's root; otherwise the root is refused. */
  allowRoot?: boolean;
}

/**
 * Validates a user-supplied path and returns it in canonical form: NFC, '/'-separated, relative, without
 * leading or trailing slash ('' is the root, only with `allowRoot`). One leading and one trailing '/'
 * are tolerated ("/docs/a.txt", "docs/"), anything else that is not canonical is refused rather than
 * repaired, so two different inputs can never silently address the same file.
 *
 * @throws AppError('invalid_path') for `.`/`..` segments, NUL or control characters, backslashes, empty
 *   segments (`a//b`), a segment over 255 UTF-8 bytes, an overlong or too deep path, or a segment that
 *   starts with TEMP_PREFIX.
 */
export function normalizeUserPath(input: string, opts: NormalizeOptions = {}): string {
  if (typeof input !== 'string') throw new AppError('invalid_path', 'path must be a string');
  if (CONTROL.test(input)) throw invalid(input, 'contains a NUL or control character');
  if (input.includes('\\')) throw invalid(input, 'contains a backslash');
  // Lone surrogates cannot be encoded to UTF-8 (they would become U+FFFD on disk): refuse them.
  if (LONE_SURROGATE.test(input)) throw invalid(input, 'is not well-formed Unicode');

  let p = input.normalize('NFC');
  if (p.startsWith('/')) p = p.slice(1);
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '') {
    if (opts.allowRoot) return '';
    throw invalid(input, 'the root folder cannot be used here');
  }
  if (byteLength(p) > MAX_PATH_BYTES) throw invalid(input, `longer than ${MAX_PATH_BYTES} bytes`);

  const segments = p.split('/');
  if (segments.length > MAX_DEPTH) throw invalid(input, `deeper than ${MAX_DEPTH} folders`);
  for (const segment of segments) {
    if (segment === '') throw invalid(input, 'contains an empty segment');
    if (segment === '.' || segment === '..') throw invalid(input, `contains a "${segment}" segment`);
    if (byteLength(segment) > MAX_SEGMENT_BYTES) throw invalid(input, `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    if (segment.startsWith(TEMP_PREFIX)) throw invalid(input, `names starting with "${TEMP_PREFIX}" are reserved`);
  }
  return p;
}

/** Parent of a canonical path: 'a/b/c' → 'a/b', 'a' → '' (the root). The root has no parent ('' → ''). */
export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** Last segment of a canonical path: 'a/b/c' → 'c'; '' (the root) → ''. */
export function nameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** True when `p` is `ancestor` itself or lies below it (canonical paths; '' is everyone's ancestor). */
export function isSameOrBelow(p: string, ancestor: string): boolean {
  return ancestor === '' || p === ancestor || p.startsWith(`${ancestor}/`);
}

// User ids are UUIDs today; accept any id that is a single safe path segment so the rule is about safety.
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** `<storageRoot>/<userId>`, absolute. */
export function userRoot(storageRoot: string, userId: string): string {
  if (!USER_ID.test(userId)) throw new AppError('internal', 'user id is not a safe path segment');
  return path.join(path.resolve(storageRoot), userId);
}

/**
 * Absolute on-disk location of a user path: `<storageRoot>/<userId>/<relPath>`. `relPath` is validated
 * again (defence in depth: callers should already hold a normalised path), and the result is checked to
 * lie inside the user's root lexically. Symlinks on disk are NOT resolved here (pure); the filesystem
 * layer must check them (realpath) before following anything.
 */
export function joinUserRoot(storageRoot: string, userId: string, relPath: string): string {
  const root = userRoot(storageRoot, userId);
  const rel = normalizeUserPath(relPath, { allowRoot: true });
  if (rel === '') return root;
  const abs = path.join(root, ...rel.split('/'));
  if (!abs.startsWith(root + path.sep)) throw invalid(relPath, 'resolves outside the user root');
  return abs;
}
