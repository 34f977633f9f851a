import { AppError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { UnrecoverableError } from '../../tasks/errors.ts';
import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import type { JsonValue } from '../../tasks/types.ts';
import { hasDrift, type IndexSyncStats, type SyncMode } from './index-diff.ts';
import type { IndexSyncService } from './index-sync.service.ts';

/** Arguments of the `storage.rebuild_index` task (JSON, snake_case like the HTTP body). */
export interface RebuildIndexArgs {
  mode: SyncMode;
  /** Which index (default files). */
  scope?: string;
  user_id?: string;
  path?: string;
  /** Backups scope: only this organization's locations (default: every organization). */
  organization_id?: string;
  dry_run?: boolean;
  force?: boolean;
  /** Remove upload temp files left by crashed uploads (the periodic audit sets it; issue 12). */
  sweep_temp_files?: boolean;
}

export const REBUILD_INDEX_TASK = 'storage.rebuild_index';
export const AUDIT_SCHEDULE_NAME = 'storage.index_audit';

/** Refusals that no retry can change: bad arguments, unknown user. A held lock or a missing volume may pass. */
const PERMANENT = new Set(['invalid_request', 'invalid_path', 'not_found']);

/**
 * Defines `storage.rebuild_index` (at most 3 attempts; a held lock or an unmounted volume is retried with
 * the framework's backoff, bad arguments fail at once) and, unless switched off, the periodic audit.
 */
export function defineIndexSyncTasks(
  tasks: TaskFramework,
  indexSync: IndexSyncService,
  options: { auditSchedule: string | null; logger: Logger },
): TaskDefinition<RebuildIndexArgs, JsonValue> {
  const definition = tasks.define<RebuildIndexArgs, JsonValue>(
    { name: REBUILD_INDEX_TASK, queue: 'default', maxAttempts: 3 },
    async (args, ctx) => {
      let stats: IndexSyncStats;
      try {
        stats = await indexSync.run(
          {
            mode: args?.mode,
            scope: args?.scope,
            userId: args?.user_id,
            path: args?.path,
            organizationId: args?.organization_id,
            dryRun: args?.dry_run,
            force: args?.force,
            sweepTemps: args?.sweep_temp_files === true,
          },
          {
            signal: ctx.signal,
            onProgress: (p) => void ctx.reportProgress(p.total === 0 ? 1 : p.done / p.total, `${p.done}/${p.total} users, ${p.entries} entries`).catch(() => {}),
          },
        );
      } catch (err) {
        if (err instanceof AppError && PERMANENT.has(err.code)) throw new UnrecoverableError(err.message);
        throw err;
      }
      const level = hasDrift(stats) ? 'warn' : 'info';
      ctx.logger[level]({ mode: args.mode, stats: { ...stats, errors: stats.errors.length } }, `index ${args.mode}: ${summaryLine(stats)}`);
      return stats as unknown as JsonValue;
    },
  );
  if (options.auditSchedule) {
    tasks.schedule({ name: AUDIT_SCHEDULE_NAME, cron: options.auditSchedule, timezone: 'UTC', task: definition, args: { mode: 'audit', sweep_temp_files: true } });
  }
  return definition;
}

export function summaryLine(s: IndexSyncStats): string {
  return `${s.users_scanned} users, ${s.files_on_disk} files on disk, ${s.files_in_db} in index; missing ${s.missing_in_db}, orphaned ${s.orphaned_in_db}, stale ${s.stale_in_db}, deferred ${s.deferred}, temp files ${s.temp_files} (${s.temp_files_removed} removed), errors ${s.errors.length}; ${s.duration_ms} ms`;
}

/**
 * The audit `serve` runs at start-up: in the background, never blocking or failing the start. Logs one
 * summary line, a warning when it found drift (or could not run). Resolves when done; never rejects.
 */
export async function runStartupAudit(indexSync: IndexSyncService, logger: Logger, signal?: AbortSignal): Promise<void> {
  try {
    const stats = await indexSync.run({ mode: 'audit', sweepTemps: true }, { signal });
    const fields = {
      missing_in_db: stats.missing_in_db,
      orphaned_in_db: stats.orphaned_in_db,
      stale_in_db: stats.stale_in_db,
      deferred: stats.deferred,
      temp_files: stats.temp_files,
      temp_files_removed: stats.temp_files_removed,
      errors: stats.errors.length,
      duration_ms: stats.duration_ms,
    };
    if (hasDrift(stats)) logger.warn(fields, `start-up index audit found drift: ${summaryLine(stats)}; run \`stormvault rebuild-index --mode sync\` (or full --force)`);
    else logger.info(fields, `start-up index audit: index and disk agree (${summaryLine(stats)})`);
  } catch (err) {
    if (signal?.aborted) return;
    if (err instanceof AppError && err.code === 'locked') logger.info(`start-up index audit skipped: ${err.message}`);
    else logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'start-up index audit could not run');
  }
}
