import path from 'node:path';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import { isLease, LeaseLocks, type Lease } from '../../locks/lease-lock.ts';
import { isSameOrBelow, joinUserRoot, nameOf, normalizeUserPath, parentOf, userRoot } from '../../storage/safe-path.ts';
import type { DiskTreeReader } from '../../storage/tree-walker.ts';
import {
  classifyListing,
  compareCodePoints,
  DESTRUCTIVE_MODES,
  diffDirectory,
  emptyStats,
  isTempName,
  joinRel,
  MinHeap,
  rowValuesFor,
  SYNC_MODES,
  type DiskItem,
  type IndexRow,
  type IndexSyncStats,
  type SyncError,
  type SyncMode,
} from './index-diff.ts';
import type { IndexRowUpdate, IndexSyncRepository, NewIndexRow } from './index-sync.repository.ts';

/** What to reconcile. Field names match the HTTP body and the task arguments (camelCase here). */
export interface IndexSyncRequest {
  mode: SyncMode;
  /** Only this user (default: every user). */
  userId?: string;
  /** Only this folder or file of the user (needs `userId`). */
  path?: string;
  /** Compute exactly what the mode would do, change nothing. */
  dryRun?: boolean;
  /** Required by the destructive modes `clean` and `full`. */
  force?: boolean;
}

/** A request that passed validation. */
export interface ValidatedRequest {
  mode: SyncMode;
  userId: string | undefined;
  path: string;
  dryRun: boolean;
  force: boolean;
}

export type DiscrepancyKind = 'missing_in_db' | 'orphaned_in_db' | 'stale_in_db';

/** One difference found, for `-v 2` listings; `action` is what this run did (or would do) about it. */
export interface Discrepancy {
  kind: DiscrepancyKind;
  /** `<userId>/<path>`. */
  path: string;
  /** For stale rows: the fields that differ. */
  fields?: string[];
  action: 'reported' | 'created' | 'updated' | 'deleted' | 'skipped_shared';
}

export interface IndexSyncProgress {
  usersDone: number;
  usersTotal: number;
  /** Disk entries examined so far. */
  entries: number;
}

export interface RunOptions {
  onProgress?: (p: IndexSyncProgress) => void;
  onDiscrepancy?: (d: Discrepancy) => void;
  /** Cancels between folders (task cancellation, timeouts). */
  signal?: AbortSignal;
}

export interface IndexSyncServiceOptions {
  /** Lease of the lock; renewed every third of it while running. */
  lockTtlMs?: number;
  /** Rows fetched per page of the sorted stream. */
  pageSize?: number;
  /** Writes are flushed in batches of this many rows. */
  batchSize?: number;
  /** Disk entries modified less than this long before the scan are treated as uploads in flight. */
  inFlightGraceMs?: number;
}

const LOCK_NAME = 'index_sync';
/** Errors kept in the stats; beyond this they are counted in one summary entry (memory stays bounded). */
export const MAX_REPORTED_ERRORS = 1000;
const PROGRESS_EVERY = 10_000;

interface PendingDir {
  rel: string;
  abs: string;
  depth: number;
  bytes: number;
}

type StreamRow = IndexRow & { parentPath: string };

/**
 * Reconciles the file index with the disk, "filesystem wins" (issue 4): audit reports, sync adds missing
 * rows and updates stale ones, clean deletes orphaned rows, full does both. See docs/index-sync.md.
 *
 * How it stays within a few times a plain `find`: each user's folders are visited in code-point order of
 * their paths, and the user's rows are streamed from the database in that same order (pages of sorted
 * rows), so each folder's listing is compared with exactly its rows — one query per page, not per folder,
 * and never more than one page plus one folder in memory. Writes are batched.
 */
export class IndexSyncService {
  private readonly lockTtlMs: number;
  private readonly pageSize: number;
  private readonly batchSize: number;
  private readonly graceMs: number;

  constructor(
    private readonly repo: IndexSyncRepository,
    private readonly disk: DiskTreeReader,
    private readonly clock: Clock,
    private readonly storageRoot: string,
    private readonly locks: LeaseLocks,
    options: IndexSyncServiceOptions = {},
  ) {
    this.lockTtlMs = options.lockTtlMs ?? 120_000;
    this.pageSize = options.pageSize ?? 5000;
    this.batchSize = options.batchSize ?? 1000;
    this.graceMs = options.inFlightGraceMs ?? 1000;
  }

  /**
   * Checks a request without running it: bad mode, destructive mode without force, a path without a
   * user or a path the files API would refuse → invalid_request/invalid_path; unknown user → not_found.
   */
  async validate(request: IndexSyncRequest): Promise<ValidatedRequest> {
    const mode = request.mode;
    if (!SYNC_MODES.includes(mode)) {
      throw new AppError('invalid_request', `mode must be one of ${SYNC_MODES.join(', ')}; got ${JSON.stringify(mode)}`);
    }
    const force = request.force === true;
    if (DESTRUCTIVE_MODES.has(mode) && !force) {
      throw new AppError('invalid_request', `mode "${mode}" deletes index rows and requires force (--force / "force": true); nothing was done`);
    }
    let rel = '';
    if (request.path !== undefined && request.path !== '') {
      if (!request.userId) throw new AppError('invalid_request', 'a path is relative to one user\'s root: give a user id with it');
      rel = normalizeUserPath(request.path, { allowRoot: true });
    }
    if (request.userId !== undefined) {
      if (typeof request.userId !== 'string' || !(await this.repo.userExists(request.userId))) {
        throw new AppError('not_found', `unknown user id ${JSON.stringify(request.userId)}`);
      }
    }
    return { mode, userId: request.userId, path: rel, dryRun: request.dryRun === true, force };
  }

  /** Runs one reconciliation under the lock. Refused (AppError 'locked') while another one runs. */
  async run(request: IndexSyncRequest, options: RunOptions = {}): Promise<IndexSyncStats> {
    const req = await this.validate(request);
    const release = await this.acquireLock(req);
    try {
      return await new Reconciliation(this.repo, this.disk, this.clock, this.storageRoot, req, options, { pageSize: this.pageSize, batchSize: this.batchSize, graceMs: this.graceMs }, () => release.lost()).run();
    } finally {
      await release.release();
    }
  }

  private async acquireLock(req: ValidatedRequest): Promise<Lease> {
    const description = LeaseLocks.describe(`${req.mode}${req.dryRun ? ' (dry run)' : ''}`);
    const lease = await this.locks.tryAcquire(LOCK_NAME, description, this.lockTtlMs);
    if (isLease(lease)) return lease;
    const current = lease.heldBy;
    throw new AppError(
      'locked',
      `another index reconciliation is running${current ? ` (${current.description}, started ${current.acquiredAt})` : ''}; try again when it has finished`,
    );
  }
}

/** Pages through one user's rows in (parent_path, name) code-point order. */
class RowStream {
  private buffer: StreamRow[] = [];
  private index = 0;
  private done = false;

  constructor(
    private readonly repo: IndexSyncRepository,
    private readonly ownerId: string,
    private readonly scope: string,
    private readonly pageSize: number,
  ) {}

  async peek(): Promise<StreamRow | undefined> {
    if (this.index < this.buffer.length) return this.buffer[this.index];
    if (this.done) return undefined;
    const last = this.buffer[this.buffer.length - 1];
    this.buffer = await this.repo.rowsPage(this.ownerId, this.scope, last ? { parentPath: last.parentPath, name: last.name } : null, this.pageSize);
    this.index = 0;
    if (this.buffer.length < this.pageSize) this.done = true;
    return this.buffer[0];
  }

  next(): StreamRow {
    return this.buffer[this.index++]!;
  }
}

/** One run: its request, its counters and its pending write batches. */
class Reconciliation {
  private readonly stats = emptyStats();
  private readonly started = performance.now();
  private scanStartedMs = 0;
  private scanStartedIso = '';
  private window = { startedMs: 0, diskFreshSinceMs: 0 };
  private suppressedErrors = 0;
  private usersTotal = 0;
  private nextProgressAt = PROGRESS_EVERY;
  private entriesSeen = 0;

  // Per user, reset by scanUser.
  private missing: Array<{ rel: string; item: DiskItem }> = [];
  private orphans: IndexRow[] = [];
  private updates: Array<IndexRowUpdate & { rel: string; fields: string[] }> = [];

  constructor(
    private readonly repo: IndexSyncRepository,
    private readonly disk: DiskTreeReader,
    private readonly clock: Clock,
    private readonly storageRoot: string,
    private readonly req: ValidatedRequest,
    private readonly options: RunOptions,
    private readonly tuning: { pageSize: number; batchSize: number; graceMs: number },
    private readonly lockLost: () => boolean,
  ) {}

  private get writesIndex(): boolean {
    return this.req.mode === 'sync' || this.req.mode === 'full';
  }

  private get deletes(): boolean {
    return this.req.mode === 'clean' || this.req.mode === 'full';
  }

  async run(): Promise<IndexSyncStats> {
    const now = this.clock.now();
    this.scanStartedMs = now.getTime();
    this.scanStartedIso = now.toISOString();
    this.window = { startedMs: this.scanStartedMs, diskFreshSinceMs: this.scanStartedMs - this.tuning.graceMs };
    const destructive = DESTRUCTIVE_MODES.has(this.req.mode);

    const root = this.safeProbeRoot(this.storageRoot);
    if (!root || root.kind !== 'dir') {
      const message = `storage root ${this.storageRoot} is ${root ? 'not a folder' : 'missing'} (is the volume mounted?)`;
      if (destructive) throw new AppError('conflict', `${message}: refusing to ${this.req.mode}, it would wipe the index; nothing was done`);
      this.addError({ path: '', code: 'storage_root_missing', message });
      return this.finish();
    }

    const users = this.req.userId ? [this.req.userId] : await this.repo.listUserIds();
    this.usersTotal = users.length;

    // A user's folder that is missing while the index holds rows for it looks like an unmounted volume,
    // not like deleted files: clean/full refuse before changing anything (issue 4).
    const missingRoots = new Set<string>();
    for (const userId of users) {
      const state = this.safeProbeRoot(userRoot(this.storageRoot, userId));
      if (state && state.kind === 'dir') continue;
      if (!(await this.repo.hasRows(userId, this.req.path))) continue;
      missingRoots.add(userId);
      if (destructive) {
        throw new AppError(
          'conflict',
          `the folder of user ${userId} is ${state ? 'not a folder' : 'missing'} but the index holds rows for it (is the storage volume mounted?): refusing to ${this.req.mode}; nothing was done`,
        );
      }
    }

    if (!this.req.userId) await this.reportForeignFolders(new Set(users));

    for (const userId of users) {
      this.checkAbort();
      if (missingRoots.has(userId)) {
        this.addError({ path: userId, code: 'user_root_missing', message: `the user's folder is missing but the index holds rows for it; its rows were not compared` });
      } else {
        await this.scanUser(userId);
      }
      this.stats.users_scanned++;
      this.progress(true);
    }
    return this.finish();
  }

  private finish(): IndexSyncStats {
    if (this.suppressedErrors > 0) {
      this.stats.errors.push({ path: '', code: 'too_many_errors', message: `${this.suppressedErrors} more errors not listed` });
    }
    this.stats.duration_ms = Math.round(performance.now() - this.started);
    return this.stats;
  }

  private addError(e: SyncError): void {
    if (this.stats.errors.length < MAX_REPORTED_ERRORS) this.stats.errors.push(e);
    else this.suppressedErrors++;
  }

  private progress(force = false): void {
    if (!this.options.onProgress) return;
    if (!force && this.entriesSeen < this.nextProgressAt) return;
    this.nextProgressAt = this.entriesSeen + PROGRESS_EVERY;
    this.options.onProgress({ usersDone: this.stats.users_scanned, usersTotal: this.usersTotal, entries: this.entriesSeen });
  }

  private checkAbort(): void {
    if (this.options.signal?.aborted) throw new AppError('unavailable', 'index reconciliation was cancelled');
    if (this.lockLost()) throw new AppError('conflict', 'index reconciliation lost its lock (lease expired); stopped');
  }

  private safeProbeRoot(dir: string) {
    try {
      return this.disk.probeRoot(dir);
    } catch (err) {
      this.addError({ path: path.relative(this.storageRoot, dir), code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message });
      return { kind: 'special' as const, size: 0, mtimeMs: 0 };
    }
  }

  /** Folders in the storage root that belong to no user: data the index can never show. */
  private async reportForeignFolders(userIds: Set<string>): Promise<void> {
    let names: string[];
    try {
      names = await this.disk.listSubdirectories(this.storageRoot);
    } catch (err) {
      this.addError({ path: '', code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message });
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || userIds.has(name)) continue;
      this.addError({ path: name, code: 'unknown_owner_folder', message: 'folder in the storage root that belongs to no user: not indexed' });
    }
  }

  private async scanUser(userId: string): Promise<void> {
    const rootAbs = userRoot(this.storageRoot, userId);
    const scope = this.req.path;
    const heap = new MinHeap<PendingDir>((a, b) => compareCodePoints(a.rel, b.rel));
    const blocked = new Set<string>();

    if (scope === '') {
      heap.push({ rel: '', abs: rootAbs, depth: 0, bytes: 0 });
    } else {
      // The scope's own entry lives in its parent folder: compare it on its own.
      const abs = joinUserRoot(this.storageRoot, userId, scope);
      const problem = this.scopeAncestorProblem(rootAbs, scope);
      if (problem) {
        this.addError({ path: `${userId}/${scope}`, code: problem, message: `cannot scan ${scope}: a folder on its way is ${problem === 'symlink' ? 'a symbolic link' : 'unreadable'}` });
        return;
      }
      let state;
      try {
        state = this.disk.probe(abs);
      } catch (err) {
        this.addError({ path: `${userId}/${scope}`, code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message });
        return;
      }
      const items: DiskItem[] = [];
      if (state?.kind === 'symlink') this.addError({ path: `${userId}/${scope}`, code: 'symlink', message: 'symbolic link: not followed, not indexed' });
      else if (state && (state.kind === 'file' || state.kind === 'dir')) {
        items.push({ name: nameOf(scope), diskName: nameOf(scope), kind: state.kind, size: state.size, mtimeMs: state.mtimeMs });
      }
      const row = await this.repo.rowAt(userId, scope);
      if (row && !row.isDirectory) this.stats.files_in_db++;
      await this.compareDirectory(userId, parentOf(scope), items, row ? [row] : [], new Set());
      if (state?.kind === 'dir') heap.push({ rel: scope, abs, depth: scope.split('/').length, bytes: Buffer.byteLength(scope) });
    }

    const rows = new RowStream(this.repo, userId, scope, this.tuning.pageSize);
    for (let dir = heap.pop(); dir; dir = heap.pop()) {
      this.checkAbort();
      // Rows of folders that sort before this one: their folder is not on disk (or was not readable).
      await this.drainRowsBefore(userId, rows, dir.rel, blocked);

      let listing;
      try {
        listing = await this.disk.listDirectory(dir.abs, isTempName);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        if (code !== 'ENOENT') {
          // Unreadable is not empty: its rows stay untouched (issue 4: EACCES is an error, not an orphan).
          blocked.add(dir.rel);
          this.addError({ path: `${userId}/${dir.rel}`.replace(/\/$/, ''), code, message: `cannot list folder: ${(err as Error).message}` });
        }
        // ENOENT: deleted while we scan; its rows are handled like any folder that is gone.
        continue;
      }
      this.entriesSeen += listing.length;
      const { items, problems } = classifyListing(listing, dir.depth, dir.bytes);
      const protectedNames = new Set<string>();
      for (const p of problems) {
        this.addError({ path: `${userId}/${joinRel(dir.rel, p.name)}`, code: p.code, message: p.message });
        if (p.unreadable) {
          const name = p.name.normalize('NFC');
          protectedNames.add(name);
          blocked.add(joinRel(dir.rel, name));
        }
      }

      const dirRows: IndexRow[] = [];
      for (let r = await rows.peek(); r && r.parentPath === dir.rel; r = await rows.peek()) {
        dirRows.push(rows.next());
        if (!r.isDirectory) this.stats.files_in_db++;
      }
      await this.compareDirectory(userId, dir.rel, items, dirRows, protectedNames);

      for (const item of items) {
        if (item.kind !== 'dir') continue;
        const rel = joinRel(dir.rel, item.name);
        heap.push({ rel, abs: path.join(dir.abs, item.diskName), depth: dir.depth + 1, bytes: dir.bytes + (dir.rel === '' ? 0 : 1) + Buffer.byteLength(item.name) });
      }
      this.progress();
    }
    await this.drainRowsBefore(userId, rows, null, blocked);
    await this.flush(userId);
  }

  /** True when a folder between the user's root and the scope is a symlink (never followed) or unreadable. */
  private scopeAncestorProblem(rootAbs: string, scope: string): 'symlink' | 'EACCES' | null {
    const parts = scope.split('/');
    let abs = rootAbs;
    for (const part of parts.slice(0, -1)) {
      abs = path.join(abs, part);
      try {
        if (this.disk.probe(abs)?.kind === 'symlink') return 'symlink';
      } catch {
        return 'EACCES';
      }
    }
    return null;
  }

  /** Consumes rows whose parent sorts before `before` (all rows when null): their folder was not listed. */
  private async drainRowsBefore(userId: string, rows: RowStream, before: string | null, blocked: ReadonlySet<string>): Promise<void> {
    for (let r = await rows.peek(); r && (before === null || compareCodePoints(r.parentPath, before) < 0); r = await rows.peek()) {
      rows.next();
      if (!r.isDirectory) this.stats.files_in_db++;
      if (isBlocked(r.parentPath, blocked)) continue;
      // Stream rows carry no updatedAt: flushOrphans re-reads it (and skips rows written during the scan).
      this.orphans.push(r);
      if (this.orphans.length >= this.tuning.batchSize) await this.flushOrphans(userId);
    }
  }

  private async compareDirectory(userId: string, rel: string, items: DiskItem[], rows: IndexRow[], protectedNames: ReadonlySet<string>): Promise<void> {
    for (const item of items) {
      if (item.kind === 'file') this.stats.files_on_disk++;
      else this.stats.dirs_on_disk++;
    }
    const diff = diffDirectory(items, rows, this.window, protectedNames);
    for (const item of diff.missing) this.missing.push({ rel: joinRel(rel, item.name), item });
    for (const s of diff.stale) {
      const values = rowValuesFor(s.item);
      this.updates.push({
        id: s.row.id,
        ...values,
        clearSha256: s.fields.includes('size') || s.fields.includes('mtime') || s.fields.includes('is_directory'),
        rel: s.row.path,
        fields: s.fields,
      });
    }
    this.orphans.push(...diff.orphaned);
    if (this.missing.length >= this.tuning.batchSize) await this.flushMissing(userId);
    if (this.updates.length >= this.tuning.batchSize) await this.flushUpdates(userId);
    if (this.orphans.length >= this.tuning.batchSize) await this.flushOrphans(userId);
  }

  private async flush(userId: string): Promise<void> {
    await this.flushMissing(userId);
    await this.flushUpdates(userId);
    await this.flushOrphans(userId);
  }

  private emit(kind: DiscrepancyKind, userId: string, rel: string, action: Discrepancy['action'], fields?: string[]): void {
    this.options.onDiscrepancy?.({ kind, path: `${userId}/${rel}`, action, ...(fields ? { fields } : {}) });
  }

  /** Disk entries without a row. Re-checked first: an upload may have added the row since we read the page. */
  private async flushMissing(userId: string): Promise<void> {
    if (this.missing.length === 0) return;
    const batch = this.missing;
    this.missing = [];
    const present = await this.repo.existingPaths(userId, batch.map((m) => m.rel));
    const confirmed = batch.filter((m) => !present.has(m.rel));
    this.stats.missing_in_db += confirmed.length;
    const act = this.writesIndex;
    if (act && !this.req.dryRun) {
      const rows: NewIndexRow[] = confirmed.map((m) => ({ ownerId: userId, path: m.rel, name: m.item.name, parentPath: parentOf(m.rel), ...rowValuesFor(m.item) }));
      this.stats.records_created += await this.repo.insertRows(rows, this.clock.now().toISOString());
    } else if (act) {
      this.stats.records_created += confirmed.length;
    }
    for (const m of confirmed) this.emit('missing_in_db', userId, m.rel, act ? 'created' : 'reported');
  }

  /** Stale rows. Re-read first: a row the files API rewrote during the scan is in flight, not stale. */
  private async flushUpdates(userId: string): Promise<void> {
    if (this.updates.length === 0) return;
    const current = await this.repo.currentVersions(this.updates.map((u) => u.id));
    const batch = this.updates.filter((u) => {
      const now = current.get(u.id);
      return now !== undefined && !now.moving && now.path === u.rel && Date.parse(now.updatedAt) < this.scanStartedMs;
    });
    this.updates = [];
    this.stats.stale_in_db += batch.length;
    const act = this.writesIndex;
    if (act && !this.req.dryRun) {
      this.stats.records_updated += await this.repo.updateRows(batch, this.scanStartedIso, this.clock.now().toISOString());
    } else if (act) {
      this.stats.records_updated += batch.length;
    }
    for (const u of batch) this.emit('stale_in_db', userId, u.rel, act ? 'updated' : 'reported', u.fields);
  }

  /**
   * Rows without a disk entry. Before counting one: the row must be unchanged since the scan began (not
   * moved or rewritten by the files API meanwhile) and nothing may be at its path now (an upload that
   * landed after we listed the folder). Clean then skips rows an active share link points to.
   */
  private async flushOrphans(userId: string): Promise<void> {
    if (this.orphans.length === 0) return;
    const batch = this.orphans;
    this.orphans = [];
    const current = await this.repo.currentVersions(batch.map((r) => r.id));
    const confirmed: IndexRow[] = [];
    for (const row of batch) {
      const now = current.get(row.id);
      if (!now || now.moving || now.path !== row.path || Date.parse(now.updatedAt) >= this.scanStartedMs) continue;
      let there;
      try {
        there = this.disk.probe(joinUserRoot(this.storageRoot, userId, row.path));
      } catch {
        continue; // cannot tell (EACCES on the way): not an orphan
      }
      if (there) continue;
      confirmed.push(row);
    }
    this.stats.orphaned_in_db += confirmed.length;
    if (!this.deletes) {
      for (const r of confirmed) this.emit('orphaned_in_db', userId, r.path, 'reported');
      return;
    }
    const nowIso = this.clock.now().toISOString();
    const shared = await this.repo.sharedIds(confirmed.map((r) => r.id), nowIso);
    const deletable = confirmed.filter((r) => !shared.has(r.id));
    let deleted = deletable.length;
    if (!this.req.dryRun) deleted = await this.repo.deleteRows(deletable.map((r) => r.id), this.scanStartedIso, nowIso);
    this.stats.records_deleted += deleted;
    // Rows that gained a link (or changed) between the check and the delete were not deleted either.
    this.stats.records_skipped += confirmed.length - deleted;
    for (const r of confirmed) this.emit('orphaned_in_db', userId, r.path, shared.has(r.id) ? 'skipped_shared' : 'deleted');
  }
}

function isBlocked(parentPath: string, blocked: ReadonlySet<string>): boolean {
  if (blocked.size === 0) return false;
  for (const b of blocked) if (isSameOrBelow(parentPath, b)) return true;
  return false;
}
