// Pure comparison logic of index reconciliation of the files scope (issues 4 and 8): how a disk entry
// differs from its row in `stored_files`, and the row values sync writes. No I/O here, so every rule is
// unit-tested on its own. Which disk entries are indexable (names, depth, links) is decided by the files
// BlobStore's scan with the files side's options (files-index-side.ts).

import { contentTypeFor, DIRECTORY_CONTENT_TYPE } from '../files/content-type.ts';
import type { FileRecord } from '../files/files.types.ts';
import type { IndexedRow } from '../../storage/reconcile/reconcile.types.ts';

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

/** A disk entry as the comparison needs it. */
export interface DiskItem {
  /** NFC name, as the index stores it. */
  name: string;
  kind: 'file' | 'dir';
  size: number;
  mtimeMs: number;
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

/**
 * Date.parse for `YYYY-MM-DDTHH:MM:SS.mmmZ` (what toISOString writes, so what the index holds) read from
 * the digits, falling back to Date.parse for any other spelling. A re-audit reads one per file.
 */
export function isoMs(s: string): number {
  if (s.length !== 24 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46 || s.charCodeAt(23) !== 90) {
    return Date.parse(s);
  }
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const sec = digits(s, 17, 2);
  const ms = digits(s, 20, 3);
  // Out-of-range fields (month 13, hour 25…) are what Date.parse refuses: let it decide.
  // Date.UTC reads years 0–99 as 1900–1999.
  if (y < 100 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 || ms < 0) return Date.parse(s);
  const t = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  // Day 31 of a 30-day month rolls over in Date.UTC, not in Date.parse.
  return new Date(t).getUTCDate() === d || d <= 28 ? t : Date.parse(s);
}

/** The decimal number in s[at, at + n), or -1 when a character is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Extensions remembered by a StaleCheck; beyond this the memo starts over (memory stays bounded). */
const MAX_REMEMBERED_TYPES = 4096;

/**
 * staleFieldsOf for one run's worth of entries, with what a re-audit of a million unchanged files spends
 * its comparison time on cut out (issue 8): the content type is looked up once per extension (mime-types
 * allocates several strings per lookup), and the row's mtime is read from its digits when it has the
 * shape the index writes (toISOString's), without Date.parse. Same answers as staleFieldsOf (tested).
 * One per partition.
 */
export class StaleCheck {
  private readonly types = new Map<string, string>();

  fields(rowIsDir: boolean, rowSize: number, rowContentType: string, rowModifiedAt: string, kind: 'file' | 'dir', size: number, mtimeMs: number, path: string): string[] {
    const isDir = kind === 'dir';
    if (rowIsDir !== isDir) return ['is_directory'];
    if (isDir) return rowContentType !== DIRECTORY_CONTENT_TYPE ? ['content_type'] : NONE;
    let fields: string[] | undefined;
    if (rowSize !== size) (fields ??= []).push('size');
    if (rowContentType !== this.contentType(path)) (fields ??= []).push('content_type');
    if (isoMs(rowModifiedAt) !== Math.trunc(mtimeMs)) (fields ??= []).push('mtime');
    return fields ?? NONE;
  }

  /** contentTypeFor(path), remembered per extension as spelled (the lookup lower-cases it). */
  contentType(path: string): string {
    const dot = path.lastIndexOf('.');
    // No extension, a dotfile or a trailing dot: contentTypeFor decides (it needs no lookup then).
    if (dot <= 0 || dot === path.length - 1 || path.charCodeAt(dot - 1) === 47 || path.indexOf('/', dot) >= 0) return contentTypeFor(path);
    const ext = path.slice(dot + 1);
    let type = this.types.get(ext);
    if (type === undefined) {
      type = contentTypeFor(path);
      if (this.types.size >= MAX_REMEMBERED_TYPES) this.types.clear();
      this.types.set(ext, type);
    }
    return type;
  }
}

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
