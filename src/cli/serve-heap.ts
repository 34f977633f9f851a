import { setFlagsFromString } from 'node:v8';
import { configureUploadHeap } from '../storage/upload-heap.ts';

/**
 * V8's old-generation growing factor for `stormvault serve`, as `--heap-growing-percent` (factor
 * 1 + percent/100). Why (issue 12, "Upload throughput"; docs/files.md): V8 counts every ArrayBuffer
 * allocated since the last mark-compact towards the old generation's limit, and the HTTP parser copies
 * each body chunk into a fresh 64 KiB Buffer, which only a young-generation collection frees (V8 runs
 * one per ~32 MB of such buffers). After an idle spell the limit sits only ~8–12 MB above the ~23 MB the
 * server keeps live, so an upload crossed it several times per 32 MB and V8 ran a full mark-compact of
 * the whole heap every ~25 MB received: 35–45 per GiB, ~1.3 s of GC threads' CPU per GiB, the upload's
 * CPU ~5.5 s/GiB instead of ~2.3 s. A factor of 3 keeps the limit ~46 MB above the live heap, more than
 * the 32 MB of chunk garbage between two young collections, so uploads run with no mark-compact. V8 picks
 * factors up to 4 by itself when its GC looks cheap; this pins 3 instead of letting it fall to ~1.4.
 *
 * Not kept at 3: the backups pipeline (issue 9, bench/backups) then peaked at 198 MB RSS with 1,000 of its
 * 2,000 devices pushed (target ≤ 200 MB for the whole run), against 148 MB at 20 %. The server's memory
 * ceiling wins at idle, so `serve` uses the same 20 % as `npm start` writes on its command line: one
 * behaviour whichever way the server is launched (an operator's own `--heap-growing-percent` is kept, see
 * heapGrowingFlag). While a large upload streams, the factor is raised to UPLOAD_HEAP_GROWING_PERCENT and
 * set back when the last one ends (src/storage/upload-heap.ts): 40-53 full GCs per 1 GiB upload -> 0-2.
 */
export const SERVE_HEAP_GROWING_PERCENT = 20;

/**
 * The factor while a large upload streams (upload-heap.ts): 200 % (factor 3) keeps the old generation's
 * limit ~46 MB above the live heap, more than the ~32 MB of parser chunks between two young collections,
 * so an upload runs with at most one mark-compact instead of ~48 per GiB. Raised only while such an upload
 * streams, so the idle and backups ceiling above still holds between uploads.
 */
export const UPLOAD_HEAP_GROWING_PERCENT = 200;

/**
 * A young-generation collection after every this many bytes received by uploads. V8 itself runs one only
 * once 32 MB of young ArrayBuffers wait (2 x its default semi-space, whatever --max-semi-space-size says),
 * so an upload kept up to 32 MB of dead parser chunks resident: 1 GiB uploads peaked at 138-165 MB RSS with
 * the writer thread, 118-126 MB with a collection every 8 MiB (each ~0.3-1 ms, ~0.1 s per GiB).
 */
export const UPLOAD_YOUNG_GC_EVERY_BYTES = 8 * 1024 * 1024;

const HEAP_FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/** The V8 flag `serve` sets, or null when node was started with its own `--heap-growing-percent`. */
export function heapGrowingFlag(execArgv: readonly string[]): string | null {
  if (execArgv.some((a) => HEAP_FLAG.test(a))) return null;
  return `--heap-growing-percent=${SERVE_HEAP_GROWING_PERCENT}`;
}

/**
 * The growing percents `serve` runs with: between uploads, node's own `--heap-growing-percent` when it was
 * given one (npm start writes SERVE_HEAP_GROWING_PERCENT), else SERVE_HEAP_GROWING_PERCENT; while a large
 * upload streams, UPLOAD_HEAP_GROWING_PERCENT, or the idle value if that is higher.
 */
export function heapPercents(execArgv: readonly string[]): { idlePercent: number; uploadPercent: number } {
  let idlePercent = SERVE_HEAP_GROWING_PERCENT;
  for (let i = 0; i < execArgv.length; i++) {
    const m = HEAP_FLAG.exec(execArgv[i]!);
    if (!m) continue;
    const value = Number(m[1] === '=' ? execArgv[i]!.slice(execArgv[i]!.indexOf('=') + 1) : execArgv[i + 1]);
    if (Number.isFinite(value) && value >= 0) idlePercent = value;
  }
  return { idlePercent, uploadPercent: Math.max(idlePercent, UPLOAD_HEAP_GROWING_PERCENT) };
}

/**
 * Applies heapGrowingFlag at run time, so every launcher gets it (npm start, `npx stormvault serve`, a
 * service unit): node refuses this flag in NODE_OPTIONS. V8 reads it whenever it recomputes the limit,
 * so setting it after start-up takes effect at the next collection (measured: bench/files-throughput).
 * Then lets large uploads raise it while they stream (upload-heap.ts).
 */
export function tuneServerHeap(execArgv: readonly string[] = process.execArgv): void {
  const flag = heapGrowingFlag(execArgv);
  if (flag) setFlagsFromString(flag);
  configureUploadHeap({
    ...heapPercents(execArgv),
    youngGcEveryBytes: UPLOAD_YOUNG_GC_EVERY_BYTES,
    // An operator's own choice of scavenger is left alone.
    serialScavenge: !execArgv.some((a) => /^--(no-)?parallel[-_]scavenge$/.test(a)),
  });
}
