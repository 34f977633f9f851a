import { Command, CommanderError } from 'commander';
import { describeFailure, EXIT_OK, EXIT_USAGE, type CliContext } from './context.ts';
import { registerBackupsCommands } from './backups.command.ts';
import { registerCollectCommands } from './collect.command.ts';
import { registerMigrateCommand } from './migrate.command.ts';
import { registerRebuildIndexCommand } from './rebuild-index.command.ts';
import { registerServeCommand } from './serve.command.ts';
import { registerSeedDemoCommand } from './seed-demo.command.ts';
import { registerSyncCommands } from './sync.command.ts';
import { registerTasksCommands } from './tasks.command.ts';
import { registerApiKeyCommands, registerUserCommands } from './users.command.ts';
import { registerWorkerCommand } from './worker.command.ts';

/** One file per command; each calls the same services the HTTP routes call. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('stormvault')
    .description('Stormvault: self-hosted storage and sync server')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: ctx.stdout, writeErr: ctx.stderr })
    .exitOverride();
  registerServeCommand(program, ctx);
  registerWorkerCommand(program, ctx);
  registerTasksCommands(program, ctx);
  registerMigrateCommand(program, ctx);
  registerRebuildIndexCommand(program, ctx);
  registerUserCommands(program, ctx);
  registerApiKeyCommands(program, ctx);
  registerSyncCommands(program, ctx);
  registerSeedDemoCommand(program, ctx);
  registerBackupsCommands(program, ctx);
  registerCollectCommands(program, ctx);
  // Every subcommand: unknown flags and bad values are errors (exit 2), never ignored.
  const strict = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ writeOut: ctx.stdout, writeErr: ctx.stderr });
    cmd.commands.forEach(strict);
  };
  program.commands.forEach(strict);
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander; usage mistakes were already printed by it.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      if (err.code === 'commander.executeSubCommandAsync') return EXIT_OK;
      return EXIT_USAGE;
    }
    const { message, exitCode } = describeFailure(err);
    ctx.stderr(`stormvault: ${message}\n`);
    return exitCode;
  }
}
