// Pure comparison logic of index reconciliation (issue 4): which disk entries are indexable, and how one
// directory on disk differs from its rows in `stored_files`. No I/O here, so every rule is unit-tested on
// its own; the service feeds it listings from storage/tree-walker.ts and rows from the repository.

import { contentTypeFor, DIRECTORY_CONTENT_TYPE } from '../files/content-type.ts';
import type { FileRecord } from '../files/files.types.ts';
import { MAX_DEPTH, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, TEMP_PREFIX } from '../../storage/safe-path.ts';
import type { DiskEntry } from '../../storage/tree-walker.ts';

export const SYNC_MODES = ['audit', 'sync', 'clean', 'full'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/** Modes that delete index rows and therefore need `force`. */
export const DESTRUCTIVE_MODES: ReadonlySet<SyncMode> = new Set(['clean', 'full']);

export interface SyncError {
  /** Relative to the storage root: `<userId>/<path>` (or the storage root itself). */
  path: string;
  /** errno code (EACCES, EIO…) or one of ours: symlink, invalid_utf8, invalid_name, name_collision,
   * too_deep, storage_root_missing, user_root_missing, unknown_owner_folder. */
  code: string;
  message: string;
}

/** The result of one run; JSON-serialisable, field names as issue 4 specifies them. */
export interface IndexSyncStats {
  users_scanned: number;
  files_on_disk: number;
  dirs_on_disk: number;
  files_in_db: number;
  missing_in_db: number;
  orphaned_in_db: number;
  stale_in_db: number;
  records_created: number;
  records_updated: number;
  records_deleted: number;
  records_skipped: number;
  errors: SyncError[];
  duration_ms: number;
}

export function emptyStats(): IndexSyncStats {
  return {
    users_scanned: 0,
    files_on_disk: 0,
    dirs_on_disk: 0,
    files_in_db: 0,
    missing_in_db: 0,
    orphaned_in_db: 0,
    stale_in_db: 0,
    records_created: 0,
    records_updated: 0,
    records_deleted: 0,
    records_skipped: 0,
    errors: [],
    duration_ms: 0,
  };
}

/** True when the stats show drift between disk and index (what the start-up audit warns about). */
export function hasDrift(stats: IndexSyncStats): boolean {
  return stats.missing_in_db + stats.orphaned_in_db + stats.stale_in_db > 0 || stats.errors.length > 0;
}

/**
 * One index row as the comparison needs it: a slice of the files module's FileRecord, so the two cannot
 * drift apart. `updatedAt` is optional: the sorted row stream leaves it out (one column less on a million
 * rows); the service re-reads it for the few rows that differ from the disk before counting them.
 */
export type IndexRow = Pick<FileRecord, 'id' | 'path' | 'name' | 'size' | 'contentType' | 'isDirectory' | 'modifiedAt'> &
  Partial<Pick<FileRecord, 'updatedAt'>>;

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

/** What differs between a row and the disk (empty when the row is current). Folders: only their kind. */
export function staleFields(row: IndexRow, item: DiskItem): string[] {
  const isDir = item.kind === 'dir';
  if (row.isDirectory !== isDir) return ['is_directory'];
  const fields: string[] = [];
  if (isDir) {
    // A folder's mtime changes with every entry added or removed, and its size means nothing: comparing
    // them would report every active folder as stale.
    if (row.contentType !== DIRECTORY_CONTENT_TYPE) fields.push('content_type');
    return fields;
  }
  if (row.size !== item.size) fields.push('size');
  if (row.contentType !== contentTypeFor(item.name)) fields.push('content_type');
  if (Date.parse(row.modifiedAt) !== Math.trunc(item.mtimeMs)) fields.push('mtime');
  return fields;
}

export interface DirectoryDiff {
  missing: DiskItem[];
  stale: Array<{ row: IndexRow; item: DiskItem; fields: string[] }>;
  orphaned: IndexRow[];
  /** Rows or entries changed after the scan started: left for the next run, neither reported nor touched. */
  inFlight: number;
}

/** When a run started, and from when on a disk mtime counts as "being written now". */
export interface ScanWindow {
  /** Rows updated at or after this moment were written during the scan. */
  startedMs: number;
  /**
   * Disk entries modified at or after this moment may be uploads whose index row is about to be written
   * (the files API writes the disk first, then the row). Earlier than startedMs by a grace period, because
   * file timestamps come from the kernel's coarse clock and an upload spans a few milliseconds.
   */
  diskFreshSinceMs: number;
}

/**
 * Compares one directory on disk with its index rows. Anything modified on disk or in the index within
 * the scan window is being written right now (an upload in flight) and is skipped rather than misreported.
 * `protectedNames`: entries that exist but could not be examined (EACCES): their rows are not orphans.
 */
export function diffDirectory(
  items: readonly DiskItem[],
  rows: readonly IndexRow[],
  window: ScanWindow,
  protectedNames: ReadonlySet<string> = new Set(),
): DirectoryDiff {
  const scanStartedMs = window.startedMs;
  const rowsByName = new Map<string, IndexRow>();
  for (const r of rows) rowsByName.set(r.name, r);
  const diff: DirectoryDiff = { missing: [], stale: [], orphaned: [], inFlight: 0 };
  // Freshness is only worked out for entries that differ: parsing two timestamps per row is measurable
  // on a million files.
  const fresh = (item: DiskItem, row: IndexRow | undefined) =>
    item.mtimeMs >= window.diskFreshSinceMs || (row?.updatedAt !== undefined && Date.parse(row.updatedAt) >= scanStartedMs);
  for (const item of items) {
    const row = rowsByName.get(item.name);
    if (row) rowsByName.delete(item.name);
    if (!row) {
      if (fresh(item, undefined)) diff.inFlight++;
      else diff.missing.push(item);
      continue;
    }
    const fields = staleFields(row, item);
    if (fields.length === 0) continue;
    if (fresh(item, row)) diff.inFlight++;
    else diff.stale.push({ row, item, fields });
  }
  for (const row of rowsByName.values()) {
    if (protectedNames.has(row.name)) continue;
    if (row.updatedAt !== undefined && Date.parse(row.updatedAt) >= scanStartedMs) diff.inFlight++;
    else diff.orphaned.push(row);
  }
  return diff;
}

/** The row values sync writes for a disk item (sha256 stays NULL: the files API computes it lazily). */
export function rowValuesFor(item: DiskItem): { size: number; contentType: string; isDirectory: boolean; modifiedAt: string } {
  const isDirectory = item.kind === 'dir';
  return {
    size: isDirectory ? 0 : item.size,
    contentType: isDirectory ? DIRECTORY_CONTENT_TYPE : contentTypeFor(item.name),
    isDirectory,
    modifiedAt: isoFromMtime(item.mtimeMs),
  };
}

/**
 * Orders strings by Unicode code point, which is UTF-8 byte order: SQLite's BINARY collation and
 * PostgreSQL's "C". JavaScript's `<` compares UTF-16 code units, which disagrees only when a surrogate
 * (a code point above U+FFFF) meets a character in U+E000–U+FFFF.
 */
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

/** A binary min-heap: the folders still to visit, smallest path first. */
export class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const a = this.items;
    let i = a.length;
    a.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.compare(item, a[parent]!) >= 0) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.compare(a[r]!, a[l]!) < 0 ? r : l;
        if (this.compare(a[m]!, last) >= 0) break;
        a[i] = a[m]!;
        i = m;
      }
      a[i] = last;
    }
    return top;
  }
}
