/**
 * bench:backups — network-device configurations pushed through the whole backups pipeline (issue 9).
 *
 *   npx tsx bench/backups.ts [--devices 2000] [--versions 5] [--size 30000] [--redis redis://…] [--only database,redis]
 *                            [--history 1000] [--samples 200]
 *
 * Pipeline: POST /network-devices/{id}/backups → device:results → storage.store.git (in-process worker)
 * → git commit → storage:results → stored_backups, for devices × versions configurations of ~size bytes,
 * all devices in one git location; versions/s = versions / wall time until the last row is indexed.
 * Baseline, measured in the same run on the same contents: raw git plumbing in a loop (hash-object -w,
 * update-index --cacheinfo on one index, write-tree, commit-tree, update-ref) — no HTTP, no database,
 * no streams. Printed as a ratio; target pipeline >= 0.5x raw git.
 * Reading: history page of a device with --history versions (index rows) p99 <= 20 ms; diff of two
 * ~30 KB versions p99 <= 50 ms; server RSS <= 200 MB throughout (sampled every 100 ms).
 * Redis (tasks backend + Redis Streams) is used with --redis or STORMVAULT_TEST_REDIS_URL.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/logger.ts';
import { parseBenchArgs } from './bench-args.ts';

const flags = parseBenchArgs(import.meta.url, {
  devices: { type: 'string', default: '2000' },
  versions: { type: 'string', default: '5' },
  size: { type: 'string', default: '30000' },
  redis: { type: 'string' },
  only: { type: 'string' },
  history: { type: 'string', default: '1000' },
  samples: { type: 'string', default: '200' },
});
const DEVICES = Number(flags.devices);
const VERSIONS = Number(flags.versions);
const SIZE = Number(flags.size);
const REDIS = flags.redis ?? process.env.STORMVAULT_TEST_REDIS_URL;
const only = flags.only?.split(',');

/** ~SIZE bytes of config-looking lines, different per device and version. */
function config(device: number, version: number): string {
  const lines = [`hostname dev${device}`, `! version ${version}`];
  let size = 40;
  for (let i = 0; size < SIZE; i++) {
    const line = `interface Gi0/${i}\n description link ${device}-${i}${i % 50 === version % 50 ? ` v${version}` : ''}\n ip address 10.${device % 256}.${i % 256}.1 255.255.255.0`;
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
sampler.unref();

function rawGitBaseline(): number {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const env = { ...process.env, GIT_DIR: dir, GIT_INDEX_FILE: path.join(dir, 'bench-index'), GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };
  execFileSync('git', ['init', '--bare', '-q', dir]);
  const git = (args: string[], input?: string) => execFileSync('git', args, { env, input }).toString().trim();
  const start = performance.now();
  let head: string | null = null;
  for (let v = 0; v < VERSIONS; v++) {
    for (let d = 0; d < DEVICES; d++) {
      const blob = git(['hash-object', '-w', '--stdin'], config(d, v));
      git(['update-index', '--add', '--cacheinfo', `100644,${blob},g${d % 10}/dev${d}`]);
      const tree = git(['write-tree']);
      const commit: string = git(['commit-tree', tree, ...(head ? ['-p', head] : []), '-m', `update g${d % 10}/dev${d}`]);
      git(['update-ref', 'refs/heads/main', commit]);
      head = commit;
    }
  }
  const secs = (performance.now() - start) / 1000;
  execFileSync('rm', ['-rf', dir]);
  return (DEVICES * VERSIONS) / secs;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function run(backend: 'database' | 'redis') {
  const dir = await mkdtemp(path.join(tmpdir(), 'sv-bench-backups-'));
  const prefix = `svbench-${randomUUID().slice(0, 8)}`;
  const env: Record<string, string> = {
    STORMVAULT_DATA_DIR: dir,
    STORMVAULT_LOG_LEVEL: 'warn',
    STORMVAULT_MIN_FREE_BYTES: '0',
    STORMVAULT_INDEX_AUDIT_ON_START: 'false',
    STORMVAULT_TASKS_BACKEND: backend,
    STORMVAULT_TASKS_POLL_MS: '20',
    STORMVAULT_TASKS_CONCURRENCY: '4',
    ...(backend === 'redis' ? { STORMVAULT_REDIS_URL: REDIS!, STORMVAULT_REDIS_PREFIX: prefix } : {}),
  };
  const cfg = loadConfig(env);
  const app: App = await createApp(cfg, { logger: createLogger(cfg, process.stderr) });
  try {
    const admin = await app.users.create({ username: 'bench', isAdmin: true });
    const { key } = await app.apiKeys.create(admin.id, 'bench');
    const headers = { authorization: `Bearer ${key}` };
    const call = (method: string, url: string, payload?: unknown, h: Record<string, string> = {}) =>
      app.http.inject({ method: method as 'GET', url, headers: { ...headers, ...h }, payload: payload as string });
    const loc = (await call('POST', '/api/v1/backup-locations', { name: 'bench', type: 'git', config: { folder: 'bench' } })).json();
    const ids: string[] = [];
    for (let d = 0; d < DEVICES; d++) {
      ids.push((await call('POST', '/api/v1/network-devices', { name: `dev${d}`, address: `10.0.${d >> 8}.${d & 255}`, group: `g${d % 10}`, backup_location_id: loc.id })).json().id);
    }
    const worker = await app.tasks.startWorker({ queues: ['storage.git'] });
    const c = app.backups.consumers();
    c.deviceResults.start();
    c.storageResults.start();

    const start = performance.now();
    for (let v = 0; v < VERSIONS; v++) {
      for (let d = 0; d < DEVICES; d += 20) {
        await Promise.all(ids.slice(d, d + 20).map((id, i) => call('POST', `/api/v1/network-devices/${id}/backups`, config(d + i, v), { 'content-type': 'text/plain' })));
      }
    }
    const expected = DEVICES * VERSIONS;
    const count = async () => Number((await app.db.withTables<{ stored_backups: { id: string } }>().selectFrom('stored_backups').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    // A bench may poll: it measures wall time until the last version is indexed.
    while ((await count()) < expected) await new Promise((r) => setTimeout(r, 100));
    const rate = expected / ((performance.now() - start) / 1000);
    await worker.stop();

    // History of one device with many versions: index rows only (the history API reads nothing else).
    type T = { stored_backups: { id: string; organization_id: string; network_device_id: string; location_id: string; storage_ref: string; sha256: string; size: number; collected_at: string; stored_at: string; task_identifier: string }; backup_locations: { id: string; organization_id: string } };
    const db = app.db.withTables<T>();
    const dev0 = ids[0]!;
    const orgId = (await db.selectFrom('backup_locations').select('organization_id').where('id', '=', loc.id).executeTakeFirstOrThrow()).organization_id;
    const extra = Array.from({ length: Number(flags.history) }, (_, i) => ({
      id: randomUUID(),
      organization_id: orgId,
      network_device_id: dev0,
      location_id: loc.id,
      storage_ref: `main:g0/dev0@${randomBytes(20).toString('hex')}`,
      sha256: randomBytes(32).toString('hex'),
      size: SIZE,
      collected_at: new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString(),
      stored_at: new Date().toISOString(),
      task_identifier: randomUUID(),
    }));
    for (let i = 0; i < extra.length; i += 500) await db.insertInto('stored_backups').values(extra.slice(i, i + 500)).execute();
    const historyMs: number[] = [];
    for (let i = 0; i < Number(flags.samples); i++) {
      const t0 = performance.now();
      const r = await call('GET', `/api/v1/network-devices/${dev0}/backups?limit=50`);
      historyMs.push(performance.now() - t0);
      if (r.statusCode !== 200) throw new Error(`history: ${r.statusCode}`);
    }
    await app.tasks.startWorker({ queues: ['storage.git'] });
    const versions = (await call('GET', `/api/v1/network-devices/${dev0}/backups?limit=2`)).json().stored_backups;
    const diffMs: number[] = [];
    for (let i = 0; i < Math.min(50, Number(flags.samples)); i++) {
      const t0 = performance.now();
      const r = await call('GET', `/api/v1/stored-backups/${versions[0].id}/diff?against=${versions[1].id}`);
      diffMs.push(performance.now() - t0);
      if (r.statusCode !== 200) throw new Error(`diff: ${r.statusCode} ${r.body}`);
    }
    return { rate, historyP99: percentile(historyMs, 99), diffP99: percentile(diffMs, 99) };
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
    if (backend === 'redis') {
      const r = new Redis(REDIS!);
      const keys = await r.keys(`${prefix}:*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    }
  }
}

console.log(`bench:backups — ${DEVICES} devices × ${VERSIONS} versions of ~${SIZE} bytes, one git location`);
const baseline = rawGitBaseline();
console.log(`raw git plumbing loop (baseline): ${baseline.toFixed(1)} versions/s`);
for (const backend of ['database', 'redis'] as const) {
  if (only && !only.includes(backend)) continue;
  if (backend === 'redis' && !REDIS) {
    console.log('redis: skipped (no --redis / STORMVAULT_TEST_REDIS_URL)');
    continue;
  }
  const r = await run(backend);
  console.log(
    `${backend.padEnd(8)} pipeline: ${r.rate.toFixed(1)} versions/s = ${(r.rate / baseline).toFixed(2)}× raw git (target ≥ 0.5×); ` +
      `history p99 ${r.historyP99.toFixed(1)} ms (≤ 20); diff p99 ${r.diffP99.toFixed(1)} ms (≤ 50)`,
  );
}
console.log(`peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MB (≤ 200; the bench process is the server)`);
