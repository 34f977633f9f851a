import type { Command } from 'commander';
import { NAME_RE } from '../tasks/names.ts';
import { CliError, loadCliConfig, wholeNumber, type CliContext } from './context.ts';

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
    .option('--concurrency <n>', 'tasks at once (default: STORMVAULT_TASKS_CONCURRENCY)', wholeNumber(1))
    .action(async (opts: { queue?: string; concurrency?: number }) => {
      const queues = opts.queue === undefined ? [] : parseQueueList(opts.queue);
      if (opts.concurrency !== undefined && opts.concurrency > 1000) throw new CliError('--concurrency: at most 1000');
      const config = await loadCliConfig(ctx);
      if (config.tasks.backend === 'immediate') {
        throw new CliError('STORMVAULT_TASKS_BACKEND=immediate runs tasks in the process that enqueues them; there is no queue for a worker');
      }
      const [{ createApp }, { createLogger }] = await Promise.all([import('../app.ts'), import('../logger.ts')]);
      const logger = createLogger(config);
      const app = await createApp(config, { logger });
      let worker;
      try {
        worker = await app.tasks.startWorker({ queues, concurrency: opts.concurrency });
      } catch (err) {
        await app.close();
        throw err;
      }
      logger.info(
        { workerId: worker.id, queues: queues.length ? queues : 'all', concurrency: opts.concurrency ?? config.tasks.concurrency, backend: app.tasks.backendKind },
        'task worker started',
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal, workerId: worker.id, running: worker.running }, 'task worker stopping');
          worker
            .stop()
            .then(() => app.close())
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
