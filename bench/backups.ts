/**
 * bench:backups — network-device configurations pushed through the whole backups pipeline (issue 9).
 *
 *   npx tsx bench/backups.ts [--devices 2000] [--versions 5] [--size 30000] [--redis redis://…] [--only database,redis]
 *                            [--history 1000] [--samples 200] [--skip-baseline] [--memory-breakdown]
 *                            [--server-node-flags "--flag …"] [--baseline-versions N]
 *
 * The server is a real process started as `npm start` starts it (dist/ bundle, package.json's node flags,
 * `serve` with its in-process storage worker and both consumers), so the RSS printed is the server's own
 * (/proc/<pid>/status, sampled every 100 ms, and its VmHWM peak), not the bench's.
 * Pipeline: HTTP POST /network-devices/{id}/backups → device:results → storage.store.git → git commit →
 * storage:results → stored_backups, for devices × versions configurations of ~size bytes, all devices in
 * one git location, 20 pushes in flight; versions/s = versions / wall time until the last row is indexed.
 * Baseline, in the same run on the same contents: raw git plumbing in a loop (hash-object -w,
 * update-index --cacheinfo on one index, write-tree, commit-tree, update-ref) — no HTTP, no database, no
 * streams. Target pipeline ≥ 0.5× raw git.
 * Reading, over HTTP: history page (50) of a device with --history versions p99 ≤ 20 ms; diff of two
 * ~30 KB versions p99 ≤ 50 ms. Redis (tasks backend + Redis Streams) with --redis or STORMVAULT_TEST_REDIS_URL.
 * CPU per version (server + the git processes it ran, against the baseline's git processes) is printed next
 * to the rates: on the shared machine it moves much less with the load than wall-clock rates do.
 * --memory-breakdown: the server also loads bench/memory-probe.cjs, and the bench prints its heap (per V8
 * space), external and arrayBuffers at its highest RSS. --server-node-flags: extra node flags for the server
 * after npm start's (to compare GC settings without editing package.json).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { parseBenchArgs } from './bench-args.ts';
import { freePort, npmStartNodeFlags, rssOf } from './server-bench.ts';

const flags = parseBenchArgs(import.meta.url, {
  devices: { type: 'string', default: '2000' },
  versions: { type: 'string', default: '5' },
  size: { type: 'string', default: '30000' },
  redis: { type: 'string' },
  only: { type: 'string' },
  history: { type: 'string', default: '1000' },
  samples: { type: 'string', default: '200' },
  'skip-baseline': { type: 'boolean', default: false },
  'memory-breakdown': { type: 'boolean', default: false },
  'server-node-flags': { type: 'string' },
  'baseline-versions': { type: 'string' },
});
const DEVICES = Number(flags.devices);
const VERSIONS = Number(flags.versions);
/** Versions per device the raw-git baseline commits (default all): fewer to time it on a busy machine. */
const BASELINE_VERSIONS = Number(flags['baseline-versions'] ?? flags.versions);
const SIZE = Number(flags.size);
const REDIS = flags.redis ?? process.env.STORMVAULT_TEST_REDIS_URL;
const only = flags.only?.split(',');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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

/**
 * CPU seconds of a process and of its children it has waited for (git plumbing), from /proc/<pid>/stat
 * (utime, stime, cutime, cstime; clock ticks of 10 ms). On the shared machine wall-clock rates follow the
 * load; CPU per version compares the pipeline with raw git whatever else runs.
 */
function cpuWithChildren(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

function rawGitBaseline(): { rate: number; cpuMsPerVersion: number } {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const env = { ...process.env, GIT_DIR: dir, GIT_INDEX_FILE: path.join(dir, 'bench-index'), GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };
  execFileSync('git', ['init', '--bare', '-q', dir]);
  const git = (args: string[], input?: string) => execFileSync('git', args, { env, input }).toString().trim();
  const start = performance.now();
  const cpu0 = cpuWithChildren('self');
  let head: string | null = null;
  for (let v = 0; v < BASELINE_VERSIONS; v++) {
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
  // The bench's own CPU for generating contents is in it too: slightly in the baseline's disfavour.
  const cpuMsPerVersion = ((cpuWithChildren('self') - cpu0) * 1000) / (DEVICES * BASELINE_VERSIONS);
  execFileSync('rm', ['-rf', dir]);
  return { rate: (DEVICES * BASELINE_VERSIONS) / secs, cpuMsPerVersion };
}

/**
 * --memory-breakdown: the server's own process.memoryUsage() and V8 heap spaces (bench/memory-probe.cjs,
 * every 250 ms) at its highest RSS sample, and each figure's maximum, in MB.
 */
function memoryBreakdown(file: string): string {
  type Sample = { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; malloced: number; spaces: Record<string, number> };
  const samples: Sample[] = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  if (samples.length === 0) return 'no samples';
  const top = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
  const max = (k: keyof Omit<Sample, 'spaces'>) => Math.max(...samples.map((s) => s[k]));
  const spaces = Object.entries(top.spaces).filter(([, v]) => v > 0).map(([k, v]) => `${k.replace(/_space$/, '')} ${v}`).join(', ');
  return (
    `at max RSS ${top.rss}: heap ${top.heapUsed} used / ${top.heapTotal} total (${spaces}), external ${top.external} (arrayBuffers ${top.arrayBuffers}), malloced ${top.malloced}, ` +
    `rest (code, stacks, native libs, allocator) ${top.rss - top.heapTotal - top.external}; maxima: heapTotal ${max('heapTotal')}, heapUsed ${max('heapUsed')}, external ${max('external')}, arrayBuffers ${max('arrayBuffers')}`
  );
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function startServer(env: Record<string, string>, port: number, probeOut?: string): Promise<{ child: ChildProcess; apiKey: string }> {
  const probe = probeOut ? ['--require', path.join(ROOT, 'bench/memory-probe.cjs')] : [];
  const extra = flags['server-node-flags']?.split(/\s+/).filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...npmStartNodeFlags(), ...extra, ...probe, path.join(ROOT, 'bin/stormvault.js'), 'serve'], {
    env: { PATH: process.env.PATH, STORMVAULT_PORT: String(port), STORMVAULT_HOST: '127.0.0.1', ...env, ...(probeOut ? { SV_PROBE_OUT: probeOut } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const apiKey = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /API key:\s+(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before printing an API key:\n${out}`)));
  });
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, apiKey };
}

async function run(backend: 'database' | 'redis') {
  const dir = await mkdtemp(path.join(tmpdir(), 'sv-bench-backups-'));
  const prefix = `svbench-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const probeOut = flags['memory-breakdown'] ? path.join(dir, 'memory.jsonl') : undefined;
  const { child, apiKey } = await startServer(
    {
      STORMVAULT_DATA_DIR: dir,
      STORMVAULT_LOG_LEVEL: 'warn',
      STORMVAULT_MIN_FREE_BYTES: '0',
      STORMVAULT_INDEX_AUDIT_ON_START: 'false',
      STORMVAULT_TASKS_BACKEND: backend,
      STORMVAULT_TASKS_POLL_MS: '20',
      STORMVAULT_TASKS_CONCURRENCY: '4',
      ...(backend === 'redis' ? { STORMVAULT_REDIS_URL: REDIS!, STORMVAULT_REDIS_PREFIX: prefix } : {}),
    },
    port,
    probeOut,
  );
  const pid = child.pid!;
  let maxRss = 0;
  const sampler = setInterval(() => {
    try {
      maxRss = Math.max(maxRss, rssOf(pid).rssMb);
    } catch {
      // exited
    }
  }, 100);
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${apiKey}` };
  const call = async (method: string, url: string, body?: unknown, text = false) => {
    const r = await fetch(base + url, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': text ? 'text/plain' : 'application/json' }) },
      body: body === undefined ? undefined : text ? (body as string) : JSON.stringify(body),
    });
    const payload = await r.text();
    if (r.status >= 400) throw new Error(`${method} ${url}: ${r.status} ${payload.slice(0, 300)}`);
    return payload;
  };
  const db = new Database(path.join(dir, 'stormvault.db'), { timeout: 10_000 });
  try {
    const loc = JSON.parse(await call('POST', '/api/v1/backup-locations', { name: 'bench', type: 'git', config: { folder: 'bench' } }));
    const ids: string[] = [];
    for (let d = 0; d < DEVICES; d += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, DEVICES - d) }, (_, i) =>
          call('POST', '/api/v1/network-devices', { name: `dev${d + i}`, address: `10.0.${(d + i) >> 8}.${(d + i) & 255}`, group: `g${(d + i) % 10}`, backup_location_id: loc.id }),
        ),
      );
      ids.push(...batch.map((b) => JSON.parse(b).id as string));
    }
    const idle = rssOf(pid).rssMb;

    const start = performance.now();
    const cpu0 = cpuWithChildren(pid);
    for (let v = 0; v < VERSIONS; v++) {
      for (let d = 0; d < DEVICES; d += 20) {
        await Promise.all(ids.slice(d, d + 20).map((id, i) => call('POST', `/api/v1/network-devices/${id}/backups`, config(d + i, v), true)));
      }
    }
    const expected = DEVICES * VERSIONS;
    const count = () => (db.prepare('SELECT count(*) AS n FROM stored_backups').get() as { n: number }).n;
    // A bench may poll: it measures wall time until the last version is indexed.
    while (count() < expected) await new Promise((r) => setTimeout(r, 100));
    const rate = expected / ((performance.now() - start) / 1000);
    // The server and the git processes it ran (Redis' own CPU, with the redis backend, is not in it).
    const cpuMsPerVersion = ((cpuWithChildren(pid) - cpu0) * 1000) / expected;
    const pipelineRss = maxRss;

    // History of one device with many versions: index rows (the history API reads nothing else).
    const orgId = (db.prepare('SELECT organization_id FROM backup_locations WHERE id = ?').get(loc.id) as { organization_id: string }).organization_id;
    const insert = db.prepare(
      'INSERT INTO stored_backups (id, organization_id, network_device_id, location_id, storage_ref, sha256, size, collected_at, stored_at, task_identifier) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (let i = 0; i < Number(flags.history); i++) {
        insert.run(randomUUID(), orgId, ids[0], loc.id, `main:g0/dev0@${randomBytes(20).toString('hex')}`, randomBytes(32).toString('hex'), SIZE, new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString(), new Date().toISOString(), randomUUID());
      }
    })();
    const historyMs: number[] = [];
    for (let i = 0; i < Number(flags.samples); i++) {
      const t0 = performance.now();
      await call('GET', `/api/v1/network-devices/${ids[0]}/backups?limit=50`);
      historyMs.push(performance.now() - t0);
    }
    // A diff of two real ~30 KB versions of one device (read from git, diffed in the server).
    const diffDevice = ids[1] ?? ids[0]!;
    if (VERSIONS < 2) {
      const before = count();
      await call('POST', `/api/v1/network-devices/${diffDevice}/backups`, config(1, VERSIONS), true);
      while (count() <= before) await new Promise((r) => setTimeout(r, 50));
    }
    const versions = JSON.parse(await call('GET', `/api/v1/network-devices/${diffDevice}/backups?limit=2`)).stored_backups;
    const diffMs: number[] = [];
    for (let i = 0; i < Number(flags.samples); i++) {
      const t0 = performance.now();
      await call('GET', `/api/v1/stored-backups/${versions[0].id}/diff?against=${versions[1].id}`);
      diffMs.push(performance.now() - t0);
    }
    return { rate, cpuMsPerVersion, historyP99: percentile(historyMs, 99), historyP50: percentile(historyMs, 50), diffP99: percentile(diffMs, 99), diffP50: percentile(diffMs, 50), idle, pipelineRss, maxRss, peak: rssOf(pid).peakMb };
  } finally {
    clearInterval(sampler);
    db.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    if (probeOut) console.log(`${backend} memory breakdown: ${memoryBreakdown(probeOut)}`);
    await rm(dir, { recursive: true, force: true });
    if (backend === 'redis') {
      const r = new Redis(REDIS!);
      const keys = await r.keys(`${prefix}:*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    }
  }
}

const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('node scripts/build.mjs failed');
console.log(`bench:backups — ${DEVICES} devices × ${VERSIONS} versions of ~${SIZE} bytes, one git location; load ${execFileSync('uptime').toString().trim().replace(/.*load average: /, '')}`);
const { rate: baseline, cpuMsPerVersion: baselineCpu } = flags['skip-baseline'] ? { rate: NaN, cpuMsPerVersion: NaN } : rawGitBaseline();
console.log(`raw git plumbing loop (baseline, ${DEVICES} × ${BASELINE_VERSIONS}): ${baseline.toFixed(1)} versions/s, ${baselineCpu.toFixed(1)} ms CPU per version; load ${execFileSync('uptime').toString().trim().replace(/.*load average: /, '')}`);
for (const backend of ['database', 'redis'] as const) {
  if (only && !only.includes(backend)) continue;
  if (backend === 'redis' && !REDIS) {
    console.log('redis: skipped (no --redis / STORMVAULT_TEST_REDIS_URL)');
    continue;
  }
  const r = await run(backend);
  console.log(
    `${backend.padEnd(8)} pipeline: ${r.rate.toFixed(1)} versions/s = ${(r.rate / baseline).toFixed(2)}× raw git (target ≥ 0.5×), ` +
      `${r.cpuMsPerVersion.toFixed(1)} ms server+git CPU per version = ${(baselineCpu / r.cpuMsPerVersion).toFixed(2)}× raw git's efficiency; ` +
      `history p99 ${r.historyP99.toFixed(1)} ms (p50 ${r.historyP50.toFixed(1)}; ≤ 20); diff p99 ${r.diffP99.toFixed(1)} ms (p50 ${r.diffP50.toFixed(1)}; ≤ 50); ` +
      `server RSS idle ${r.idle.toFixed(0)} MB, max ${r.pipelineRss.toFixed(0)} MB pushing, ${r.maxRss.toFixed(0)} MB overall, VmHWM ${r.peak.toFixed(0)} MB (≤ 200); load ${execFileSync('uptime').toString().trim().replace(/.*load average: /, '')}`,
  );
}
