/**
 * WebDAV benchmark (issue 13): Stormvault's `/dav/` next to `rclone serve webdav` (a Go peer), same machine,
 * same file, same client (curl), in the same run.
 *
 *   npx tsx bench/webdav.ts [--size 1G] [--entries 10000] [--propfind-runs 5] [--keep]
 *
 * 1. PUT (curl -T) and GET of one --size file (random bytes, default 1 GiB; --size 256M for a quick run)
 *    through a real `stormvault serve` child (compiled dist/ with npm start's node flags, Basic auth with
 *    username + API key) and through `rclone serve webdav` on a plain folder on the same disk. Each
 *    contender starts with the source in the page cache and no dirty pages pending. Stormvault's PUT
 *    fsyncs before answering (201 = durable); rclone serve's does not (it is timed as it is).
 *    The server's peak RSS during each transfer is VmHWM from /proc (reset before each phase), so no
 *    sampling can miss a spike; rclone's is shown for context.
 * 2. PROPFIND Depth 1 (allprop) of a folder with --entries files, created through /dav/ with parallel
 *    curl PUTs (the index fills as a user's client would fill it); median and max of --propfind-runs,
 *    next to rclone serve on a folder with the same number of entries, with each server's CPU seconds
 *    per PROPFIND (from /proc: what wall time means on a loaded machine depends on the load).
 * Targets: upload and download >= 0.8x rclone serve's rate; PROPFIND of 10,000 entries <= 1 s (max);
 * server peak RSS < 150 MB during the transfers. Exit code 1 when a target is missed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, curl, freePort, makeSourceFile, MiB, npmStartNodeFlags, parseSize as parseSizeBytes, resetPeak, rssOf } from './server-bench.ts';
import { parseBenchArgs } from './bench-args.ts';

const TARGETS = { ratio: 0.8, propfindS: 1, rssMb: 150 };
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const opts = parseBenchArgs(import.meta.url, {
  size: { type: 'string', default: '1G' },
  entries: { type: 'string', default: '10000' },
  'propfind-runs': { type: 'string', default: '5' },
  keep: { type: 'boolean', default: false },
});

function parseSize(v: string): number {
  try {
    return parseSizeBytes(v);
  } catch (err) {
    return usage((err as Error).message);
  }
}
function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`--${name}: expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}
function usage(msg: string): never {
  console.error(`webdav.ts: ${msg} (see --help)`);
  process.exit(2);
}
const args = {
  size: parseSize(opts.size!),
  entries: positiveInt('entries', opts.entries!),
  propfindRuns: positiveInt('propfind-runs', opts['propfind-runs']!),
  keep: opts.keep!,
};

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
}

/** Resets VmHWM to the current RSS (Linux clear_refs "5"), so each phase's peak is measured on its own. */
/** Builds dist/ as `npm start` does (a no-op when up to date), so the server runs what `npm start` runs. */
function buildLikeNpmStart(): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('node scripts/build.mjs failed');
}
/** The node flags `npm start` gives the server (package.json is the one place they are written). */
async function waitHttp(port: number, urlPath: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: urlPath }, (res) => { res.resume(); resolve(res.statusCode! < 500); }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing answered on port ${port}`);
}

async function startStormvault(dataDir: string, port: number): Promise<{ child: ChildProcess; auth: string }> {
  const nodeFlags = npmStartNodeFlags();
  console.log(`stormvault: compiled dist/, node flags from npm start: ${nodeFlags.join(' ') || '(none)'}`);
  const child = spawn(process.execPath, [...nodeFlags, path.join(ROOT, 'bin/stormvault.js'), 'serve', '--no-worker'], {
    env: {
      PATH: process.env.PATH,
      STORMVAULT_DATA_DIR: dataDir,
      STORMVAULT_PORT: String(port),
      STORMVAULT_HOST: '127.0.0.1',
      STORMVAULT_LOG_LEVEL: 'warn',
      STORMVAULT_MIN_FREE_BYTES: '0',
      STORMVAULT_TASKS_BACKEND: 'immediate',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const auth = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const user = /username:\s+(\S+)/.exec(out);
      const key = /API key:\s+(\S+)/.exec(out);
      if (user && key) resolve(`${user[1]}:${key[1]}`);
    });
    child.once('exit', (code) => reject(new Error(`stormvault exited with ${code} before printing credentials:\n${out}`)));
  });
  await waitHttp(port, '/health');
  return { child, auth };
}

async function startRclone(dir: string, port: number): Promise<ChildProcess> {
  const v = spawnSync('rclone', ['version'], { encoding: 'utf8' });
  if (v.status !== 0) throw new Error('rclone is not installed (apt-get install rclone)');
  console.log(`peer: ${v.stdout.split('\n')[0]} serve webdav (Go), default options`);
  const child = spawn('rclone', ['serve', 'webdav', dir, '--addr', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitHttp(port, '/');
  return child;
}

// The client is curl, not node: a node client would compete with the servers for the same cores.
interface Target { name: string; base: string; auth: string[]; pid: number }

function put(t: Target, file: string, urlPath: string): number {
  const { seconds, out } = curl([...t.auth, '-T', file, '-o', '/dev/null', '-w', '%{http_code}', `${t.base}${urlPath}`]);
  if (out !== '201' && out !== '204' && out !== '200') throw new Error(`${t.name} PUT answered ${out}`);
  return seconds;
}
function get(t: Target, urlPath: string, size: number): number {
  const { seconds, out } = curl([...t.auth, '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${t.base}${urlPath}`]);
  if (out !== `200 ${size}`) throw new Error(`${t.name} GET answered ${out}, expected 200 ${size}`);
  return seconds;
}
const PROPFIND_BODY = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>';
// Context: the same listing without getetag (and without lockdiscovery), to show what per-entry ETags cost.
const PROPFIND_NO_ETAG = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:getlastmodified/><D:resourcetype/></D:prop></D:propfind>';
/** Wall seconds of one PROPFIND; its server's CPU seconds are added to `cpu` when given. */
function propfind(t: Target, urlPath: string, entries: number, body = PROPFIND_BODY, cpu?: number[]): number {
  const cpu0 = cpuSecondsOf(t.pid);
  const { seconds, out } = curl([...t.auth, '-X', 'PROPFIND', '-H', 'Depth: 1', '-H', 'Content-Type: application/xml', '--data-binary', body, `${t.base}${urlPath}`]);
  const n = (out.match(/<(?:\w+:)?response[\s>]/g) ?? []).length;
  if (n !== entries + 1) throw new Error(`${t.name} PROPFIND gave ${n} responses, expected ${entries + 1}: ${out.slice(0, 300)}`);
  cpu?.push(cpuSecondsOf(t.pid) - cpu0);
  return seconds;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (s: number) => `${(args.size / MiB / s).toFixed(0).padStart(5)} MiB/s`;

async function main() {
  const dir = await mkdtemp(path.join(tmpdir(), 'sv-bench-webdav-'));
  const src = path.join(dir, 'source.bin');
  const children: ChildProcess[] = [];
  try {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`webdav bench: ${(args.size / MiB).toFixed(0)} MiB file, PROPFIND of ${args.entries} entries x${args.propfindRuns}, load average ${load}, in ${dir}`);
    await makeSourceFile(src, args.size);
    buildLikeNpmStart();
    const [svPort, rcPort] = [await freePort(), await freePort()];
    const sv = await startStormvault(path.join(dir, 'data'), svPort);
    children.push(sv.child);
    const rcDir = path.join(dir, 'rclone');
    await mkdir(rcDir);
    // rclone's copy of the PROPFIND folder is written before it starts: its VFS caches directory listings.
    await mkdir(path.join(rcDir, 'many'));
    for (let i = 0; i < args.entries; i++) await writeFile(path.join(rcDir, 'many', `f${String(i).padStart(5, '0')}.txt`), 'x'.repeat(100));
    const rc = await startRclone(rcDir, rcPort);
    children.push(rc);
    const stormvault: Target = { name: 'stormvault', base: `http://127.0.0.1:${svPort}/dav`, auth: ['-u', sv.auth], pid: sv.child.pid! };
    const rclone: Target = { name: 'rclone', base: `http://127.0.0.1:${rcPort}`, auth: [], pid: rc.pid! };
    const idleMb = rssOf(stormvault.pid).rssMb;

    // 1. Transfers. Same starting state for every contender: source cached, nothing dirty pending.
    const settle = () => sh(`sync; cat '${src}' > /dev/null`);
    const up: Record<string, number> = {};
    const down: Record<string, number> = {};
    const peak: Record<string, { up: number; down: number }> = {};
    for (const t of [rclone, stormvault]) {
      settle();
      resetPeak(t.pid);
      up[t.name] = put(t, src, '/big.bin');
      const upPeak = rssOf(t.pid).peakMb;
      settle();
      resetPeak(t.pid);
      down[t.name] = get(t, '/big.bin', args.size);
      peak[t.name] = { up: upPeak, down: rssOf(t.pid).peakMb };
    }
    // rclone's file gone before the PROPFIND phase (frees the disk and the cache).
    await rm(path.join(rcDir, 'big.bin'));

    // 2. PROPFIND Depth 1 of a folder with N entries.
    const t0 = Date.now();
    const small = path.join(dir, 'small.txt');
    await writeFile(small, 'x'.repeat(100));
    curl(['-u', sv.auth, '-X', 'MKCOL', '-o', '/dev/null', `${stormvault.base}/many`]);
    const cfg = path.join(dir, 'put.curlrc');
    const lines: string[] = [];
    for (let i = 0; i < args.entries; i++) lines.push(`upload-file = "${small}"`, `url = "${stormvault.base}/many/f${String(i).padStart(5, '0')}.txt"`, 'output = "/dev/null"');
    await writeFile(cfg, lines.join('\n') + '\n');
    const fill = spawnSync('curl', ['-sS', '--fail', '--http1.1', '-H', 'Expect:', '-u', sv.auth, '--parallel', '--parallel-max', '16', '-K', cfg], { encoding: 'utf8' });
    if (fill.status !== 0) throw new Error(`filling the folder failed: ${fill.stderr}`);
    const fillS = (Date.now() - t0) / 1000;
    sh('sync');
    const pf: Record<string, number[]> = { rclone: [], stormvault: [], noEtag: [] };
    const pfCpu: Record<string, number[]> = { rclone: [], stormvault: [] };
    propfind(rclone, '/many/', args.entries); // warm-up: both directory listings in the cache
    propfind(stormvault, '/many/', args.entries);
    for (let i = 0; i < args.propfindRuns; i++) {
      for (const t of [rclone, stormvault]) pf[t.name]!.push(propfind(t, '/many/', args.entries, PROPFIND_BODY, pfCpu[t.name]));
      pf.noEtag!.push(propfind(stormvault, '/many/', args.entries, PROPFIND_NO_ETAG));
    }

    const upRatio = up.rclone! / up.stormvault!;
    const downRatio = down.rclone! / down.stormvault!;
    const svPeak = Math.max(peak.stormvault!.up, peak.stormvault!.down);
    const pfMax = Math.max(...pf.stormvault!);
    console.log('');
    console.log(`  PUT  rclone serve   ${up.rclone!.toFixed(3)} s ${rate(up.rclone!)}   (baseline; no fsync before answering)`);
    console.log(`  PUT  stormvault     ${up.stormvault!.toFixed(3)} s ${rate(up.stormvault!)}   ${upRatio.toFixed(2)}x rclone   target >= ${TARGETS.ratio}x`);
    console.log(`  GET  rclone serve   ${down.rclone!.toFixed(3)} s ${rate(down.rclone!)}   (baseline)`);
    console.log(`  GET  stormvault     ${down.stormvault!.toFixed(3)} s ${rate(down.stormvault!)}   ${downRatio.toFixed(2)}x rclone   target >= ${TARGETS.ratio}x`);
    console.log(`  RSS  stormvault     idle ${idleMb.toFixed(0)} MB; peak during PUT ${peak.stormvault!.up.toFixed(0)} MB, during GET ${peak.stormvault!.down.toFixed(0)} MB   target < ${TARGETS.rssMb} MB`);
    console.log(`  RSS  rclone serve   peak during PUT ${peak.rclone!.up.toFixed(0)} MB, during GET ${peak.rclone!.down.toFixed(0)} MB   (context)`);
    console.log(`  PROPFIND Depth 1, ${args.entries} entries (filled by ${args.entries} parallel DAV PUTs in ${fillS.toFixed(1)} s):`);
    const cpuNote = (name: string) => `server CPU median ${median(pfCpu[name]!).toFixed(2)} s`;
    console.log(`       rclone serve   median ${median(pf.rclone!).toFixed(3)} s, max ${Math.max(...pf.rclone!).toFixed(3)} s   (context; ${cpuNote('rclone')})`);
    console.log(`       stormvault     median ${median(pf.stormvault!).toFixed(3)} s, max ${pfMax.toFixed(3)} s   ${(median(pf.rclone!) / median(pf.stormvault!)).toFixed(2)}x rclone   target <= ${TARGETS.propfindS} s   (${cpuNote('stormvault')})`);
    console.log(`       stormvault     median ${median(pf.noEtag!).toFixed(3)} s, max ${Math.max(...pf.noEtag!).toFixed(3)} s   (context: prop getcontentlength, getlastmodified, resourcetype: no per-entry ETag)`);
    const pass = upRatio >= TARGETS.ratio && downRatio >= TARGETS.ratio && svPeak < TARGETS.rssMb && pfMax <= TARGETS.propfindS;
    console.log(`\n  ${pass ? 'PASS' : 'MISS'}: upload ${upRatio.toFixed(2)}x, download ${downRatio.toFixed(2)}x rclone serve; peak RSS ${svPeak.toFixed(0)} MB; PROPFIND max ${pfMax.toFixed(3)} s`);
    process.exitCode = pass ? 0 : 1;
  } finally {
    for (const c of children) {
      if (c.exitCode === null) {
        c.kill('SIGTERM');
        await once(c, 'exit');
      }
    }
    if (!args.keep) await rm(dir, { recursive: true, force: true });
  }
}

await main();
