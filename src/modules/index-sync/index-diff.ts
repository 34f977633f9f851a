// Pure comparison logic of index reconciliation (issue 4): which disk entries are indexable, and how one
// directory on disk differs from its rows in `stored_files`. No I/O here, so every rule is unit-tested on
// its own; the service feeds it listings from storage/tree-walker.ts and rows from the repository.

import { contentTypeFor, DIRECTORY_CONTENT_TYPE } from '../files/content-type.ts';
import type { FileRecord } from '../files/files.types.ts';
import { MAX_DEPTH, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, TEMP_PREFIX } from '../../storage/safe-path.ts';
import type { IndexedRow } from '../../storage/reconcile/reconcile.types.ts';
import type { DiskEntry } from '../../storage/tree-walker.ts';

// The modes, the stats object and the key order belong to the reconciliation engine (issue 8); their
// files-era names stay as aliases for the files module's surfaces.
export { compareCodePoints } from '../../storage/reconcile/key-order.ts';
export {
  DESTRUCTIVE_MODES,
  emptyStats,
  hasDrift,
  RECONCILE_MODES as SYNC_MODES,
  type ReconcileError as SyncError,
  type ReconcileMode as SyncMode,
  type ReconcileStats as IndexSyncStats,
} from '../../storage/reconcile/reconcile.types.ts';

/**
 * One index row as the comparison needs it: a slice of the files module's FileRecord, so the two cannot
 * drift apart. `updatedAt` is optional: the sorted row stream leaves it out (one column less on a million
 * rows); the service re-reads it for the few rows that differ from the disk before counting them.
 */
export type IndexRow = Pick<FileRecord, 'id' | 'path' | 'name' | 'size' | 'contentType' | 'isDirectory' | 'modifiedAt'> &
  Partial<Pick<FileRecord, 'updatedAt'>>;

/** A stored_files row as the reconciliation engine streams it (sorted by path = its key). */
export interface FileIndexRow extends IndexedRow {
  size: number;
  contentType: string;
  modifiedAt: string;
}

/** An indexable disk entry: a regular file or a folder with an acceptable name. */
export interface DiskItem {
  /** NFC name, as the index stores it. */
  name: string;
  /** The name on disk (NFD on some clients' volumes), needed to open it. */
  diskName: string;
  kind: 'file' | 'dir';
  size: number;
  mtimeMs: number;
}

export interface EntryProblem {
  /** The name as best shown (lossy for invalid UTF-8). */
  name: string;
  code: string;
  message: string;
  /** True when the entry exists but could not be examined (EACCES…): rows with this name are protected. */
  unreadable: boolean;
}

export interface ClassifiedListing {
  items: DiskItem[];
  problems: EntryProblem[];
}

/** Upload temp files (`.sv-tmp-…`) are in-flight writes, never user data: skipped before any syscall. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

// Same rules as normalizeUserPath (storage/safe-path.ts), per segment and fast: a name the files API
// would refuse can never be addressed, so indexing it would create a row nobody can use.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const PLAIN_ASCII = /^[\x20-\x7e]*$/;

function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Why a (decoded) name cannot be indexed, or null when it can. */
export function nameProblem(name: string): string | null {
  if (name === '.' || name === '..') return `"${name}" is not a file name`;
  if (PLAIN_ASCII.test(name)) {
    if (name.includes('\\')) return 'contains a backslash';
    return name.length > MAX_SEGMENT_BYTES ? `longer than ${MAX_SEGMENT_BYTES} bytes` : null;
  }
  if (CONTROL.test(name)) return 'contains a control character';
  if (name.includes('\\')) return 'contains a backslash';
  if (LONE_SURROGATE.test(name)) return 'is not well-formed Unicode';
  if (utf8Bytes(name.normalize('NFC')) > MAX_SEGMENT_BYTES) return `longer than ${MAX_SEGMENT_BYTES} bytes`;
  return null;
}

/** NFC form of a name; plain ASCII (the common case) is returned as is without normalising. */
export function nfc(name: string): string {
  return PLAIN_ASCII.test(name) ? name : name.normalize('NFC');
}

export function joinRel(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/**
 * Sorts one directory's entries into indexable items and reported problems. `depth` is the depth of the
 * directory listed (0 = the user's root); `parentPathBytes` the UTF-8 length of its relative path.
 * Sockets, FIFOs and devices are skipped silently (issue 4); symlinks are reported and never followed.
 */
export function classifyListing(entries: DiskEntry[], depth: number, parentPathBytes: number): ClassifiedListing {
  const items: DiskItem[] = [];
  const problems: EntryProblem[] = [];
  const byNfcName = new Map<string, DiskItem>();
  for (const e of entries) {
    if (e.invalidUtf8Hex !== undefined) {
      problems.push({ name: e.name, code: 'invalid_utf8', message: `name is not valid UTF-8 (bytes ${e.invalidUtf8Hex})`, unreadable: false });
      continue;
    }
    if (e.error) {
      problems.push({ name: e.name, code: e.error.code, message: e.error.message, unreadable: true });
      continue;
    }
    if (e.kind === 'special') continue;
    if (e.kind === 'symlink') {
      problems.push({ name: e.name, code: 'symlink', message: 'symbolic link: not followed, not indexed', unreadable: false });
      continue;
    }
    const why = nameProblem(e.name);
    if (why) {
      problems.push({ name: e.name, code: 'invalid_name', message: `name cannot be indexed: ${why}`, unreadable: false });
      continue;
    }
    const name = nfc(e.name);
    if (depth + 1 > MAX_DEPTH) {
      problems.push({ name, code: 'too_deep', message: `deeper than ${MAX_DEPTH} folders: the files API cannot address it`, unreadable: false });
      continue;
    }
    if (parentPathBytes + 1 + utf8Bytes(name) > MAX_PATH_BYTES) {
      problems.push({ name, code: 'path_too_long', message: `path longer than ${MAX_PATH_BYTES} bytes`, unreadable: false });
      continue;
    }
    const item: DiskItem = { name, diskName: e.name, kind: e.kind, size: e.size, mtimeMs: e.mtimeMs };
    const twin = byNfcName.get(name);
    if (twin) {
      // Two names on disk that differ only in Unicode normalisation map to one index path. Keep the one
      // already in NFC (what the files API writes); report the other.
      const keepNew = item.diskName === name;
      const dropped = keepNew ? twin : item;
      if (keepNew) {
        items[items.indexOf(twin)] = item;
        byNfcName.set(name, item);
      }
      problems.push({
        name: dropped.diskName,
        code: 'name_collision',
        message: `differs from another name in this folder only by Unicode normalisation (both are "${name}" in NFC)`,
        unreadable: false,
      });
      continue;
    }
    byNfcName.set(name, item);
    items.push(item);
  }
  return { items, problems };
}

/** Modification time as the index stores it: ISO-8601 UTC, millisecond precision. */
export function isoFromMtime(mtimeMs: number): string {
  return new Date(Math.trunc(mtimeMs)).toISOString();
}

/**
 * isoFromMtime for a run's worth of entries. Files of one tree mostly share their second (copied or
 * extracted together), so the formatted second is kept from one call to the next: Date#toISOString cost
 * more than the lstat that produced the time, on a million files. One per run (no shared state).
 */
export class MtimeFormatter {
  private second = Number.NaN;
  private prefix = '';

  format(mtimeMs: number): string {
    const ms = Math.trunc(mtimeMs);
    const second = Math.floor(ms / 1000);
    if (second !== this.second) {
      const iso = isoFromMtime(ms);
      // Years outside 0000–9999 have another shape: not worth a special case.
      if (iso.length !== 24) return iso;
      this.second = second;
      this.prefix = iso.slice(0, 20);
    }
    const frac = ms - second * 1000;
    return `${this.prefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
  }
}

/** What differs between a row and the disk (empty when the row is current). Folders: only their kind. */
export function staleFields(row: IndexRow, item: DiskItem): string[] {
  return staleFieldsOf(row.isDirectory, row.size, row.contentType, row.modifiedAt, item.kind, item.size, item.mtimeMs, item.name);
}

/**
 * staleFields without building objects (it runs once per file on every re-audit). `nameOrPath`: content
 * types derive from the name alone, and contentTypeFor takes a path as well.
 */
export function staleFieldsOf(
  rowIsDir: boolean,
  rowSize: number,
  rowContentType: string,
  rowModifiedAt: string,
  kind: 'file' | 'dir',
  size: number,
  mtimeMs: number,
  nameOrPath: string,
): string[] {
  const isDir = kind === 'dir';
  if (rowIsDir !== isDir) return ['is_directory'];
  if (isDir) {
    // A folder's mtime changes with every entry added or removed, and its size means nothing: comparing
    // them would report every active folder as stale.
    return rowContentType !== DIRECTORY_CONTENT_TYPE ? ['content_type'] : NONE;
  }
  let fields: string[] | undefined;
  if (rowSize !== size) (fields ??= []).push('size');
  if (rowContentType !== contentTypeFor(nameOrPath)) (fields ??= []).push('content_type');
  if (Date.parse(rowModifiedAt) !== Math.trunc(mtimeMs)) (fields ??= []).push('mtime');
  return fields ?? NONE;
}

const NONE: string[] = [];

/** The row values sync writes for a disk item (sha256 stays NULL: the files API computes it lazily). */
export function rowValuesFor(
  item: Pick<DiskItem, 'name' | 'kind' | 'size' | 'mtimeMs'>,
  iso: (mtimeMs: number) => string = isoFromMtime,
): { size: number; contentType: string; isDirectory: boolean; modifiedAt: string } {
  const isDirectory = item.kind === 'dir';
  return {
    size: isDirectory ? 0 : item.size,
    contentType: isDirectory ? DIRECTORY_CONTENT_TYPE : contentTypeFor(item.name),
    isDirectory,
    modifiedAt: iso(item.mtimeMs),
  };
}
