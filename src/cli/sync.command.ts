import type { Command } from 'commander';
import { CliError, withApp, type CliContext } from './context.ts';

export function registerSyncCommands(program: Command, ctx: CliContext): void {
  const sync = program.command('sync').description('records sync maintenance');

  sync
    .command('cleanup')
    .description('purge tombstones past STORMVAULT_SYNC_TOMBSTONE_DAYS and sync logs past STORMVAULT_SYNC_LOG_DAYS')
    .option('--dry-run', 'only count what would be purged', false)
    .option('--json', 'print JSON', false)
    .action(async (opts: { dryRun: boolean; json: boolean }) => {
      await withApp(ctx, async (app) => {
        const r = await app.sync.cleanup({ dryRun: opts.dryRun });
        if (opts.json) {
          ctx.stdout(`${JSON.stringify(r, null, 2)}\n`);
          return;
        }
        const verb = r.dryRun ? 'would purge' : 'purged';
        ctx.stdout(
          `${verb} tombstones deleted before ${r.tombstoneCutoff}: ${r.tombstones.project} projects, ${r.tombstones.task} tasks, ${r.tombstones.comment} comments; with them ${r.commentsOfPurgedTasks} comments of purged tasks and ${r.conflicts} resolved conflicts\n` +
            `${verb} sync logs older than ${r.logCutoff}: ${r.mutations} mutation entries, ${r.logs} request entries\n`,
        );
      }, ['sync']);
    });

  sync
    .command('metrics')
    .description('record one UTC day of sync metrics (pushes, pulls, conflicts) from the request log')
    .option('--day <YYYY-MM-DD>', 'the day to record (default: yesterday)')
    .action(async (opts: { day?: string }) => {
      if (opts.day !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts.day)) throw new CliError(`--day: expected YYYY-MM-DD, got "${opts.day}"`);
      await withApp(ctx, async (app) => {
        const rows = await app.sync.recordDailyMetrics(opts.day);
        for (const m of rows) ctx.stdout(`${m.day} ${m.organizationId}: ${m.pushes} pushes (${m.changesPushed} changes), ${m.pulls} pulls (${m.changesPulled} changes), ${m.conflicts} conflicts\n`);
        if (rows.length === 0) ctx.stdout('no sync activity on that day\n');
      }, ['sync']);
    });
}
