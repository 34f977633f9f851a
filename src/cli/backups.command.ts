import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { App } from '../app.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { backupJson, deviceJson, locationJson } from '../modules/backups/backups.json.ts';
import type { OrgContext } from '../modules/organizations/organizations.types.ts';
import { CliError, withApp, wholeNumber, type CliContext } from './context.ts';
import { formatTable } from './users.command.ts';

/**
 * Backups CLI (issue 9): the same services the routes call, acting as an organization admin (the CLI is
 * the operator on the server). `--org ID` names the organization; without it, the only organization that
 * has backup locations.
 */
export async function orgContext(app: App, org: string | undefined): Promise<OrgContext> {
  if (org !== undefined) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(org)) throw new CliError(`--org: "${org}" is not an organization id`);
    return { organizationId: org, userId: 'cli', role: 'admin' };
  }
  const orgs = await app.backups.locations.organizationsWithLocations();
  if (orgs.length === 1) return { organizationId: orgs[0]!, userId: 'cli', role: 'admin' };
  throw new CliError(orgs.length === 0 ? '--org ID is required (no organization has backup locations yet)' : `--org ID is required (${orgs.length} organizations have backup locations)`);
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const sshPort = (value: string): number => {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new InvalidArgumentError(`expected a TCP port 1-65535, got "${value}"`);
  return Number(value);
};
const print = (ctx: CliContext, value: unknown) => ctx.stdout(`${JSON.stringify(value, null, 2)}\n`);

export function registerBackupsCommands(program: Command, ctx: CliContext): void {
  const backups = program.command('backups').description('network-device configuration backups (docs/backups.md)');
  const location = backups.command('location').description('backup locations (git repositories, fs folders)');

  location
    .command('add')
    .description('create a backup location; prints it as JSON')
    .requiredOption('--name <name>', 'location name')
    .requiredOption('--type <git|fs>', 'git repository or fs folder')
    .requiredOption('--folder <path>', "folder relative to <STORMVAULT_BACKUPS_ROOT>/<organization id>/")
    .option('--branch <name>', 'git: branch (default main)')
    .option('--author-name <name>', 'git: commit author name')
    .option('--author-email <email>', 'git: commit author e-mail')
    .option('--keep-versions <n>', 'fs: versions kept per device', wholeNumber(1))
    .option('--keep-days <n>', 'fs: days versions are kept', wholeNumber(1))
    .option('--org <id>', 'organization id')
    .action(async (o: { name: string; type: string; folder: string; branch?: string; authorName?: string; authorEmail?: string; keepVersions?: number; keepDays?: number; org?: string }) => {
      if (o.type !== 'git' && o.type !== 'fs') throw new CliError('--type must be git or fs');
      const config =
        o.type === 'git'
          ? { folder: o.folder, branch: o.branch, author_name: o.authorName, author_email: o.authorEmail }
          : { folder: o.folder, keep_versions: o.keepVersions, keep_days: o.keepDays };
      if (o.type === 'fs' && (o.branch || o.authorName || o.authorEmail)) throw new CliError('--branch/--author-* apply to git locations only');
      if (o.type === 'git' && (o.keepVersions !== undefined || o.keepDays !== undefined)) throw new CliError('--keep-versions/--keep-days apply to fs locations only');
      if (o.org === undefined) throw new CliError('--org ID is required to create a location');
      await withApp(ctx, async (app) => {
        const created = await app.backups.locations.create(await orgContext(app, o.org), { name: o.name, type: o.type, config: JSON.parse(JSON.stringify(config)) });
        print(ctx, locationJson(created));
      });
    });

  location
    .command('list')
    .description('list backup locations')
    .option('--org <id>', 'organization id')
    .action(async (o: { org?: string }) => {
      await withApp(ctx, async (app) => {
        const list = await app.backups.locations.list(await orgContext(app, o.org));
        ctx.stdout(formatTable(['NAME', 'TYPE', 'FOLDER', 'ID'], list.map((l) => [l.name, l.type, l.config.folder, l.id])));
      });
    });

  backups
    .command('push')
    .description('push a configuration from standard input (e.g. < running.cfg); prints the task identifier')
    .requiredOption('--device <name>', 'network device name')
    .option('--org <id>', 'organization id')
    .action(async (o: { device: string; org?: string }) => {
      const content = Buffer.from(await ctx.readStdin(), 'utf8');
      if (content.length === 0) throw new CliError('no configuration on standard input');
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        const device = await app.backups.devices.getByName(c, o.device);
        const { taskIdentifier } = await app.backups.devices.push(c, device.id, content);
        ctx.stdout(`${taskIdentifier}\n`);
      });
    });

  backups
    .command('list')
    .description('stored versions of a device, newest first')
    .requiredOption('--device <name>', 'network device name')
    .option('--limit <n>', 'most versions shown (default 50)', wholeNumber(1))
    .option('--org <id>', 'organization id')
    .action(async (o: { device: string; limit?: number; org?: string }) => {
      if (o.limit !== undefined && o.limit > 500) throw new CliError('--limit: at most 500');
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        const device = await app.backups.devices.getByName(c, o.device);
        const page = await app.backups.storedBackups.history(c, device, o.limit ?? 50, undefined);
        ctx.stdout(formatTable(['COLLECTED_AT', 'SIZE', 'SHA256', 'ID'], page.items.map((b) => [b.collectedAt, String(b.size), b.sha256.slice(0, 12), b.id])));
      });
    });

  backups
    .command('show <id>')
    .description('one stored version as JSON')
    .option('--org <id>', 'organization id')
    .action(async (id: string, o: { org?: string }) => {
      await withApp(ctx, async (app) => print(ctx, backupJson(await app.backups.storedBackups.get(await orgContext(app, o.org), id))));
    });

  backups
    .command('download <id>')
    .description('the content of a stored version, to standard output or to a file (--output)')
    .option('-o, --output <file>', 'write it to this file (atomically: temp file, fsync, rename; mode 600, configurations hold secrets); "-" for standard output')
    .option('--org <id>', 'organization id')
    .action(async (id: string, o: { org?: string; output?: string }) => {
      if (o.output === '') throw new CliError('--output: give a file name, or "-" for standard output');
      await withApp(ctx, async (app) => {
        const { content } = await app.backups.storedBackups.content(await orgContext(app, o.org), id);
        if (o.output === undefined || o.output === '-') {
          ctx.stdout(content.toString('utf8'));
          return;
        }
        const target = path.resolve(o.output);
        try {
          await writeFileAtomic(target, content, { mode: 0o600 });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const why = code === 'ENOENT' ? 'its folder does not exist' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
          throw new CliError(`--output ${o.output}: cannot write (${why})`);
        }
      });
    });

  backups
    .command('diff <id>')
    .description('unified diff against another version of the same device (default: the previous one)')
    .option('--against <id>', 'other version id, or "previous"', 'previous')
    .option('--format <unified|json>', 'output format', 'unified')
    .option('--org <id>', 'organization id')
    .action(async (id: string, o: { against: string; format: string; org?: string }) => {
      if (o.format !== 'unified' && o.format !== 'json') throw new CliError('--format must be unified or json');
      await withApp(ctx, async (app) => {
        const d = await app.backups.storedBackups.diff(await orgContext(app, o.org), id, o.against, o.format as 'unified' | 'json');
        if ('hunks' in d) print(ctx, { from: backupJson(d.from), to: backupJson(d.to), hunks: d.hunks });
        else ctx.stdout(d.unified);
      });
    });

  const devices = program.command('network-devices').description('routers and switches whose configurations are backed up');
  devices
    .command('add')
    .description('add a network device; prints it as JSON')
    .requiredOption('--name <name>', 'device name ([A-Za-z0-9._-], unique in the organization)')
    .requiredOption('--address <host>', 'address or host name')
    .requiredOption('--location <name>', 'backup location name')
    .option('--group <name>', 'group (default "default")')
    .option('--strip <regex>', 'strip lines matching (repeatable)', collect)
    .option('--ignore <regex>', 'ignore lines matching when deciding "changed" (repeatable)', collect)
    .option('--disabled', 'add it disabled', false)
    // Collection over SSH (issue 10, docs/collection.md): all three needed for the device to be collected.
    .option('--model <name>', 'device model to collect it with (stormvault backups models lists them)')
    .option('--port <n>', 'SSH port (default 22)', sshPort)
    .option('--credential <name>', 'credential to log in with (stormvault credentials list)')
    .option('--org <id>', 'organization id')
    .action(async (o: { name: string; address: string; location: string; group?: string; strip?: string[]; ignore?: string[]; disabled: boolean; model?: string; port?: number; credential?: string; org?: string }) => {
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        const loc = await app.backups.locations.getByName(c, o.location);
        if (o.model !== undefined && !app.collect.models.get(o.model)) {
          throw new CliError(`--model: no model named "${o.model}"; known: ${app.collect.models.list().map((m) => m.model.name).join(', ')}`);
        }
        let credentialId: string | undefined;
        if (o.credential !== undefined) {
          const cred = await app.collect.credentials.findByName(c.organizationId, o.credential);
          if (!cred) throw new CliError(`--credential: no credential named "${o.credential}" (stormvault credentials list)`);
          credentialId = cred.id;
        }
        const created = await app.backups.devices.create(c, {
          name: o.name,
          address: o.address,
          group: o.group,
          backup_location_id: loc.id,
          enabled: !o.disabled,
          strip_patterns: o.strip ?? [],
          ignore_patterns: o.ignore ?? [],
          ...(o.model !== undefined ? { model: o.model } : {}),
          ...(o.port !== undefined ? { port: o.port } : {}),
          ...(credentialId !== undefined ? { credential_id: credentialId } : {}),
        });
        print(ctx, deviceJson(created));
      });
    });
  devices
    .command('list')
    .description('list network devices with their last backup status')
    .option('--org <id>', 'organization id')
    .action(async (o: { org?: string }) => {
      await withApp(ctx, async (app) => {
        const c = await orgContext(app, o.org);
        const rows: string[][] = [];
        let cursor: string | undefined;
        do {
          const page = await app.backups.devices.list(c, 500, cursor);
          for (const d of page.items) rows.push([d.name, d.group, d.address, d.status.lastStatus ?? '-', d.status.lastBackupAt ?? '-', d.id]);
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        ctx.stdout(formatTable(['NAME', 'GROUP', 'ADDRESS', 'STATUS', 'LAST_BACKUP', 'ID'], rows));
      });
    });
  devices
    .command('show <name>')
    .description('one network device as JSON')
    .option('--org <id>', 'organization id')
    .action(async (name: string, o: { org?: string }) => {
      await withApp(ctx, async (app) => print(ctx, deviceJson(await app.backups.devices.getByName(await orgContext(app, o.org), name))));
    });

  program
    .command('consume <stream>')
    .description('run a backups pipeline consumer until SIGTERM/SIGINT: device-results or storage-results')
    .action(async (stream: string) => {
      if (stream !== 'device-results' && stream !== 'storage-results') throw new CliError('consume: the stream must be device-results or storage-results');
      await withApp(ctx, async (app) => {
        const c = app.backups.consumers();
        const consumer = stream === 'device-results' ? c.deviceResults : c.storageResults;
        consumer.start();
        app.logger.info({ stream, consumer: consumer.name }, 'backups consumer started');
        await new Promise<void>((resolve) => {
          const stop = () => void consumer.stop().then(resolve, resolve);
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
        });
      });
    });
}
