/**
 * bench/sync (issue 5): records-sync throughput through the HTTP API (Fastify inject: routing, JSON
 * validation and serialisation included, no socket).
 *
 *   npx tsx bench/sync.ts                                   # 10 devices × 10,000 tasks, SQLite
 *   npx tsx bench/sync.ts --devices 4 --tasks 2000          # smaller
 *   npx tsx bench/sync.ts --pg-url postgres://root@127.0.0.1:5432/test   # also PostgreSQL (a scratch database is created and dropped)
 *
 * Push: every device pushes its tasks as creates in batches of 500 (one transaction each).
 * Pull: then every device makes a full pull (no since, pages of the maximum limit): every task, its own
 * included (a full pull returns the device's own versions too since issue 12).
 * Baseline, measured in the same run on the same database: the same number of rows written with plain
 * multi-row INSERTs of 500 into a scratch table (push), and read back with keyset-paged SELECTs (pull).
 * The ratio says what the sync machinery (clocks, checksums, history, mutation log, HTTP) costs.
 * Targets on SQLite: push ≥ 5,000 changes/s, pull ≥ 20,000 changes/s.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { parseBenchArgs } from './bench-args.ts';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';

const opts = parseBenchArgs(import.meta.url, {
  devices: { type: 'string', default: '10' },
  tasks: { type: 'string', default: '10000' },
  batch: { type: 'string', default: '500' },
  'pg-url': { type: 'string', default: process.env.STORMVAULT_BENCH_DATABASE_URL },
  'skip-sqlite': { type: 'boolean', default: false },
});
const DEVICES = Number(opts.devices);
const TASKS = Number(opts.tasks);
const BATCH = Number(opts.batch);
const TARGET_PUSH = 5_000;
const TARGET_PULL = 20_000;

interface Figures {
  pushPerSec: number;
  pullPerSec: number;
  basePushPerSec: number;
  basePullPerSec: number;
  pulled: number;
}

async function run(dialect: 'sqlite' | 'postgres', dbUrl: string, dir: string): Promise<Figures> {
  const app = await createApp(
    loadConfig({ STORMVAULT_DATA_DIR: dir, STORMVAULT_DATABASE_URL: dbUrl, STORMVAULT_LOG_LEVEL: 'silent', STORMVAULT_TASKS_BACKEND: 'immediate', STORMVAULT_MIN_FREE_BYTES: '0' }),
  );
  try {
    const user = await app.users.create({ username: `bench-${randomBytes(3).toString('hex')}` });
    const { key } = await app.apiKeys.create(user.id, 'bench');
    const headers = { authorization: `Bearer ${key}` };
    const devices: string[] = [];
    for (let d = 0; d < DEVICES; d++) devices.push((await inject(app, 'POST', '/api/v1/devices', headers, { name: `bench-${d}` })).id);

    // Bodies are built before timing: the client's work is not the server's throughput.
    const bodies: Array<{ device: string; body: unknown }> = [];
    for (let b = 0; b < Math.ceil(TASKS / BATCH); b++) {
      for (const [d, device] of devices.entries()) {
        const changes = [];
        for (let i = b * BATCH; i < Math.min(TASKS, (b + 1) * BATCH); i++) {
          changes.push({
            mutation_id: i + 1,
            entity: 'task',
            op: 'upsert',
            id: randomUUID(),
            vector_clock: { [device]: i + 1 },
            data: { title: `task ${i} of device ${d}`, description: 'benchmark task', priority: 'medium', status: 'todo', tags: ['bench', `d${d}`], custom_fields: { n: i } },
          });
        }
        bodies.push({ device, body: { device_id: device, changes } });
      }
    }
    let t0 = performance.now();
    for (const { body } of bodies) {
      const res = await inject(app, 'POST', '/api/v1/sync/push', headers, body);
      if (res.results.some((r: { status: string }) => r.status !== 'applied')) throw new Error('a bench change was not applied');
    }
    const pushSec = (performance.now() - t0) / 1000;
    const pushed = DEVICES * TASKS;

    t0 = performance.now();
    let pulled = 0;
    for (const device of devices) {
      let cursor: string | undefined;
      for (;;) {
        const q = new URLSearchParams({ device_id: device });
        if (cursor) q.set('since', cursor);
        const page = await inject(app, 'GET', `/api/v1/sync/pull?${q}`, headers);
        pulled += page.changes.length;
        cursor = page.cursor;
        if (!page.has_more) break;
      }
    }
    const pullSec = (performance.now() - t0) / 1000;
    if (pulled !== DEVICES * DEVICES * TASKS) throw new Error(`pulled ${pulled}, expected ${DEVICES * DEVICES * TASKS}`);

    const base = await baseline(app, pushed, pulled);
    return { pushPerSec: pushed / pushSec, pullPerSec: pulled / pullSec, basePushPerSec: base.insertPerSec, basePullPerSec: base.selectPerSec, pulled };
  } finally {
    await app.close();
  }
}

async function inject(app: App, method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: unknown): Promise<any> {
  const res = await app.http.inject({ method, url, headers, payload: payload as object });
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
  return res.json();
}

/** Plain multi-row INSERTs of `rows` rows (500 per transaction) and keyset-paged reads of `reads` rows. */
async function baseline(app: App, rows: number, reads: number): Promise<{ insertPerSec: number; selectPerSec: number }> {
  const db = app.db as any;
  await sql`create table bench_baseline (id text primary key, seq bigint not null, body text not null)`.execute(db);
  const chunks: Array<Array<{ id: string; seq: number; body: string }>> = [];
  for (let i = 0; i < rows; i += BATCH) {
    chunks.push(Array.from({ length: Math.min(BATCH, rows - i) }, (_, j) => ({ id: randomUUID(), seq: i + j + 1, body: JSON.stringify({ title: `task ${i + j}`, tags: ['bench'] }) })));
  }
  let t0 = performance.now();
  for (const chunk of chunks) await db.transaction().execute((tx: any) => tx.insertInto('bench_baseline').values(chunk).execute());
  const insertSec = (performance.now() - t0) / 1000;
  await sql`create index bench_baseline_seq on bench_baseline (seq)`.execute(db);
  t0 = performance.now();
  let read = 0;
  while (read < reads) {
    let after = 0;
    for (;;) {
      const page = await db.selectFrom('bench_baseline').selectAll().where('seq', '>', after).orderBy('seq').limit(1000).execute();
      if (page.length === 0 || read >= reads) break;
      for (const row of page) JSON.parse(row.body);
      read += page.length;
      after = Number(page[page.length - 1].seq);
    }
  }
  const selectSec = (performance.now() - t0) / 1000;
  await sql`drop table bench_baseline`.execute(db);
  return { insertPerSec: rows / insertSec, selectPerSec: read / selectSec };
}

function report(label: string, f: Figures, targets: boolean): void {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const mark = (value: number, target: number) => (targets ? (value >= target ? ` (target ≥ ${n(target)}: met)` : ` (target ≥ ${n(target)}: MISSED)`) : '');
  console.log(`${label}:`);
  console.log(`  push: ${n(f.pushPerSec)} changes/s${mark(f.pushPerSec, TARGET_PUSH)}; baseline plain INSERT ${n(f.basePushPerSec)} rows/s; ratio ${(f.pushPerSec / f.basePushPerSec).toFixed(2)}`);
  console.log(`  pull: ${n(f.pullPerSec)} changes/s${mark(f.pullPerSec, TARGET_PULL)} (${n(f.pulled)} pulled); baseline plain SELECT ${n(f.basePullPerSec)} rows/s; ratio ${(f.pullPerSec / f.basePullPerSec).toFixed(2)}`);
}

console.log(`bench/sync: ${DEVICES} devices × ${TASKS.toLocaleString('en-US')} tasks, push batches of ${BATCH}, then every device pulls everything`);
if (!opts['skip-sqlite']) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sv-bench-sync-'));
  try {
    report('SQLite', await run('sqlite', `sqlite:${path.join(dir, 'bench.db')}`, dir), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (opts['pg-url']) {
  const name = `sv_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: opts['pg-url'] });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(opts['pg-url']);
  url.pathname = `/${name}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'sv-bench-sync-'));
  try {
    report('PostgreSQL', await run('postgres', url.toString(), dir), false);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}
