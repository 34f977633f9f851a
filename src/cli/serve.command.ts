import type { Command } from 'commander';
import { loadCliConfig, type CliContext } from './context.ts';

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the HTTP server (migrates the database first)')
    .option('--no-worker', 'do not run background tasks in this process (run `stormvault worker` instead)')
    .option('--no-consumers', 'do not run the backups stream consumers here (run `stormvault consume device-results|storage-results` instead)')
    .action(async (opts: { worker: boolean; consumers: boolean }) => {
      const config = await loadCliConfig(ctx);
      const [{ createApp }, { createLogger }, { bootstrapFirstAdmin }, { runStartupAudit }, { tuneServerHeap }] = await Promise.all([
        import('../app.ts'),
        import('../logger.ts'),
        import('../modules/auth/bootstrap.ts'),
        import('../modules/index-sync/index-sync.tasks.ts'),
        import('./serve-heap.ts'),
      ]);
      // Uploads would otherwise trigger a full GC every ~25 MB received (issue 12; see serve-heap.ts).
      tuneServerHeap();
      const logger = createLogger(config);
      const app = await createApp(config, { logger });
      const first = await bootstrapFirstAdmin(app.users, app.apiKeys);
      const address = await app.listen();
      // The embedded default needs one process: serve runs a worker for all queues unless told not to.
      if (opts.worker) await app.tasks.startWorker();
      // Backups (issue 9): the pipeline's consumers run here by default, like the worker.
      if (opts.consumers) {
        const c = app.backups.consumers();
        c.deviceResults.start();
        c.storageResults.start();
      }
      if (first) {
        ctx.stdout(
          [
            '',
            'First start: created an administrator. These are shown once; keep them safe.',
            `  username: ${first.username}`,
            `  password: ${first.password}`,
            `  API key:  ${first.apiKey}`,
            `Web UI: open ${config.server.publicUrl} and log in as ${first.username} with the password above.`,
            `Try: curl -H "Authorization: Bearer ${first.apiKey}" ${config.server.publicUrl}/api/v1/users/me`,
            '',
          ].join('\n') + '\n',
        );
      }
      logger.info({ address, dataDir: config.dataDir, database: config.database.dialect }, 'stormvault listening');
      // Issue 4: an index audit in the background; it never delays or fails the start, logs one line.
      const startupAudit = new AbortController();
      if (config.indexSync.auditOnStart) void runStartupAudit(app.indexSync, logger, startupAudit.signal);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          startupAudit.abort();
          app.close().then(resolve, (err) => {
            logger.error({ err }, 'error while shutting down');
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
