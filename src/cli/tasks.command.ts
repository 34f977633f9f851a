import { Option, type Command } from 'commander';
import type { App } from '../app.ts';
import { TASK_STATUSES, type TaskStatus } from '../tasks/types.ts';
import { CliError, withApp, wholeNumber, type CliContext } from './context.ts';
import { formatTable } from './users.command.ts';

/** `stormvault tasks …`: the same operations as the admin API, for operators on the server. */
export function registerTasksCommands(program: Command, ctx: CliContext): void {
  const tasks = program.command('tasks').description('inspect and manage background tasks');

  const noteIfVolatile = (app: App) => {
    if (!app.tasks.capabilities.durable) {
      ctx.stderr(`note: the ${app.tasks.backendKind} backend keeps results only in the memory of the process that ran them\n`);
    }
  };

  tasks
    .command('list')
    .description('list tasks, newest first')
    .addOption(new Option('--status <status>', 'only tasks in this status').choices([...TASK_STATUSES]))
    .option('--dead', 'only dead-lettered tasks', false)
    .option('--queue <name>', 'only tasks of this queue')
    .option('--name <task>', 'only tasks of this task name')
    .option('--limit <n>', 'at most this many (1..1000, default 100)', wholeNumber(1))
    .option('--json', 'print JSON', false)
    .action(async (opts: { status?: TaskStatus; dead: boolean; queue?: string; name?: string; limit?: number; json: boolean }) => {
      await withApp(ctx, async (app) => {
        noteIfVolatile(app);
        const results = await app.tasks.list({
          status: opts.status,
          deadLettered: opts.dead ? true : undefined,
          queue: opts.queue,
          taskName: opts.name,
          limit: opts.limit,
        });
        if (opts.json) {
          ctx.stdout(`${JSON.stringify(results, null, 2)}\n`);
          return;
        }
        const rows = results.map((r) => [
          r.id,
          r.status + (r.deadLettered ? ' (dead)' : r.cancelled ? ' (cancelled)' : ''),
          r.taskName,
          r.queue,
          `${r.attempts}/${r.maxAttempts}`,
          r.enqueuedAt.toISOString(),
          r.finishedAt?.toISOString() ?? '',
        ]);
        ctx.stdout(formatTable(['ID', 'STATUS', 'TASK', 'QUEUE', 'ATTEMPTS', 'ENQUEUED', 'FINISHED'], rows));
      });
    });

  tasks
    .command('show')
    .description('print one task and its result as JSON (with error stacks)')
    .argument('<id>', 'task id')
    .action(async (id: string) => {
      checkId(id);
      await withApp(ctx, async (app) => {
        noteIfVolatile(app);
        ctx.stdout(`${JSON.stringify(await app.tasks.getResult(id), null, 2)}\n`);
      });
    });

  tasks
    .command('retry')
    .description('requeue a FAILED (dead-lettered or cancelled) task')
    .argument('<id>', 'task id')
    .action(async (id: string) => {
      checkId(id);
      await withApp(ctx, async (app) => {
        const r = await app.tasks.retry(id);
        ctx.stdout(`requeued ${r.id} (${r.taskName}); status ${r.status}\n`);
      });
    });

  tasks
    .command('cancel')
    .description('cancel a READY task, or ask the worker running a RUNNING one to abort it')
    .argument('<id>', 'task id')
    .action(async (id: string) => {
      checkId(id);
      await withApp(ctx, async (app) => {
        const r = await app.tasks.cancel(id);
        ctx.stdout(
          r.status === 'RUNNING'
            ? `cancel requested for ${r.id} (${r.taskName}); its worker aborts it at its next heartbeat\n`
            : `cancelled ${r.id} (${r.taskName}); status ${r.status}\n`,
        );
      });
    });
}

function checkId(id: string): void {
  // "." and ":" too: the redis backend's schedule runs keep BullMQ's ids, "repeat:<schedule>:<tick ms>".
  if (!/^[\w.:-]{1,100}$/.test(id)) throw new CliError(`"${id}" is not a task id`);
}
