import type { Command } from 'commander';
import { orgContext } from './backups.command.ts';
import { CliError, EXIT_FAILURE, withApp, wholeNumber, type CliContext } from './context.ts';

const print = (ctx: CliContext, value: unknown) => ctx.stdout(`${JSON.stringify(value, null, 2)}\n`);

/**
 * Collection commands (issue 10), under `backups`: the same collect service the routes call, acting as an
 * organization admin (the CLI is the operator on the server).
 */
export function registerCollectCommands(program: Command, ctx: CliContext): void {
  const backups = program.commands.find((c) => c.name() === 'backups');
  if (!backups) throw new Error('register the backups commands first');

  backups
    .command('collect')
    .description('collect a network device now; prints {task_id, status[, outcome]} as JSON (exit 1 when --wait sees it fail)')
    .requiredOption('--device <name>', 'network device name')
    .option('--wait', 'wait until the collection has an outcome (a worker must run the collect queue)', false)
    .option('--timeout <seconds>', 'most seconds --wait waits (default: the device timeout plus a minute)', wholeNumber(1))
    .option('--org <id>', 'organization id')
    .action(async (o: { device: string; wait: boolean; timeout?: number; org?: string }) => {
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        const device = await app.backups.devices.getByName(c, o.device);
        let task = await app.collect.collect.backupNow(c, device.id);
        if (o.wait && !task.isFinished) {
          const timeoutMs = (o.timeout ?? Math.ceil(app.config.collect.deviceTimeoutMs / 1000) * app.config.collect.attempts + 60) * 1000;
          try {
            await task.wait({ timeoutMs });
          } catch (err) {
            if ((err as Error).name === 'TaskWaitTimeoutError') {
              print(ctx, { task_id: task.id, status: task.status });
              throw new CliError(`no outcome within ${timeoutMs / 1000} s: is a worker running the collect queue (stormvault worker --queue collect)?`, EXIT_FAILURE);
            }
            throw err;
          }
          task = await app.tasks.getResult(task.id);
        }
        const out: Record<string, unknown> = { task_id: task.id, network_device: device.name, status: task.status };
        if (task.status === 'SUCCESSFUL') out.outcome = task.returnValue;
        else if (task.status === 'FAILED') out.outcome = { ok: false, message: task.errors.at(-1)?.message ?? 'failed' };
        print(ctx, out);
        const outcome = out.outcome as { ok?: boolean; stage?: string; message?: string } | undefined;
        if (o.wait && outcome && outcome.ok === false) throw new CliError(`collection failed${outcome.stage ? ` at ${outcome.stage}` : ''}: ${outcome.message ?? 'see the outcome'}`, EXIT_FAILURE);
      });
    });

  backups
    .command('models')
    .description('device models a network device can use (shipped and <data dir>/models/), as JSON')
    .action(async () => {
      await withApp(ctx, async (app) => {
        print(
          ctx,
          app.collect.models.list().map(({ model, source, file }) => ({ name: model.name, description: model.description, mode: model.mode, source, file, commands: model.commands.map((x) => x.cmd) })),
        );
      });
    });
}
