import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { LeaseLocks } from '../../locks/lease-lock.ts';
import { Reconciler, type ReconcilerOptions } from '../../storage/reconcile/reconciler.ts';
import type { RecordedRun } from '../../storage/reconcile/reconcile-runs.repository.ts';
import type { Discrepancy, IndexedRow, IndexSide, ReconcileMode, ReconcileProgress, ReconcileStats, RunOptions } from '../../storage/reconcile/reconcile.types.ts';
import type { BlobStore } from '../../storage/blob-store.port.ts';
import { FilesIndexSide, type FilesIndexSideOptions } from './files-index-side.ts';
import type { IndexSyncRepository } from './index-sync.repository.ts';

export type { Discrepancy, DiscrepancyKind, RunOptions } from '../../storage/reconcile/reconcile.types.ts';
export { MAX_REPORTED_ERRORS } from '../../storage/reconcile/reconciler.ts';

/**
 * Scopes `rebuild-index --scope` knows. Files is built in; the others are index sides their modules hand
 * over at composition (app.ts: `registerScope`), so this module never imports theirs.
 */
export const RECONCILE_SCOPES = ['files', 'backups', 'publishing'] as const;
export type ReconcileScope = (typeof RECONCILE_SCOPES)[number];

/** What to reconcile. Field names match the HTTP body and the task arguments (camelCase here). */
export interface IndexSyncRequest {
  mode: ReconcileMode;
  /** Which capability's index (default files). */
  scope?: string;
  /** Only this user (default: every user). */
  userId?: string;
  /** Only this folder or file of the user (needs `userId`). */
  path?: string;
  /** Backups scope: only this organization's locations (default: every organization). */
  organizationId?: string;
  /** Compute exactly what the mode would do, change nothing. */
  dryRun?: boolean;
  /** Required by the destructive modes `clean` and `full`. */
  force?: boolean;
  /** Also remove upload temp files older than the configured age (start-up and periodic audits). */
  sweepTemps?: boolean;
}

export type IndexSyncProgress = ReconcileProgress;

export type IndexSyncServiceOptions = ReconcilerOptions & FilesIndexSideOptions;

/**
 * Index reconciliation, "storage wins" (issues 4 and 8): the one engine (src/storage/reconcile) run over
 * a scope's index side. Files is the first (and today only) scope. See docs/index-sync.md.
 */
export class IndexSyncService {
  private readonly engine: Reconciler;
  private readonly files: FilesIndexSide;
  // Each side has its own row and filter types; the engine is generic over them.
  private readonly sides = new Map<string, IndexSide<any, any>>();

  constructor(repo: IndexSyncRepository, files: BlobStore, clock: Clock, storageRoot: string, locks: LeaseLocks, options: IndexSyncServiceOptions = {}) {
    this.engine = new Reconciler(locks, clock, options);
    this.files = new FilesIndexSide(repo, files, storageRoot, options);
  }

  /**
   * Checks a request without running it: bad mode or scope, destructive mode without force, a path
   * without a user or a path the files API would refuse → invalid_request/invalid_path; unknown user → not_found.
   */
  async validate(request: IndexSyncRequest): Promise<void> {
    // Only the backups side reads an organization; the others would silently reconcile everything.
    if (request.organizationId !== undefined && request.organizationId !== '' && request.scope !== 'backups') {
      throw new AppError('invalid_request', 'an organization id applies to the backups scope only');
    }
    await this.engine.validate(this.sideFor(request.scope), this.engineRequest(request));
  }

  /** Runs one reconciliation under the lock. Refused (AppError 'locked') while another one runs. */
  async run(request: IndexSyncRequest, options: RunOptions = {}): Promise<ReconcileStats> {
    return this.engine.run(this.sideFor(request.scope), this.engineRequest(request), options);
  }

  /** The last finished whole-scope runs (audits included), as every process sees them: for /metrics and admins. */
  async lastRuns(scope?: string): Promise<RecordedRun[]> {
    return this.engine.lastRuns(scope);
  }

  /** Plugs in another capability's index side under its scope name (one of RECONCILE_SCOPES). */
  registerScope<R extends IndexedRow, F>(side: IndexSide<R, F>): void {
    if (side.scope === 'files' || !(RECONCILE_SCOPES as readonly string[]).includes(side.scope)) throw new Error(`registerScope: ${side.scope} is not a pluggable scope`);
    this.sides.set(side.scope, side);
  }

  private sideFor(scope: string | undefined): IndexSide<any, any> {
    if (scope === undefined || scope === 'files') return this.files;
    const side = this.sides.get(scope);
    if (side) return side;
    throw new AppError('invalid_request', `unknown scope ${JSON.stringify(scope)}: one of ${['files', ...this.sides.keys()].join(', ')}`);
  }

  private engineRequest(r: IndexSyncRequest) {
    return {
      mode: r.mode,
      dryRun: r.dryRun,
      force: r.force,
      sweepTemps: r.sweepTemps,
      filter: { userId: r.userId, path: r.path, ...(r.organizationId !== undefined ? { organizationId: r.organizationId } : {}) },
    };
  }
}

export type { Discrepancy as IndexDiscrepancy };
