import type { SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import type { IndexSyncStats, SyncMode } from '../modules/index-sync/index-diff.ts';
import type { Discrepancy, IndexSyncProgress } from '../modules/index-sync/index-sync.service.ts';
import type { AppModuleName } from '../app.ts';
import { withApp, type CliContext } from './context.ts';

interface RebuildIndexOptions {
  mode: SyncMode;
  scope: string;
  userId?: string;
  path?: string;
  org?: string;
  dryRun: boolean;
  force: boolean;
  verbosity: '0' | '1' | '2';
  json: boolean;
}

/**
 * The --mode choices. Spelled out here because importing index-diff.ts's SYNC_MODES would load the
 * engine (and the content-type table) just to print --help (issue 12, CLI start-up); the compiler
 * checks the list holds exactly the SyncMode values.
 */
const MODES = ['audit', 'sync', 'clean', 'full'] as const satisfies readonly SyncMode[];
type MissingMode = Exclude<SyncMode, (typeof MODES)[number]>;
const everyModeListed: [MissingMode] extends [never] ? true : MissingMode = true;
void everyModeListed;

/** Errors listed at verbosity 1; `-v 2` lists them all. */
const ERRORS_SHOWN_AT_V1 = 20;

/**
 * `stormvault rebuild-index`: index reconciliation from the command line (issue 4). It calls the same
 * IndexSyncService as the `storage.rebuild_index` task and the admin HTTP endpoint. Exit 0 when it ran
 * (whatever it found), 2 on bad arguments or a refused run (destructive mode without --force, storage
 * missing, another run holding the lock), 1 on failure.
 */
export function registerRebuildIndexCommand(program: Command, ctx: CliContext): void {
  program
    .command('rebuild-index')
    .description('reconcile an index with its storage (storage wins): files, or backups (stored_backups from the git repositories and fs folders); default mode audit only reports')
    .addOption(
      new Option('--mode <mode>', 'audit: report only; sync: add missing and update stale rows; clean: delete orphaned rows (needs --force); full: sync then clean (needs --force)')
        .choices(MODES)
        .default('audit'),
    )
    // Not .choices(): the service names the scopes it knows and why others are not there yet (exit 2).
    .option('--scope <scope>', 'which index: files, backups, or publishing (then --path is <site>[/<folder>])', 'files')
    .option('--user-id <id>', 'files: only this user (default: every user)')
    .option('--path <path>', "files: only this folder or file, relative to the user's root (needs --user-id); publishing: <site>[/<folder>]")
    .option('--org <id>', "backups: only this organization's locations (default: every organization)")
    .option('--dry-run', 'compute exactly what the mode would do and change nothing', false)
    .option('--force', 'allow the destructive modes clean and full', false)
    .addOption(new Option('-v, --verbosity <level>', '0: one line; 1: summary table and errors; 2: also every discrepancy').choices(['0', '1', '2']).default('1'))
    .option('--json', 'print only the stats object as JSON', false)
    .action(async (opts: RebuildIndexOptions) => {
      const colour = ctx.isTty && !ctx.env.NO_COLOR;
      const paint = (code: number, text: string) => (colour ? `\u001b[${code}m${text}\u001b[0m` : text);
      // A bar on a terminal only: none in --json or -v 0 output, none when stderr is a pipe (issue 12).
      const bar = ctx.isTty && !opts.json && opts.verbosity !== '0' ? await progressBar(ctx) : undefined;
      let progressShown = false;
      const onProgress = bar
        ? (p: IndexSyncProgress) => {
            if (!progressShown) bar.start(p.total, p.done, { entries: p.entries.toLocaleString('en-US') });
            else {
              bar.setTotal(p.total);
              bar.update(p.done, { entries: p.entries.toLocaleString('en-US') });
            }
            progressShown = true;
          }
        : undefined;
      const onDiscrepancy =
        opts.verbosity === '2' && !opts.json
          ? (d: Discrepancy) => {
              if (progressShown) ctx.stderr('\r\u001b[2K');
              ctx.stdout(`${d.kind.padEnd(15)} ${d.action.padEnd(14)} ${d.path}${d.fields ? `  (${d.fields.join(', ')})` : ''}\n`);
            }
          : undefined;

      const { hasDrift } = await import('../modules/index-sync/index-diff.ts');
      await withApp(
        ctx,
        async (app) => {
          let stats: IndexSyncStats;
          try {
            stats = await app.indexSync.run(
              { mode: opts.mode, scope: opts.scope, userId: opts.userId, path: opts.path, organizationId: opts.org, dryRun: opts.dryRun, force: opts.force },
              { onProgress, onDiscrepancy },
            );
          } finally {
            if (progressShown) bar!.stop();
          }
          if (opts.json) {
            ctx.stdout(`${JSON.stringify(stats, null, 2)}\n`);
            return;
          }
          const title = `rebuild-index --mode ${opts.mode}${opts.dryRun ? ' (dry run: nothing changed)' : ''}`;
          if (opts.verbosity === '0') {
            ctx.stdout(`${title}: ${oneLine(stats)}\n`);
            return;
          }
          ctx.stdout(`${title}\n${summaryTable(stats, paint, opts.scope)}`);
          const shown = opts.verbosity === '2' ? stats.errors : stats.errors.slice(0, ERRORS_SHOWN_AT_V1);
          if (shown.length > 0) {
            ctx.stdout(`\n${paint(31, 'errors')}:\n`);
            for (const e of shown) ctx.stdout(`  ${e.code.padEnd(20)} ${e.path || '(storage root)'}: ${e.message}\n`);
            if (shown.length < stats.errors.length) ctx.stdout(`  … ${stats.errors.length - shown.length} more (-v 2 lists all, --json prints them)\n`);
          }
          if (stats.deferred > 0) ctx.stdout(`\n${paint(33, deferredNote(stats))}\n`);
          ctx.stdout(`\n${hasDrift(stats) ? paint(33, 'drift found') : paint(32, opts.scope === 'backups' ? 'index and storage agree' : 'index and disk agree')}\n`);
        },
        modulesFor(opts.scope),
      );
    });
}

/**
 * The modules an index of `scope` needs: files is index-sync's own; backups and publishing hand theirs
 * over when built. An unknown scope builds both, so the refusal lists every scope (issue 12: an audit of
 * the files loads neither).
 */
function modulesFor(scope: string): AppModuleName[] {
  if (scope === 'files') return ['indexSync'];
  if (scope === 'backups' || scope === 'publishing') return ['indexSync', scope];
  return ['indexSync', 'backups', 'publishing'];
}

/**
 * cli-progress on the CLI's stderr (a terminal: the caller checked). Redrawn at most 10 times a second.
 * Imported here, only when a bar is shown: loading it costs every other run (and --help) ~40 ms (issue 12).
 */
async function progressBar(ctx: CliContext): Promise<SingleBar> {
  const { Presets, SingleBar } = await import('cli-progress');
  const stream = { isTTY: true, columns: 100, write: (text: string) => (ctx.stderr(text), true), on: () => stream, removeListener: () => stream };
  return new SingleBar(
    {
      stream: stream as unknown as NodeJS.WritableStream,
      format: '[{bar}] users {value}/{total}, {entries} entries',
      barCompleteChar: '#',
      barIncompleteChar: '.',
      barsize: 30,
      hideCursor: null,
      linewrap: null,
      clearOnComplete: true,
      fps: 10,
    },
    Presets.legacy,
  );
}

/** Why an audit right after a copy shows less than was copied (issue 8). */
export function deferredNote(s: IndexSyncStats): string {
  return `${s.deferred} ${s.deferred === 1 ? 'entry was' : 'entries were'} being written during the scan or less than a second before it: left for the next run (run again to include them)`;
}

export function oneLine(s: IndexSyncStats): string {
  return (
    `${s.users_scanned} users, ${s.files_on_disk} files / ${s.dirs_on_disk} folders on disk, ${s.files_in_db} files in index; ` +
    `missing ${s.missing_in_db}, orphaned ${s.orphaned_in_db}, stale ${s.stale_in_db}; ` +
    `created ${s.records_created}, updated ${s.records_updated}, deleted ${s.records_deleted}, skipped ${s.records_skipped}; ` +
    `${s.deferred > 0 ? `deferred ${s.deferred} (written during the scan); ` : ''}${s.errors.length} errors; ${s.duration_ms} ms`
  );
}

function summaryTable(s: IndexSyncStats, paint: (code: number, text: string) => string, scope = 'files'): string {
  const found = (n: number) => (n > 0 ? paint(33, String(n)) : paint(32, String(n)));
  // The stats object is the same for every scope (issue 8); its rows are named for what backups count.
  const backups = scope === 'backups';
  const rows: Array<[string, string]> = [
    [backups ? 'locations scanned' : 'users scanned', String(s.users_scanned)],
    [backups ? 'versions in storage' : 'files on disk', String(s.files_on_disk)],
    ...(backups ? [] : ([['folders on disk', String(s.dirs_on_disk)]] as Array<[string, string]>)),
    [backups ? 'versions in index' : 'files in index', String(s.files_in_db)],
    ['missing in index', found(s.missing_in_db)],
    ['orphaned in index', found(s.orphaned_in_db)],
    ['stale in index', found(s.stale_in_db)],
    ['records created', String(s.records_created)],
    ['records updated', String(s.records_updated)],
    ['records deleted', String(s.records_deleted)],
    ['records skipped (shared)', String(s.records_skipped)],
    ['deferred (being written)', s.deferred > 0 ? paint(33, String(s.deferred)) : '0'],
    ['upload temp files', s.temp_files_removed > 0 ? `${s.temp_files} (${s.temp_files_removed} removed)` : String(s.temp_files)],
    ['errors', s.errors.length > 0 ? paint(31, String(s.errors.length)) : paint(32, '0')],
    ['duration', `${s.duration_ms} ms`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('');
}
