import type { Command } from 'commander';
import type { TaskWorker } from '../tasks/framework.ts';
import { NAME_RE } from '../tasks/names.ts';
import { CliError, loadCliConfig, wholeNumber, type CliContext } from './context.ts';

// Queues of the backups storage workers (storage/backup-plugins/storage-worker.ts), named here so the
// CLI does not load the storage worker unless it runs one.
const STORAGE_QUEUES = ['storage.git', 'storage.fs'];

/** `--queue a,b` → ['a', 'b'], refusing empty or malformed names (exit 2). */
export function parseQueueList(value: string): string[] {
  const queues = value.split(',').map((q) => q.trim());
  const bad = queues.find((q) => !NAME_RE.test(q));
  if (bad !== undefined) throw new CliError(`--queue: "${bad}" is not a queue name (lowercase letters, digits, ".", "_", "-"; comma-separated)`);
  return [...new Set(queues)];
}

export function registerWorkerCommand(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run background tasks until SIGTERM/SIGINT (then finish or hand back running tasks)')
    .option('--queue <names>', 'comma-separated queues to take tasks from (default: all)')
    .option('--concurrency <n>', 'tasks at once (default: STORMVAULT_TASKS_CONCURRENCY; STORMVAULT_COLLECT_CONCURRENCY for --queue collect)', wholeNumber(1))
    .action(async (opts: { queue?: string; concurrency?: number }) => {
      const queues = opts.queue === undefined ? [] : parseQueueList(opts.queue);
      if (opts.concurrency !== undefined && opts.concurrency > 1000) throw new CliError('--concurrency: at most 1000');
      const config = await loadCliConfig(ctx);
      if (config.tasks.backend === 'immediate') {
        throw new CliError('STORMVAULT_TASKS_BACKEND=immediate runs tasks in the process that enqueues them; there is no queue for a worker');
      }
      // Collectors mostly wait on the network (issue 10): their own default, STORMVAULT_COLLECT_CONCURRENCY.
      if (opts.concurrency === undefined && queues.length === 1 && queues[0] === 'collect') opts.concurrency = config.collect.concurrency;
      const [{ createLogger }, { systemClock }] = await Promise.all([import('../logger.ts'), import('../clock.ts')]);
      const logger = createLogger(config);
      let worker: TaskWorker;
      let close: () => Promise<void>;
      if (config.tasks.backend === 'redis' && queues.length > 0 && queues.every((q) => STORAGE_QUEUES.includes(q))) {
        // Backups storage workers (issue 9) run without the app: no database needed, none opened.
        const { startStorageWorker } = await import('../storage/backup-plugins/storage-worker.ts');
        const storage = await startStorageWorker({ config, clock: systemClock, logger, queues, concurrency: opts.concurrency });
        worker = storage.worker;
        close = () => storage.close();
      } else {
        const { createApp } = await import('../app.ts');
        const app = await createApp(config, { logger });
        try {
          worker = await app.tasks.startWorker({ queues, concurrency: opts.concurrency });
        } catch (err) {
          await app.close();
          throw err;
        }
        close = () => app.close();
      }
      logger.info(
        { workerId: worker.id, queues: queues.length ? queues : 'all', concurrency: opts.concurrency ?? config.tasks.concurrency, backend: config.tasks.backend },
        'task worker started',
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal, workerId: worker.id, running: worker.running }, 'task worker stopping');
          worker
            .stop()
            .then(() => close())
            .then(resolve, (err) => {
              logger.error({ err }, 'error while stopping the worker');
              resolve();
            });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
