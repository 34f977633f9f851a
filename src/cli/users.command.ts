import type { Command } from 'commander';
import { CliError, withApp, wholeNumber, type CliContext } from './context.ts';

export function registerUserCommands(program: Command, ctx: CliContext): void {
  const user = program.command('user').description('manage users');

  user
    .command('create')
    .description('create a user (prints its id)')
    .requiredOption('--username <name>', 'login name: letters, digits, "_", "." or "-"')
    .option('--admin', 'make the user an administrator', false)
    .option('--password-stdin', 'read the password from standard input (first line)', false)
    .option('--quota <bytes>', 'storage quota in bytes (default: STORMVAULT_DEFAULT_QUOTA_BYTES or unlimited)', wholeNumber(0))
    .action(async (opts: { username: string; admin: boolean; passwordStdin: boolean; quota?: number }) => {
      let password: string | undefined;
      if (opts.passwordStdin) {
        password = (await ctx.readStdin()).split(/\r?\n/)[0] ?? '';
        if (password.length === 0) throw new CliError('--password-stdin: no password on standard input');
      }
      await withApp(ctx, async (app) => {
        const created = await app.users.create({ username: opts.username, password, isAdmin: opts.admin, quotaBytes: opts.quota });
        ctx.stdout(`created user ${created.username}${created.isAdmin ? ' (admin)' : ''}\n${created.id}\n`);
      }, ['users']);
    });

  user
    .command('list')
    .description('list users')
    .option('--json', 'print JSON', false)
    .action(async (opts: { json: boolean }) => {
      await withApp(ctx, async (app) => {
        const users = await app.users.list();
        if (opts.json) {
          ctx.stdout(`${JSON.stringify(users, null, 2)}\n`);
          return;
        }
        const rows = users.map((u) => [u.username, u.isAdmin ? 'admin' : 'user', u.quotaBytes === null ? 'unlimited' : String(u.quotaBytes), u.id]);
        ctx.stdout(formatTable(['USERNAME', 'ROLE', 'QUOTA', 'ID'], rows));
      }, ['users']);
    });
}

export function registerApiKeyCommands(program: Command, ctx: CliContext): void {
  const apikey = program.command('apikey').description('manage API keys');
  apikey
    .command('create')
    .description('create an API key for a user; the key is printed alone on the last line, once')
    .requiredOption('--username <name>', 'the user the key acts as')
    .option('--name <label>', 'a label to tell keys apart', 'cli')
    .action(async (opts: { username: string; name: string }) => {
      await withApp(ctx, async (app) => {
        const owner = await app.users.getByUsername(opts.username);
        const { key, record } = await app.apiKeys.create(owner.id, opts.name);
        ctx.stdout(`created API key "${record.name}" (${record.id}) for ${owner.username}; it is shown only now:\n${key}\n`);
      }, ['auth']);
    });
}

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
