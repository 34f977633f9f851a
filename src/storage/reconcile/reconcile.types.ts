// Types of the reconciliation engine (issue 8: one engine for files, backups and publishing). The storage
// is the truth, the index a table rebuilt from it; an "index side" adapts one capability to the engine.

export const RECONCILE_MODES = ['audit', 'sync', 'clean', 'full'] as const;
export type ReconcileMode = (typeof RECONCILE_MODES)[number];

/** Modes that delete index rows and therefore need `force`. */
export const DESTRUCTIVE_MODES: ReadonlySet<ReconcileMode> = new Set(['clean', 'full']);

export interface ReconcileError {
  /** Relative to the scope's storage root: `<partition>/<key>` (or the root itself, ""). */
  path: string;
  /** errno code (EACCES, EIO…) or one of the index side's codes (symlink, invalid_name, …). */
  code: string;
  message: string;
}

/**
 * The result of one run; JSON-serialisable, field names as issue 4 specified them (the "files" words stay:
 * every scope reports the same object). `deferred` counts entries left for the next run because they were
 * written during the scan or less than a second before it (issue 8): an audit right after a copy says so
 * instead of a silent "0 missing".
 */
export interface ReconcileStats {
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
  deferred: number;
  /** Temp files of writes in flight or left by a crash, and how many of them this run removed. */
  temp_files: number;
  temp_files_removed: number;
  errors: ReconcileError[];
  duration_ms: number;
}

export function emptyStats(): ReconcileStats {
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
    deferred: 0,
    temp_files: 0,
    temp_files_removed: 0,
    errors: [],
    duration_ms: 0,
  };
}

/** True when the stats show drift between storage and index (what the start-up audit warns about). */
export function hasDrift(stats: ReconcileStats): boolean {
  return stats.missing_in_db + stats.orphaned_in_db + stats.stale_in_db > 0 || stats.errors.length > 0;
}

/** One indexable entry of the storage scan. `key` is relative to its partition, NFC, `/`-separated. */
export interface StoredEntry {
  key: string;
  kind: 'file' | 'dir';
  size: number;
  mtimeMs: number;
}

/**
 * An entry the scan found but cannot index (symlink, bad name, unreadable…): reported as an error. When
 * `unreadable`, the entry exists but could not be examined, so index rows at or below its key are never
 * counted as orphans (issue 4: EACCES is an error, not an empty folder).
 */
export interface ScanProblem {
  key: string;
  kind: 'problem';
  code: string;
  message: string;
  unreadable: boolean;
}

/**
 * A temp file of a write in flight, or left behind by a process killed during one (issue 12). Never
 * indexed; counted in `temp_files`, and removed by a sweeping run once older than the longest write.
 */
export interface ScanTemp {
  key: string;
  kind: 'temp';
  mtimeMs: number;
}

export type ScanEntry = StoredEntry | ScanProblem | ScanTemp;

/** One index row as the engine needs it; sides extend it with whatever their comparison reads. */
export interface IndexedRow {
  id: number;
  key: string;
  kind: 'file' | 'dir';
}

/** A row as it is now (re-read before a row is reported): moved, rewritten or mid-move rows are in flight. */
export interface RowVersion {
  key: string;
  updatedAtMs: number;
  /** A move of the row is in flight (the files API's journal): neither stale nor orphaned. */
  moving: boolean;
}

export interface StaleChange<R extends IndexedRow> {
  row: R;
  entry: StoredEntry;
  fields: string[];
}

/**
 * One unit of comparison: a user's folder for files, a repository for backups. Both scans are sorted by
 * key in code-point order (UTF-8 byte order: SQLite BINARY, PostgreSQL COLLATE "C", S3 listings) and come
 * in pages, so neither side is ever held in memory whole and the per-item cost of async iteration is paid
 * per page.
 */
export interface Partition<R extends IndexedRow> {
  /** Prefix of reported paths (`<label>/<key>`); '' for none. */
  readonly label: string;
  /** When set, the partition is counted as scanned but not compared (e.g. its folder is missing). */
  readonly skip?: ReconcileError;
  /** The storage scan, sorted by key, in pages. */
  storage(): AsyncIterable<readonly ScanEntry[]>;
  /** The index scan, sorted by key, in pages. */
  index(): AsyncIterable<readonly R[]>;
  /** What differs between a row and its entry (empty when current). */
  staleFields(row: R, entry: StoredEntry): string[];
  /** Of `keys`, those the index holds now (or a row is moving to): written during the scan. */
  indexedNow(keys: string[]): Promise<Set<string>>;
  /** Adds rows for entries; an entry whose row appeared meanwhile is left alone. Returns rows added. */
  insert(entries: StoredEntry[], nowIso: string): Promise<number>;
  /** Current versions of rows by id (absent: deleted meanwhile). */
  versions(rows: R[]): Promise<Map<number, RowVersion>>;
  /** Updates stale rows unchanged since `unchangedSinceIso`. Returns rows updated. */
  update(changes: Array<StaleChange<R>>, unchangedSinceIso: string, nowIso: string): Promise<number>;
  /** Whether something is at `key` in storage now; undefined when that cannot be told (EACCES…). */
  storedNow(key: string): Promise<boolean | undefined>;
  /** Of `rows`, those that must never be deleted by clean (active share links for files). */
  protectedIds(rows: R[], nowIso: string): Promise<Set<number>>;
  /** Deletes rows unchanged since `unchangedSinceIso` and still unprotected. Returns rows deleted. */
  remove(rows: R[], unchangedSinceIso: string, nowIso: string): Promise<number>;
  /** Removes temp files still unmodified since `staleBeforeMs` (a sweeping run). Returns files removed. */
  removeTemps?(keys: string[], staleBeforeMs: number): Promise<number>;
}

/** What a side may do before the scan: report errors, refuse (throw), list the partitions. */
export interface PlanContext<F> {
  mode: ReconcileMode;
  destructive: boolean;
  filter: F;
  report(error: ReconcileError): void;
}

/**
 * The "index side" of one capability (rows in, rows out): validates its filter, plans the run (refusing
 * destructive modes when the storage looks unmounted) and hands the engine its partitions.
 */
export interface IndexSide<R extends IndexedRow, F> {
  /** `--scope` name: files, backups, publishing. */
  readonly scope: string;
  /** The lease lock a run holds (src/locks). */
  readonly lockName: string;
  /** Checks the capability-specific part of a request (user, path…); throws AppError on bad input. */
  validate(filter: unknown): Promise<F>;
  /** Whether a run with this filter covers the whole scope (only those are recorded as its state). */
  isWholeScope(filter: F): boolean;
  plan(ctx: PlanContext<F>): Promise<Array<Partition<R>>>;
  /**
   * Optional: adds the rows of several partitions' entries at once (one transaction, as few statements as
   * the database allows), with the contract of each partition's `insert`; returns the rows added in all.
   * With it, the engine batches a run's missing entries across partitions, so 1,000 users of 1,000 files
   * cost a thousand batches, not two per user (issue 8). Partitions are the ones `plan` returned.
   */
  insertAcross?(batches: ReadonlyArray<PartitionBatch<R>>, nowIso: string): Promise<number>;
}

/** One partition's share of a batch written across partitions (IndexSide.insertAcross). */
export interface PartitionBatch<R extends IndexedRow> {
  partition: Partition<R>;
  entries: StoredEntry[];
}

export type DiscrepancyKind = 'missing_in_db' | 'orphaned_in_db' | 'stale_in_db';

/** One difference found, for `-v 2` listings; `action` is what this run did (or would do) about it. */
export interface Discrepancy {
  kind: DiscrepancyKind;
  /** `<label>/<key>`. */
  path: string;
  /** For stale rows: the fields that differ. */
  fields?: string[];
  action: 'reported' | 'created' | 'updated' | 'deleted' | 'skipped_shared';
}

export interface ReconcileProgress {
  /** Partitions (users) compared so far, and in all. */
  done: number;
  total: number;
  /** Storage entries examined so far. */
  entries: number;
}

export interface RunOptions {
  onProgress?: (p: ReconcileProgress) => void;
  onDiscrepancy?: (d: Discrepancy) => void;
  /** Cancels between pages (task cancellation, timeouts). */
  signal?: AbortSignal;
}
