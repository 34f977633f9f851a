/**
 * bench/index-rebuild (issue 4): how index reconciliation compares with the walk limit, `find`.
 *
 *   npx tsx bench/index-rebuild.ts                       # 1,000,000 files over 1,000 users (SQLite)
 *   npx tsx bench/index-rebuild.ts --files 100000        # smaller tree (same 1,000 users unless --users)
 *   npx tsx bench/index-rebuild.ts --pg-url postgres://root@127.0.0.1:5432/test   # also on PostgreSQL
 *
 * It builds the tree once under --dir (reused by later runs with the same shape; never committed), then in
 * one run times `find <root> -printf '%s %T@ %p\n' > /dev/null` (cache warmed by an untimed find first,
 * and every phase below runs on the same warm cache), and, each in a fresh child process so peak RSS is
 * the reconciliation's own: audit on an empty index, sync on an empty index, audit of the in-sync index,
 * and sync after touching 1% of the files. Each is printed as a ratio to the find time, with peak RSS.
 * Targets (SQLite): audit ≤ 3× find, first sync ≤ 8× find, re-audit ≤ 3× find, RSS ≤ 512 MB at 1M files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parseBenchArgs } from './bench-args.ts';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/logger.ts';
import type { IndexSyncStats, SyncMode } from '../src/modules/index-sync/index-diff.ts';

const opts = parseBenchArgs(import.meta.url, {
  files: { type: 'string', default: '1000000' },
  users: { type: 'string', default: '1000' },
  dir: { type: 'string', default: path.join(tmpdir(), 'stormvault-bench-index') },
  'pg-url': { type: 'string', default: process.env.STORMVAULT_BENCH_DATABASE_URL },
  'skip-sqlite': { type: 'boolean', default: false },
  // Internal: one timed phase in a child process.
  phase: { type: 'string' },
  'db-url': { type: 'string' },
  'data-dir': { type: 'string' },
  storage: { type: 'string' },
});

interface PhaseResult {
  ms: number;
  rssMb: number;
  stats: IndexSyncStats;
}

// Read-only timings (find, audits) are the best of REPEAT runs: this benchmark shares its machine, and the
// minimum is the least disturbed figure. Syncs change the index, so each runs once on a fresh state.
const REPEAT = 3;

const userIdOf = (i: number) => `bench-user-${String(i).padStart(5, '0')}`;

function env(dbUrl: string, dataDir: string, storage: string): Record<string, string> {
  return {
    STORMVAULT_DATA_DIR: dataDir,
    STORMVAULT_DATABASE_URL: dbUrl,
    STORMVAULT_STORAGE_ROOT: storage,
    STORMVAULT_TASKS_BACKEND: 'immediate',
    STORMVAULT_LOG_LEVEL: 'warn',
  };
}

/** Child process: run one reconciliation and report its time and this process's peak RSS. */
async function runPhase(): Promise<void> {
  const config = loadConfig(env(opts['db-url']!, opts['data-dir']!, opts.storage!));
  const app = await createApp(config, { logger: createLogger(config, process.stderr) });
  try {
    const mode = opts.phase as SyncMode;
    const started = performance.now();
    const stats = await app.indexSync.run({ mode });
    const ms = performance.now() - started;
    const result: PhaseResult = { ms, rssMb: process.resourceUsage().maxRSS / 1024, stats };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await app.close();
  }
}

/** Builds `files` files over `users` users: 10 folders × 10 sub-folders per user, files spread over them. */
function buildTree(storage: string, files: number, users: number): void {
  const marker = path.join(storage, '.bench-shape');
  const shape = `${files}/${users}`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === shape) {
    console.log(`reusing the tree in ${storage} (${shape})`);
    return;
  }
  rmSync(storage, { recursive: true, force: true });
  mkdirSync(storage, { recursive: true });
  const started = performance.now();
  const perUser = Math.ceil(files / users);
  let made = 0;
  for (let u = 0; u < users && made < files; u++) {
    const root = path.join(storage, userIdOf(u));
    for (let a = 0; a < 10; a++) for (let b = 0; b < 10; b++) mkdirSync(path.join(root, `dir-${a}`, `sub-${b}`), { recursive: true });
    for (let f = 0; f < perUser && made < files; f++, made++) {
      const leaf = path.join(root, `dir-${f % 10}`, `sub-${Math.floor(f / 10) % 10}`);
      writeFileSync(path.join(leaf, `file-${f}.${['txt', 'jpg', 'pdf', 'bin'][f % 4]}`), 'x'.repeat(f % 200));
    }
    if (u % 100 === 99) process.stdout.write(`\rbuilding: ${made.toLocaleString('en-US')} files`);
  }
  writeFileSync(marker, shape);
  console.log(`\rbuilt ${made.toLocaleString('en-US')} files in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Best of `REPEAT` timed finds, after an untimed one that warms the cache (every phase runs warm too). */
function timeFind(storage: string): number {
  const cmd = `find '${storage}' -printf '%s %T@ %p\\n' > /dev/null`;
  spawnSync('sh', ['-c', cmd]);
  let best = Infinity;
  for (let i = 0; i < REPEAT; i++) {
    const started = performance.now();
    const r = spawnSync('sh', ['-c', cmd]);
    if (r.status !== 0) throw new Error(`find failed: ${r.stderr}`);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

/** Writes back dirty pages (the tree just built or touched) so writeback does not run during a timing. */
function settleDisk(): void {
  spawnSync('sync');
}

/** Sets a new mtime (an hour ago) on 1% of the files, spread over all users: stale rows for sync to fix. */
function touchOnePercent(storage: string, files: number, users: number): number {
  const perUser = Math.ceil(files / users);
  const when = new Date(Date.now() - 3600_000);
  let touched = 0;
  for (let i = 0; i < files; i += 100) {
    const u = Math.floor(i / perUser);
    const f = i % perUser;
    const leaf = path.join(storage, userIdOf(u), `dir-${f % 10}`, `sub-${Math.floor(f / 10) % 10}`);
    utimesSync(path.join(leaf, `file-${f}.${['txt', 'jpg', 'pdf', 'bin'][f % 4]}`), when, when);
    touched++;
  }
  return touched;
}

function bestOf(runs: number, mode: SyncMode, dbUrl: string, dataDir: string, storage: string): PhaseResult & { wallMs: number } {
  let best: (PhaseResult & { wallMs: number }) | undefined;
  for (let i = 0; i < runs; i++) {
    const r = spawnPhase(mode, dbUrl, dataDir, storage);
    if (!best || r.ms < best.ms) best = { ...r, rssMb: Math.max(r.rssMb, best?.rssMb ?? 0) };
    else best.rssMb = Math.max(best.rssMb, r.rssMb);
  }
  return best!;
}

function spawnPhase(mode: SyncMode, dbUrl: string, dataDir: string, storage: string): PhaseResult & { wallMs: number } {
  const self = fileURLToPath(import.meta.url);
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--phase', mode, '--db-url', dbUrl, '--data-dir', dataDir, '--storage', storage], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = performance.now() - started;
  if (r.status !== 0) throw new Error(`phase ${mode} failed (${r.status}): ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return { ...(JSON.parse(line) as PhaseResult), wallMs };
}

async function seedUsers(dbUrl: string, dataDir: string, storage: string, users: number): Promise<void> {
  const config = loadConfig(env(dbUrl, dataDir, storage));
  const app = await createApp(config, { logger: createLogger(config, process.stderr) });
  try {
    const now = new Date().toISOString();
    const rows = Array.from({ length: users }, (_, i) => ({
      id: userIdOf(i),
      username: userIdOf(i),
      password_hash: null,
      is_admin: 0,
      quota_bytes: null,
      created_at: now,
      updated_at: now,
    }));
    for (let i = 0; i < rows.length; i += 500) await app.db.insertInto('users').values(rows.slice(i, i + 500)).execute();
  } finally {
    await app.close();
  }
}

async function benchOne(label: string, dbUrl: string, dataDir: string, storage: string, files: number, users: number, findMs: number): Promise<void> {
  await seedUsers(dbUrl, dataDir, storage, users);
  // Anything modified within the last second counts as "upload in flight": let the fresh tree settle.
  settleDisk();
  await new Promise((r) => setTimeout(r, 1100));
  const phases: Array<{ name: string; target: number | null; result: PhaseResult & { wallMs: number } }> = [];
  phases.push({ name: `audit, empty index (best of ${REPEAT})`, target: 3, result: bestOf(REPEAT, 'audit', dbUrl, dataDir, storage) });
  phases.push({ name: 'sync, empty index', target: 8, result: spawnPhase('sync', dbUrl, dataDir, storage) });
  settleDisk();
  phases.push({ name: `audit, in sync (best of ${REPEAT})`, target: 3, result: bestOf(REPEAT, 'audit', dbUrl, dataDir, storage) });
  const touched = touchOnePercent(storage, files, users);
  settleDisk();
  phases.push({ name: `sync after touching 1% (${touched})`, target: null, result: spawnPhase('sync', dbUrl, dataDir, storage) });

  console.log(`\n${label}: find ${findMs.toFixed(0)} ms (best of ${REPEAT}, warm cache)`);
  console.log(`${'phase'.padEnd(34)}      ms   × find  process wall ms  peak RSS MB  result`);
  for (const p of phases) {
    const ratio = p.result.ms / findMs;
    const verdict = p.target === null ? '' : ratio <= p.target ? `(target ≤ ${p.target}×: met)` : `(target ≤ ${p.target}×: MISSED)`;
    const s = p.result.stats;
    const summary = `files ${s.files_on_disk}, in db ${s.files_in_db}, missing ${s.missing_in_db}, stale ${s.stale_in_db}, created ${s.records_created}, updated ${s.records_updated}, errors ${s.errors.length}`;
    console.log(
      `${p.name.padEnd(34)} ${p.result.ms.toFixed(0).padStart(7)} ${ratio.toFixed(2).padStart(7)}× ${p.result.wallMs.toFixed(0).padStart(16)} ${p.result.rssMb.toFixed(0).padStart(12)}  ${verdict} ${summary}`,
    );
  }
  const peak = Math.max(...phases.map((p) => p.result.rssMb));
  console.log(`peak RSS ${peak.toFixed(0)} MB (target ≤ 512 MB at 1M files: ${peak <= 512 ? 'met' : 'MISSED'})`);
}

async function freshPgDatabase(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `sv_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

async function main(): Promise<void> {
  if (opts.phase) return runPhase();
  const files = Number(opts.files);
  const users = Number(opts.users);
  if (!Number.isSafeInteger(files) || files < 1 || !Number.isSafeInteger(users) || users < 1) throw new Error('--files and --users must be whole numbers ≥ 1');
  const storage = path.join(opts.dir!, 'storage');
  console.log(`index-rebuild bench: ${files.toLocaleString('en-US')} files over ${users} users in ${storage}`);
  console.log(`node ${process.version}, find: ${execFileSync('find', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`);
  buildTree(storage, files, users);
  settleDisk();

  if (!opts['skip-sqlite']) {
    const dataDir = path.join(opts.dir!, `data-sqlite-${randomBytes(3).toString('hex')}`);
    try {
      await benchOne('SQLite', `sqlite:${path.join(dataDir, 'bench.db')}`, dataDir, storage, files, users, timeFind(storage));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  if (opts['pg-url']) {
    const db = await freshPgDatabase(opts['pg-url']);
    const dataDir = path.join(opts.dir!, `data-pg-${randomBytes(3).toString('hex')}`);
    try {
      await benchOne('PostgreSQL', db.url, dataDir, storage, files, users, timeFind(storage));
    } finally {
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  } else {
    console.log('\nPostgreSQL: skipped (pass --pg-url or STORMVAULT_BENCH_DATABASE_URL)');
  }
}

await main();
