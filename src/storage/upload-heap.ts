import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8's old-generation growing factor raised while large uploads stream, and set back when the last one
 * ends (issue 12, "Upload throughput"; docs/files.md).
 *
 * Why: the HTTP parser copies each body chunk into a fresh 64 KiB Buffer, and V8 counts every ArrayBuffer
 * allocated since the last mark-compact towards the old generation's limit, while only a young collection
 * frees them (one per ~32 MB of such buffers). At the server's idle setting (`--heap-growing-percent=20`,
 * which the backups pipeline's memory ceiling needs) that limit sits only a few MB above the live heap, so
 * a streaming upload crossed it again and again: ~48 full collections per GiB, more than half of the
 * upload's CPU. At 200 % (factor 3) the limit sits ~46 MB above the live heap and an upload runs with at
 * most one (the limit of the current cycle was computed before the raise; V8 reads the flag again
 * whenever it recomputes the limit, at the end of each mark-compact). Once the last upload has ended the
 * idle value applies again from the next mark-compact on.
 *
 * Also, while configured, a young collection every `youngGcEveryBytes` received by uploads: V8 runs one by
 * itself only once 32 MB of young ArrayBuffers wait, so an upload kept up to 32 MB of dead parser chunks
 * resident (the server's peak RSS; the raised factor does not change that, and young collections alone do
 * not stop the full ones: 40-46 per GiB at 20 % with a young collection every 8 MiB).
 *
 * Off until `configureUploadHeap` is called (by `stormvault serve`): tests and other embedders keep V8's
 * flags untouched.
 */
export interface UploadHeapConfig {
  /** --heap-growing-percent between uploads. */
  idlePercent: number;
  /** --heap-growing-percent while at least one large upload streams. */
  uploadPercent: number;
  /** A young-generation collection after every this many bytes received by uploads (0: none). */
  youngGcEveryBytes?: number;
  /**
   * Scavenge on the main thread alone while uploads stream (`--no-parallel-scavenge`, back to parallel
   * after). The young generation is small and nearly all dead then; on a busy machine the parallel
   * scavenger waits for helper threads that are not running.
   */
  serialScavenge?: boolean;
}

let youngGc: (() => void) | null = null;
let youngGcEvery = 0;
let sinceYoungGc = 0;

/**
 * A young-generation collection, through V8's gc() obtained without exposing it to anything else: only a
 * throwaway context gets it (`--expose-gc` is on only while that context is created).
 */
function grabMinorGc(): () => void {
  setFlagsFromString('--expose-gc');
  let gc: (options: { type: 'minor' }) => void;
  try {
    gc = runInNewContext('gc') as typeof gc;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return () => gc({ type: 'minor' });
}

/** Counts bytes an upload received; runs a young collection every youngGcEveryBytes (when configured). */
export function noteUploadBytes(bytes: number): void {
  if (youngGc === null) return;
  sinceYoungGc += bytes;
  if (sinceYoungGc < youngGcEvery) return;
  sinceYoungGc = 0;
  youngGc();
}

/** An upload holds the raised factor once this many bytes have arrived: small ones cannot cause a storm. */
export const UPLOAD_HEAP_AFTER_BYTES = 8 * 1024 * 1024;

let config: UploadHeapConfig | null = null;
let holders = 0;
let setFlag: (flag: string) => void = setFlagsFromString;

/** The flags of `c` while uploads stream, or between them. */
function apply(c: UploadHeapConfig, streaming: boolean): void {
  setFlag(`--heap-growing-percent=${streaming ? c.uploadPercent : c.idlePercent}`);
  if (c.serialScavenge) setFlag(streaming ? '--no-parallel-scavenge' : '--parallel-scavenge');
}

/** How the settings reach V8; tests pass recorders. */
export interface UploadHeapHooks {
  setFlag?: (flag: string) => void;
  youngGc?: () => void;
}

/**
 * Enables (or with null disables) the raise and the young collections. Applies the idle value now unless
 * an upload holds the raise.
 */
export function configureUploadHeap(next: UploadHeapConfig | null, hooks: UploadHeapHooks = {}): void {
  const previous = config;
  config = next;
  setFlag = hooks.setFlag ?? setFlagsFromString;
  youngGcEvery = next?.youngGcEveryBytes ?? 0;
  sinceYoungGc = 0;
  youngGc = youngGcEvery > 0 ? (hooks.youngGc ?? grabMinorGc()) : null;
  if (next) apply(next, holders > 0);
  else if (previous && holders > 0) apply(previous, false);
}

/** How many uploads hold the raised factor now (for tests). */
export function uploadHeapHolders(): number {
  return holders;
}

/**
 * Raises the factor until the returned release function is called (idempotent). With several uploads
 * at once, the idle value returns when the last of them releases. A no-op when not configured.
 */
export function holdUploadHeap(): () => void {
  if (!config) return () => {};
  if (holders++ === 0) apply(config, true);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0 && config) apply(config, false);
  };
}
