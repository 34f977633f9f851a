import type { Command } from 'commander';
import { readUserFile } from '../storage/user-files.ts';
import { orgContext } from './backups.command.ts';
import { CliError, EXIT_FAILURE, withApp, wholeNumber, type CliContext } from './context.ts';
import { formatTable } from './users.command.ts';

// Loaded by the credentials commands only: every other command (an audit, say) must not load the collect
// module's code (test/cli/lazy-imports.test.ts).
const credentialsJson = () => import('../modules/collect/credentials.service.ts');

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
    .description('collect a network device (or --all) now; prints {task_id, status[, outcome]} as JSON (exit 1 when --wait sees it fail)')
    .option('--device <name>', 'network device name')
    .option('--all', 'every enabled device of the organization that has a model and a credential, as one batch; prints {enqueued, tasks}', false)
    .option('--wait', 'wait until the collection has an outcome (a worker must run the collect queue)', false)
    .option('--timeout <seconds>', 'most seconds --wait waits (default: the device timeout plus a minute)', wholeNumber(1))
    .option('--org <id>', 'organization id')
    .action(async (o: { device?: string; all: boolean; wait: boolean; timeout?: number; org?: string }) => {
      if ((o.device === undefined) === !o.all) throw new CliError('name one --device, or --all');
      if (o.all && (o.wait || o.timeout !== undefined)) throw new CliError('--wait and --timeout follow one --device; with --all, see stormvault tasks list');
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        if (o.device === undefined) {
          const devices: { id: string; name: string }[] = [];
          let cursor: string | undefined;
          do {
            const page = await app.backups.devices.list(c, 500, cursor);
            devices.push(...page.items.filter((d) => d.enabled && d.collection.model !== null && d.collection.credentialId !== null));
            cursor = page.nextCursor ?? undefined;
          } while (cursor);
          const tasks = await app.collect.collect.backupNowMany(c, devices.map((d) => d.id));
          print(ctx, { enqueued: tasks.length, tasks: tasks.map((t, i) => ({ network_device: devices[i]!.name, task_id: t.id })) });
          return;
        }
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

  registerCredentialCommands(program, ctx);
}

/**
 * Asks for a secret on the terminal without echoing it (readline's output muted while typing). Only
 * when standard input is a terminal; scripts pipe secrets in with the --*-stdin flags.
 */
async function promptSecret(ctx: CliContext, label: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  ctx.stderr(`${label}: `);
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    ctx.stderr('\n');
  }
}

interface CredentialAddOptions {
  name: string;
  username: string;
  passwordStdin: boolean;
  privateKeyFile?: string;
  passphraseStdin: boolean;
  enablePasswordStdin: boolean;
  org?: string;
}

/**
 * `credentials add|list|remove` (issue 10): the credentials service the API uses, as an organization
 * admin. Secrets never come from argv: standard input (one line each, in the order password,
 * passphrase, enable password — only those asked for), or, when standard input is a terminal, a prompt
 * per secret that does not echo (the password too when neither it nor a key was asked for); a private
 * key from a file. Nothing printed carries a secret (the JSON has has_password etc.).
 */
function registerCredentialCommands(program: Command, ctx: CliContext): void {
  const credentials = program.command('credentials').description('logins the collectors use on network devices (org admins; secrets are write-only)');

  credentials
    .command('add')
    .description('create a credential; prints it as JSON (never a secret)')
    .requiredOption('--name <name>', 'credential name (unique in the organization; network-devices add --credential uses it)')
    .requiredOption('--username <user>', 'login name on the devices')
    .option('--password-stdin', 'read the password from standard input (its first line)', false)
    .option('--private-key-file <path>', 'log in with this private key (OpenSSH or PEM file)')
    .option('--passphrase-stdin', "read the private key's passphrase from standard input (the next line)", false)
    .option('--enable-password-stdin', 'read the enable password from standard input (the next line)', false)
    .option('--org <id>', 'organization id')
    .action(async (o: CredentialAddOptions) => {
      if (o.passphraseStdin && o.privateKeyFile === undefined) throw new CliError('--passphrase-stdin needs --private-key-file');
      const wanted: { field: 'password' | 'passphrase' | 'enable_password'; flag: string; label: string }[] = [];
      // Neither a password nor a key asked for: on a terminal, prompt for the password.
      const promptPassword = !o.passwordStdin && o.privateKeyFile === undefined && ctx.isTty;
      if (o.passwordStdin || promptPassword) wanted.push({ field: 'password', flag: '--password-stdin', label: 'Password' });
      if (o.passphraseStdin) wanted.push({ field: 'passphrase', flag: '--passphrase-stdin', label: 'Key passphrase' });
      if (o.enablePasswordStdin) wanted.push({ field: 'enable_password', flag: '--enable-password-stdin', label: 'Enable password' });
      if (wanted.length === 0 && o.privateKeyFile === undefined) {
        throw new CliError('a credential needs a password or a private key: --password-stdin (the password on standard input) or --private-key-file PATH');
      }
      const body: Record<string, string> = { name: o.name, username: o.username };
      if (o.privateKeyFile !== undefined) {
        try {
          body.private_key = await readUserFile(o.privateKeyFile);
        } catch (err) {
          throw new CliError(`--private-key-file ${o.privateKeyFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
      }
      if (wanted.length > 0) {
        // Standard input a terminal: the user types each secret at a prompt that does not echo.
        const piped = !ctx.isTty;
        const lines = piped ? (await ctx.readStdin()).split(/\r?\n/) : [];
        for (const [i, w] of wanted.entries()) {
          const value = piped ? (lines[i] ?? '') : await promptSecret(ctx, w.label);
          if (value === '') throw new CliError(piped ? `${w.flag}: no value on line ${i + 1} of standard input` : `${w.label}: nothing typed`);
          body[w.field] = value;
        }
      }
      await withApp(ctx, async (app) => {
        const created = await app.collect.credentials.create(await orgContext(app, o.org), body);
        print(ctx, (await credentialsJson()).credentialJson(created));
      });
    });

  credentials
    .command('list')
    .description('list credentials (which secrets each has, never the secrets)')
    .option('--json', 'print JSON', false)
    .option('--org <id>', 'organization id')
    .action(async (o: { json: boolean; org?: string }) => {
      await withApp(ctx, async (app) => {
        const list = await app.collect.credentials.list(await orgContext(app, o.org));
        if (o.json) {
          const { credentialJson } = await credentialsJson();
          return print(ctx, list.map(credentialJson));
        }
        const yes = (b: boolean) => (b ? 'yes' : '-');
        ctx.stdout(formatTable(['NAME', 'USERNAME', 'PASSWORD', 'KEY', 'ENABLE', 'ID'], list.map((c) => [c.name, c.username, yes(c.hasPassword), yes(c.hasPrivateKey), yes(c.hasEnablePassword), c.id])));
      });
    });

  credentials
    .command('remove <name>')
    .description('delete a credential no network device uses; prints {removed, id} as JSON')
    .option('--org <id>', 'organization id')
    .action(async (name: string, o: { org?: string }) => {
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        const cred = await app.collect.credentials.findByName(c.organizationId, name);
        if (!cred) throw new CliError(`no credential named "${name}" (stormvault credentials list)`);
        await app.collect.credentials.delete(c, cred.id);
        print(ctx, { removed: cred.name, id: cred.id });
      });
    });
}
