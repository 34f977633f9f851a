import type { Command } from 'commander';
import { loadCliConfig, type CliContext } from './context.ts';

export function registerMigrateCommand(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('bring the database schema up to date (serve does this on start too)')
    .action(async () => {
      const config = await loadCliConfig(ctx);
      const [{ createDatabase }, { migrateToLatest }] = await Promise.all([import('../db/database.ts'), import('../db/migrator.ts')]);
      const handle = createDatabase(config.database.url);
      try {
        const { applied } = await migrateToLatest(handle.db);
        ctx.stdout(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await handle.destroy();
      }
    });
}
