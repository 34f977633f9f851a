import type { Db } from '../../db/schema.ts';
import type { ReconcileMode, ReconcileStats } from './reconcile.types.ts';

/** A finished run as recorded, whichever process ran it. */
export interface RecordedRun {
  scope: string;
  mode: ReconcileMode;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  description: string;
  stats: ReconcileStats;
}

/** Errors kept in the record: the full list is in the run's own answer (task result, CLI output). */
const RECORDED_ERRORS = 20;

/** `reconcile_runs` (migration 0006): the last finished run per scope and mode, shared by every process. */
export class ReconcileRunsRepository {
  constructor(private readonly db: Db) {}

  async record(run: RecordedRun): Promise<void> {
    const stats = JSON.stringify({ ...run.stats, errors: run.stats.errors.slice(0, RECORDED_ERRORS) });
    const values = {
      dry_run: run.dryRun ? 1 : 0,
      started_at: run.startedAt,
      finished_at: run.finishedAt,
      description: run.description,
      stats,
    };
    await this.db
      .insertInto('reconcile_runs')
      .values({ scope: run.scope, mode: run.mode, ...values })
      .onConflict((oc) => oc.columns(['scope', 'mode']).doUpdateSet(values))
      .execute();
  }

  async list(scope?: string): Promise<RecordedRun[]> {
    let q = this.db.selectFrom('reconcile_runs').selectAll();
    if (scope !== undefined) q = q.where('scope', '=', scope);
    const rows = await q.orderBy('scope').orderBy('mode').execute();
    return rows.map((r) => ({
      scope: r.scope,
      mode: r.mode as ReconcileMode,
      dryRun: Number(r.dry_run) === 1,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      description: r.description,
      stats: JSON.parse(r.stats) as ReconcileStats,
    }));
  }
}
