import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import type { JsonValue } from '../../tasks/types.ts';
import type { SyncService } from './sync.service.ts';

export const SYNC_CLEANUP_TASK = 'sync.cleanup';
export const SYNC_METRICS_TASK = 'sync.metrics';

/**
 * Defines the records-sync maintenance tasks and their daily schedules (issue 5):
 * - `sync.cleanup` purges tombstones past STORMVAULT_SYNC_TOMBSTONE_DAYS and mutation/request logs past
 *   STORMVAULT_SYNC_LOG_DAYS (the same service call as `stormvault sync cleanup`);
 * - `sync.metrics` aggregates yesterday's request log into sync_metrics (pushes, pulls, conflicts per day).
 * Metrics run before cleanup so a day is counted before its log rows can expire.
 */
export function defineSyncTasks(tasks: TaskFramework, sync: SyncService): TaskDefinition<any, JsonValue>[] {
  const cleanup = tasks.define<{ dry_run?: boolean }, JsonValue>({ name: SYNC_CLEANUP_TASK, queue: 'default', maxAttempts: 3 }, async (args, ctx) => {
    const report = await sync.cleanup({ dryRun: args?.dry_run === true });
    ctx.logger.info({ report }, 'sync cleanup');
    return report as unknown as JsonValue;
  });
  const metrics = tasks.define<{ day?: string }, JsonValue>({ name: SYNC_METRICS_TASK, queue: 'default', maxAttempts: 3 }, async (args) => {
    const rows = await sync.recordDailyMetrics(args?.day);
    return { organizations: rows.length } as JsonValue;
  });
  tasks.schedule({ name: 'sync.metrics.daily', cron: '10 0 * * *', timezone: 'UTC', task: metrics, args: {} });
  tasks.schedule({ name: 'sync.cleanup.daily', cron: '30 3 * * *', timezone: 'UTC', task: cleanup, args: {} });
  return [cleanup, metrics];
}
