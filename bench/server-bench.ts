/**
 * Helpers shared by the benches that start a real server process and time curl against it
 * (files-throughput, webdav): ports, source files, the server's memory from /proc, npm start's node flags.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MiB = 1024 * 1024;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** `1G`, `256M`, `64k`, `1048576` → bytes; throws with a one-line reason otherwise. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]i?b?)?$/i.exec(v.trim());
  if (!m) throw new Error(`--size: cannot read ${JSON.stringify(v)}; use e.g. 1G, 256M, 1048576`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  return Math.round(Number(m[1]) * mult);
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

export async function makeSourceFile(file: string, size: number): Promise<void> {
  // Random bytes (not zeros) so no layer can shortcut the data; one random MiB repeated is enough.
  const block = randomBytes(MiB);
  const out = createWriteStream(file);
  for (let written = 0; written < size; written += MiB) {
    const chunk = size - written >= MiB ? block : block.subarray(0, size - written);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Resets the process's peak RSS (VmHWM), so the next reading covers one phase only. */
export function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not permitted here: the peak then covers every phase, which only makes it more conservative.
  }
}

export function rssOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat (clock ticks
 * of 10 ms). On a shared, loaded machine a server's CPU per request tells more than wall time does.
 */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The node flags `npm start` runs the server with, read from package.json so the bench measures what users run. */
export function npmStartNodeFlags(): string[] {
  const start: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start;
  const m = /\bnode((?:\s+--\S+)*)\s+bin\/stormvault\.js\b/.exec(start);
  if (!m) throw new Error(`cannot find "node … bin/stormvault.js" in the start script: ${start}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

/** Runs curl (HTTP/1.1, no 100-continue wait) and times it. */
export function curl(args: string[]): { seconds: number; out: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('curl', ['-sS', '--http1.1', '-H', 'Expect:', ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')} failed: ${r.stderr}`);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, out: r.stdout };
}
