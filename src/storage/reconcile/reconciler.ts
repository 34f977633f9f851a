import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import { isLease, LeaseLocks, type Lease } from '../../locks/lease-lock.ts';
import { compareCodePoints } from './key-order.ts';
import type { RecordedRun, ReconcileRunsRepository } from './reconcile-runs.repository.ts';
import {
  DESTRUCTIVE_MODES,
  emptyStats,
  RECONCILE_MODES,
  type Discrepancy,
  type DiscrepancyKind,
  type IndexedRow,
  type IndexSide,
  type Partition,
  type PartitionBatch,
  type ReconcileError,
  type ReconcileMode,
  type ReconcileStats,
  type RunOptions,
  type ScanEntry,
  type StaleChange,
  type StoredEntry,
} from './reconcile.types.ts';

/** A reconciliation request; `filter` is the index side's own part (user and path for files). */
export interface ReconcileRequest {
  mode: ReconcileMode;
  dryRun?: boolean;
  force?: boolean;
  filter?: unknown;
  /**
   * Also remove temp files not modified for `tempMaxAgeMs` (the start-up and the daily audit do: issue 12).
   * Never in a dry run. The one change a reconciliation makes to storage: those files are no one's data.
   */
  sweepTemps?: boolean;
}

export interface ValidatedReconcileRequest<F> {
  mode: ReconcileMode;
  dryRun: boolean;
  force: boolean;
  filter: F;
  sweepTemps: boolean;
}

export interface ReconcilerOptions {
  /** Lease of the lock; renewed every third of it while running. */
  lockTtlMs?: number;
  /** Candidates are re-checked and written in batches of this many. */
  batchSize?: number;
  /** Storage entries modified less than this long before the scan are treated as writes in flight. */
  inFlightGraceMs?: number;
  /** A temp file unmodified for this long belongs to no write any more (default 24 h). */
  tempMaxAgeMs?: number;
  /** Where finished runs are recorded for every process to read (issue 12); none when absent. */
  runs?: ReconcileRunsRepository;
}

/** Errors kept in the stats; beyond this they are counted in one summary entry (memory stays bounded). */
export const MAX_REPORTED_ERRORS = 1000;
const PROGRESS_EVERY = 10_000;

/**
 * The one reconciliation engine (issue 8; docs/index-sync.md): merges a sorted storage scan with a sorted
 * index scan and sorts every key into missing (in storage, no row), orphaned (row, nothing in storage)
 * or stale (both, but they differ); audit reports, sync adds and updates, clean deletes (except protected
 * rows), full does both. A capability plugs in through an IndexSide; the engine owns the rules every
 * capability shares: modes, dry run, force, the lease lock, the in-flight rules, batching, stats, progress.
 *
 * In-flight rules: a storage entry modified at or after `scan start − grace` may be a write whose row is
 * about to follow (writers put storage first, then the row), and a row updated after the scan started was
 * written by someone else meanwhile: both are `deferred` to the next run, never misreported. Candidates
 * are re-checked in batches before they count: a missing entry whose row exists now, a stale or orphaned
 * row that moved or changed, an orphan whose key is in storage now — all deferred.
 */
export class Reconciler {
  private readonly lockTtlMs: number;
  private readonly batchSize: number;
  private readonly graceMs: number;
  private readonly tempMaxAgeMs: number;

  private readonly runs: ReconcileRunsRepository | undefined;

  constructor(
    private readonly locks: LeaseLocks,
    private readonly clock: Clock,
    options: ReconcilerOptions = {},
  ) {
    this.runs = options.runs;
    this.lockTtlMs = options.lockTtlMs ?? 120_000;
    this.batchSize = options.batchSize ?? 5000;
    this.graceMs = options.inFlightGraceMs ?? 1000;
    this.tempMaxAgeMs = options.tempMaxAgeMs ?? 86_400_000;
  }

  /** Checks a request without running it (bad mode, destructive mode without force, the side's filter). */
  async validate<R extends IndexedRow, F>(side: IndexSide<R, F>, request: ReconcileRequest): Promise<ValidatedReconcileRequest<F>> {
    const mode = request.mode;
    if (!RECONCILE_MODES.includes(mode)) {
      throw new AppError('invalid_request', `mode must be one of ${RECONCILE_MODES.join(', ')}; got ${JSON.stringify(mode)}`);
    }
    const force = request.force === true;
    if (DESTRUCTIVE_MODES.has(mode) && !force) {
      throw new AppError('invalid_request', `mode "${mode}" deletes index rows and requires force (--force / "force": true); nothing was done`);
    }
    const filter = await side.validate(request.filter);
    const dryRun = request.dryRun === true;
    return { mode, dryRun, force, filter, sweepTemps: request.sweepTemps === true && !dryRun };
  }

  /** Runs one reconciliation of `side` under its lock. Refused (AppError 'locked') while another runs. */
  async run<R extends IndexedRow, F>(side: IndexSide<R, F>, request: ReconcileRequest, options: RunOptions = {}): Promise<ReconcileStats> {
    const req = await this.validate(side, request);
    const what = `${side.scope === 'files' ? '' : `${side.scope} `}${req.mode}${req.dryRun ? ' (dry run)' : ''}`;
    const description = LeaseLocks.describe(what);
    const lease = await this.acquire(side, description);
    try {
      const startedAt = this.clock.now().toISOString();
      const stats = await new Run(side, req, options, this.clock, { batchSize: this.batchSize, graceMs: this.graceMs, tempMaxAgeMs: this.tempMaxAgeMs }, lease).execute();
      // Only whole-scope runs stand for the scope's state; a user- or path-filtered run is not recorded.
      if (this.runs && side.isWholeScope(req.filter)) {
        const run: RecordedRun = { scope: side.scope, mode: req.mode, dryRun: req.dryRun, startedAt, finishedAt: this.clock.now().toISOString(), description, stats };
        await this.runs.record(run);
      }
      return stats;
    } finally {
      await lease.release();
    }
  }

  /** The last finished whole-scope run per scope and mode, whichever process ran it. */
  async lastRuns(scope?: string): Promise<RecordedRun[]> {
    return this.runs ? this.runs.list(scope) : [];
  }

  private async acquire(side: IndexSide<IndexedRow, unknown>, description: string): Promise<Lease> {
    const lease = await this.locks.tryAcquire(side.lockName, description, this.lockTtlMs);
    if (isLease(lease)) return lease;
    const current = lease.heldBy;
    throw new AppError(
      'locked',
      `another index reconciliation is running${current ? ` (${current.description}, started ${current.acquiredAt})` : ''}; try again when it has finished`,
    );
  }
}

/** One run: its request, its counters and its pending batches. */
class Run<R extends IndexedRow, F> {
  private readonly stats = emptyStats();
  private readonly started = performance.now();
  private readonly scanStartedMs: number;
  private readonly scanStartedIso: string;
  private readonly freshSinceMs: number;
  private suppressedErrors = 0;
  private total = 0;
  private entries = 0;
  private nextProgressAt = PROGRESS_EVERY;

  // Missing entries, grouped by partition: with a side that can insert across partitions they are carried
  // from one partition to the next and written in full batches (many small users: issue 8), else flushed
  // at the end of each partition like the others.
  private missing: Array<PartitionBatch<R>> = [];
  private missingCount = 0;
  // The write of the previous batch of missing entries, left running while the scan goes on (at most one).
  private pendingWrite: Promise<void> | undefined;
  // Per partition; flushed in batches and at its end.
  private stale: Array<StaleChange<R>> = [];
  private orphans: R[] = [];
  private temps: string[] = [];

  constructor(
    private readonly side: IndexSide<R, F>,
    private readonly req: ValidatedReconcileRequest<F>,
    private readonly options: RunOptions,
    private readonly clock: Clock,
    private readonly tuning: { batchSize: number; graceMs: number; tempMaxAgeMs: number },
    private readonly lease: Lease,
  ) {
    const now = clock.now();
    this.scanStartedMs = now.getTime();
    this.scanStartedIso = now.toISOString();
    this.freshSinceMs = this.scanStartedMs - tuning.graceMs;
  }

  private get writes(): boolean {
    return this.req.mode === 'sync' || this.req.mode === 'full';
  }

  private get deletes(): boolean {
    return this.req.mode === 'clean' || this.req.mode === 'full';
  }

  async execute(): Promise<ReconcileStats> {
    const partitions = await this.side.plan({
      mode: this.req.mode,
      destructive: DESTRUCTIVE_MODES.has(this.req.mode),
      filter: this.req.filter,
      report: (e) => this.addError(e),
    });
    this.total = partitions.length;
    try {
      for (const partition of partitions) {
        this.checkAbort();
        if (partition.skip) this.addError(partition.skip);
        else await this.compare(partition);
        this.stats.users_scanned++;
        this.progress(true);
      }
      await this.flushMissing();
      await this.settleWrite();
    } catch (err) {
      // Never leave a write running after the run (and its lock) has ended.
      await this.pendingWrite?.catch(() => {});
      throw err;
    }
    if (this.suppressedErrors > 0) {
      this.stats.errors.push({ path: '', code: 'too_many_errors', message: `${this.suppressedErrors} more errors not listed` });
    }
    this.stats.duration_ms = Math.round(performance.now() - this.started);
    return this.stats;
  }

  private addError(e: ReconcileError): void {
    if (this.stats.errors.length < MAX_REPORTED_ERRORS) this.stats.errors.push(e);
    else this.suppressedErrors++;
  }

  private progress(force = false): void {
    if (!this.options.onProgress) return;
    if (!force && this.entries < this.nextProgressAt) return;
    this.nextProgressAt = this.entries + PROGRESS_EVERY;
    this.options.onProgress({ done: this.stats.users_scanned, total: this.total, entries: this.entries });
  }

  private checkAbort(): void {
    if (this.options.signal?.aborted) throw new AppError('unavailable', 'index reconciliation was cancelled');
    if (this.lease.lost()) throw new AppError('conflict', 'index reconciliation lost its lock (lease expired); stopped');
  }

  /**
   * The merge. Both scans are sorted by key; pages are consumed with plain indexes (no await per entry:
   * at a million entries a promise per entry costs as much as the walk).
   */
  private async compare(p: Partition<R>): Promise<void> {
    const storage = p.storage()[Symbol.asyncIterator]();
    const index = p.index()[Symbol.asyncIterator]();
    let sPage: readonly ScanEntry[] = [];
    let si = 0;
    let sDone = false;
    let rPage: readonly R[] = [];
    let ri = 0;
    let rDone = false;
    const blocked: string[] = [];
    const prefix = p.label === '' ? '' : `${p.label}/`;
    const stats = this.stats;

    for (;;) {
      if (si >= sPage.length && !sDone) {
        this.checkAbort();
        this.progress();
        const next = await storage.next();
        if (next.done) sDone = true;
        else {
          sPage = next.value;
          si = 0;
          this.entries += sPage.length;
        }
        continue;
      }
      if (ri >= rPage.length && !rDone) {
        const next = await index.next();
        if (next.done) rDone = true;
        else {
          rPage = next.value;
          ri = 0;
        }
        continue;
      }
      const s = si < sPage.length ? sPage[si] : undefined;
      const r = ri < rPage.length ? rPage[ri] : undefined;
      if (!s && !r) break;

      if (s && s.kind === 'temp') {
        si++;
        stats.temp_files++;
        if (this.req.sweepTemps && s.mtimeMs < this.scanStartedMs - this.tuning.tempMaxAgeMs) {
          this.temps.push(s.key);
          if (this.temps.length >= this.tuning.batchSize) await this.flushTemps(p);
        }
        continue;
      }
      if (s && s.kind === 'problem') {
        si++;
        this.addError({ path: s.key === '' ? p.label : prefix + s.key, code: s.code, message: s.message });
        if (s.unreadable) blocked.push(s.key);
        continue;
      }
      const c = !s ? 1 : !r ? -1 : s.key === r.key ? 0 : compareCodePoints(s.key, r.key);
      if (c < 0) {
        // In storage, no row.
        si++;
        if (s!.kind === 'file') stats.files_on_disk++;
        else stats.dirs_on_disk++;
        if (s!.mtimeMs >= this.freshSinceMs) stats.deferred++;
        else {
          let group = this.missing.length > 0 ? this.missing[this.missing.length - 1]! : undefined;
          if (group?.partition !== p) this.missing.push((group = { partition: p, entries: [] }));
          group.entries.push(s as StoredEntry);
          if (++this.missingCount >= this.tuning.batchSize) await this.flushMissing();
        }
      } else if (c > 0) {
        // A row, nothing in storage.
        ri++;
        if (r!.kind === 'file') stats.files_in_db++;
        if (blocked.length > 0 && isBlocked(r!.key, blocked)) continue;
        this.orphans.push(r!);
        if (this.orphans.length >= this.tuning.batchSize) await this.flushOrphans(p);
      } else {
        si++;
        ri++;
        if (s!.kind === 'file') stats.files_on_disk++;
        else stats.dirs_on_disk++;
        if (r!.kind === 'file') stats.files_in_db++;
        const fields = p.staleFields(r!, s as StoredEntry);
        if (fields.length === 0) continue;
        if (s!.mtimeMs >= this.freshSinceMs) stats.deferred++;
        else {
          this.stale.push({ row: r!, entry: s as StoredEntry, fields });
          if (this.stale.length >= this.tuning.batchSize) await this.flushStale(p);
        }
      }
    }
    if (!this.side.insertAcross) await this.flushMissing();
    await this.flushStale(p);
    await this.flushOrphans(p);
    await this.flushTemps(p);
  }

  private async flushTemps(p: Partition<R>): Promise<void> {
    if (this.temps.length === 0 || !p.removeTemps) return;
    const batch = this.temps;
    this.temps = [];
    this.stats.temp_files_removed += await p.removeTemps(batch, this.scanStartedMs - this.tuning.tempMaxAgeMs);
  }

  private emit(kind: DiscrepancyKind, p: Partition<R>, key: string, action: Discrepancy['action'], fields?: string[]): void {
    this.options.onDiscrepancy?.({ kind, path: p.label === '' ? key : `${p.label}/${key}`, action, ...(fields ? { fields } : {}) });
  }

  /**
   * Storage entries without a row, re-checked first: a writer may have added the row since the page was
   * read. One re-check per partition of the batch, then one write for all of them when the side can.
   */
  private async flushMissing(): Promise<void> {
    if (this.missingCount === 0) return;
    const groups = this.missing;
    this.missing = [];
    this.missingCount = 0;
    const confirmedGroups: Array<PartitionBatch<R>> = [];
    let confirmedCount = 0;
    for (const group of groups) {
      const present = await group.partition.indexedNow(group.entries.map((m) => m.key));
      const confirmed = present.size === 0 ? group.entries : group.entries.filter((m) => !present.has(m.key));
      this.stats.deferred += group.entries.length - confirmed.length;
      this.stats.missing_in_db += confirmed.length;
      confirmedCount += confirmed.length;
      if (confirmed.length > 0) confirmedGroups.push({ partition: group.partition, entries: confirmed });
    }
    const act = this.writes;
    const report = () => {
      if (this.options.onDiscrepancy) {
        for (const g of confirmedGroups) for (const m of g.entries) this.emit('missing_in_db', g.partition, m.key, act ? 'created' : 'reported');
      }
    };
    if (!act || this.req.dryRun || confirmedGroups.length === 0) {
      if (act) this.stats.records_created += confirmedCount;
      report();
      return;
    }
    // One write in flight while the scan goes on: with PostgreSQL the server inserts a batch while this
    // process lists the next one (a first sync took the sum of both). Writes stay in order, one at a time.
    await this.settleWrite();
    const nowIso = this.clock.now().toISOString();
    const write = async () => {
      if (this.side.insertAcross) this.stats.records_created += await this.side.insertAcross(confirmedGroups, nowIso);
      else for (const g of confirmedGroups) this.stats.records_created += await g.partition.insert(g.entries, nowIso);
      report();
    };
    this.pendingWrite = write();
    // A failure is rethrown when the write is settled (next batch, end of run); not an unhandled rejection meanwhile.
    this.pendingWrite.catch(() => {});
  }

  /** Waits for the write in flight, if any, and rethrows its failure. */
  private async settleWrite(): Promise<void> {
    const pending = this.pendingWrite;
    if (!pending) return;
    this.pendingWrite = undefined;
    await pending;
  }

  /** Stale rows, re-read first: a row rewritten or moved during the scan is in flight, not stale. */
  private async flushStale(p: Partition<R>): Promise<void> {
    if (this.stale.length === 0) return;
    const candidates = this.stale;
    this.stale = [];
    const current = await p.versions(candidates.map((u) => u.row));
    const batch = candidates.filter((u) => this.unchanged(u.row, current));
    this.stats.deferred += candidates.length - batch.length;
    this.stats.stale_in_db += batch.length;
    const act = this.writes;
    if (act && !this.req.dryRun) this.stats.records_updated += await p.update(batch, this.scanStartedIso, this.clock.now().toISOString());
    else if (act) this.stats.records_updated += batch.length;
    if (this.options.onDiscrepancy) for (const u of batch) this.emit('stale_in_db', p, u.row.key, act ? 'updated' : 'reported', u.fields);
  }

  private unchanged(row: R, current: Map<number, { key: string; updatedAtMs: number; moving: boolean }>): boolean {
    const now = current.get(row.id);
    return now !== undefined && !now.moving && now.key === row.key && now.updatedAtMs < this.scanStartedMs;
  }

  /**
   * Rows without a storage entry. Before one counts: it must be unchanged since the scan began (not moved
   * or rewritten meanwhile) and nothing may be at its key now (a write that landed after the listing).
   * Clean then skips protected rows (share links for files) and counts them in records_skipped.
   */
  private async flushOrphans(p: Partition<R>): Promise<void> {
    if (this.orphans.length === 0) return;
    const batch = this.orphans;
    this.orphans = [];
    const current = await p.versions(batch);
    const confirmed: R[] = [];
    for (const row of batch) {
      if (!this.unchanged(row, current)) {
        this.stats.deferred++;
        continue;
      }
      const there = await p.storedNow(row.key);
      if (there === undefined) continue; // cannot tell (EACCES on the way): not an orphan
      if (there) {
        this.stats.deferred++;
        continue;
      }
      confirmed.push(row);
    }
    this.stats.orphaned_in_db += confirmed.length;
    if (!this.deletes) {
      if (this.options.onDiscrepancy) for (const r of confirmed) this.emit('orphaned_in_db', p, r.key, 'reported');
      return;
    }
    const nowIso = this.clock.now().toISOString();
    const shielded = await p.protectedIds(confirmed, nowIso);
    const deletable = confirmed.filter((r) => !shielded.has(r.id));
    let deleted = deletable.length;
    if (!this.req.dryRun) deleted = await p.remove(deletable, this.scanStartedIso, nowIso);
    this.stats.records_deleted += deleted;
    // Rows that gained protection (or changed) between the check and the delete were not deleted either.
    this.stats.records_skipped += confirmed.length - deleted;
    if (this.options.onDiscrepancy) for (const r of confirmed) this.emit('orphaned_in_db', p, r.key, shielded.has(r.id) ? 'skipped_shared' : 'deleted');
  }
}

/** The key lies at or below one of the unreadable entries (a handful at most). */
function isBlocked(key: string, blocked: readonly string[]): boolean {
  for (const b of blocked) {
    if (b === '' || key === b || (key.length > b.length && key.charCodeAt(b.length) === 47 && key.startsWith(b))) return true;
  }
  return false;
}
