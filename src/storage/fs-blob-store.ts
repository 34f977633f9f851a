import { createHash, type Hash } from 'node:crypto';
import { constants, lstatSync, readdirSync, statSync, type BigIntStats, type Dirent } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, stat, statfs, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { fsyncDir, tempPathIn } from './atomic.ts';
import { assertBlobKey, compareKeys, keyName, MAX_KEY_BYTES, MAX_KEY_DEPTH, MAX_KEY_SEGMENT_BYTES, parentKey, segmentProblem } from './blob-key.ts';
import {
  BlobConflict,
  BlobNotFound,
  BlobStoreError,
  InvalidBlobKey,
  LimitExceeded,
  StorageFull,
  UploadAborted,
  type BlobReadHandle,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type CopiedEntry,
  type ListedBlob,
  type ScanEntry,
  type ScanOptions,
  type ScanSkipRule,
  type StagedBlob,
  type StagedCopy,
  type StageOptions,
} from './blob-store.port.ts';
import { FileBody } from './file-body.ts';
import { TEMP_PREFIX } from './safe-path.ts';
import { removeStaleTemp } from './temp-files.ts';
import { holdUploadHeap, noteUploadBytes, UPLOAD_HEAP_AFTER_BYTES } from './upload-heap.ts';
import { writerThread, type OffloadedWrite } from './upload-writer.ts';

// The fs adapter of the BlobStore port: key `a/b/c` is the file `<root>/a/b/c`. It replaces the former
// UserFileStore (files) and the disk half of DiskTreeReader (reconciliation), and keeps their rules:
// - Symbolic links are never followed, anywhere below the root: every component of a key is lstat-ed,
//   files are opened with O_NOFOLLOW, scans report links and never descend into them. Refusing links
//   outright (rather than following "safe" ones) keeps keys equal to disk paths. Residual risk: a local
//   attacker swapping a checked folder for a link between our lstat and our open/rename (TOCTOU);
//   O_NOFOLLOW closes the window for the last segment.
// - Crash safety: bytes go to a `.sv-tmp-*` file next to their key, are fsynced, renamed over the key,
//   and the folder is fsynced, so a crash leaves the old or the new file. Temp names start with
//   TEMP_PREFIX, which no key may contain, so scans and listings skip them without hiding data.

/**
 * The filesystem calls scan() makes. The default is node:fs; tests wrap it to inject failures such as
 * EACCES (the suite runs as root, which can read everything) or to change the tree in the middle of a scan.
 */
export interface ScanFs {
  /** readdir with file types, names decoded as UTF-8. */
  readdir(dir: string): Dirent[] | Promise<Dirent[]>;
  /** readdir with raw byte names (only called for folders holding a name with U+FFFD). */
  readdirRaw(dir: string): Buffer[];
  /** lstat; throws an errno error. Returns undefined when the path does not exist. */
  lstat(file: string): { isFile(): boolean; isDirectory(): boolean; size: number; mtimeMs: number } | undefined;
}

// Synchronous on purpose: an async readdir or lstat costs a thread-pool hop and a promise per call, several
// times the syscall itself (a third of an audit's time in bench/index-rebuild). scan() yields to the event
// loop every YIELD_EVERY entries instead, so the server stays responsive during a background audit.
export const nodeScanFs: ScanFs = {
  readdir: (dir) => readdirSync(dir, { withFileTypes: true }),
  readdirRaw: (dir) => readdirSync(dir, { encoding: 'buffer' }),
  lstat: (file) => lstatSync(file, { throwIfNoEntry: false }),
};

export interface FsBlobStoreOptions {
  /** Free bytes of the volume holding `dir` (default: statfs). Tests inject a small "volume" here. */
  freeBytes?: (dir: string) => Promise<number>;
  /** Filesystem calls of scan() (default nodeScanFs). */
  scanFs?: ScanFs;
  /**
   * Uploads larger than `afterBytes` are written and hashed on the writer thread (upload-writer.ts), the
   * bytes before that on the main thread (default: after OFFLOAD_AFTER_BYTES). `false`: all on the main thread.
   */
  offload?: { afterBytes: number } | false;
}

/** Uploads up to this size stay on the main thread: the hand-over costs more than it saves for them. */
export const OFFLOAD_AFTER_BYTES = 1024 * 1024;

/** A replaced file at least this big is closed after the commit rather than freed inside the rename (renameInto). */
const HOLD_REPLACED_BYTES = 16 * 1024 * 1024;

const YIELD_EVERY = 2048;
const BATCH = 1024;

/**
 * How much of an upload may be queued towards the disk while earlier bytes are being written: the socket
 * keeps flowing and the chunks that arrive during one write go down together in the next writev, hashed
 * while the thread pool writes (the old 64 KiB limit between a hashing Transform and the file stream made
 * the two take turns, one write syscall and one socket pause per chunk: issue 12, "Upload throughput").
 * The chunks stay the 64 KiB the HTTP parser hands over and are dropped right after their write. Not more:
 * with 1 MiB queued, more chunks outlived a young-generation collection and the upload peak RSS rose by
 * ~15 MB in bench/files-throughput (the target is < 150 MB).
 */
const UPLOAD_QUEUE_BYTES = 256 * 1024;
/** How often, in bytes received, a stage with a free-space floor asks the volume how much room is left. */
const FLOOR_CHECK_EVERY = 1024 * 1024;
/**
 * Every this many bytes written, a stage starts an fdatasync of its temp file without waiting for it, so
 * the disk writes the upload back while the rest of it arrives. Without it the kernel keeps the whole
 * upload dirty in the page cache (background writeback starts at 10% of RAM) and the final fsync then
 * writes all of it while the client waits: ~0.55 s of a 1 GiB upload here, a quarter of its time, for
 * nothing (issue 12, "Upload throughput"). One flush at a time; the final fsync still makes the whole
 * file durable before the stage resolves, so the crash-safety steps (temp, fsync, rename, fsync dir)
 * are unchanged. 32 and 64 MiB measured the same; 16 MiB slowed the writes.
 */
const WRITEBACK_EVERY = 32 * 1024 * 1024;

const errno = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;
const isNoSpace = (err: unknown) => errno(err) === 'ENOSPC' || errno(err) === 'EDQUOT';
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
const SURROGATE = /[\ud800-\udfff]/;

function versionOf(st: BigIntStats): string {
  // inode + size + ns mtime: a commit goes through rename, so it always changes the inode; an in-place
  // edit on disk changes size or mtime.
  return `${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}`;
}

function toStat(st: BigIntStats): BlobStat {
  const folder = st.isDirectory();
  return { kind: folder ? 'folder' : 'file', size: folder ? 0 : Number(st.size), mtimeMs: Number(st.mtimeMs), version: folder ? null : versionOf(st) };
}

/** Re-throws an fs error as the port's error when there is one for it. */
function portError(err: unknown, key: string): unknown {
  if (err instanceof BlobStoreError) return err;
  if (isNoSpace(err)) return new StorageFull((err as Error).message, { cause: err });
  return err;
}

export class FsBlobStore implements BlobStore {
  readonly folders = 'explicit' as const;
  readonly root: string;
  private readonly freeBytesOf: (dir: string) => Promise<number>;
  private readonly scanFs: ScanFs;
  private readonly offload: { afterBytes: number } | false;

  constructor(root: string, options: FsBlobStoreOptions = {}) {
    this.root = path.resolve(root);
    this.freeBytesOf = options.freeBytes ?? (async (dir) => {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    });
    this.scanFs = options.scanFs ?? nodeScanFs;
    this.offload = options.offload ?? { afterBytes: OFFLOAD_AFTER_BYTES };
  }

  /** Absolute path of a (validated) key. Keys use '/', as POSIX paths do. */
  private abs(key: string): string {
    return key === '' ? this.root : `${this.root}/${key}`;
  }

  /**
   * lstat of every component of `key`: no links, and no component but the last may be a file. Returns the
   * final entry's stat, or null when it does not exist. The root itself is stat-ed (it may be a link
   * placed by the administrator), and so is the first segment with `followTop` (ScanOptions.followLink).
   */
  private async locate(key: string, followTop = false): Promise<BigIntStats | null> {
    // The common case (plain folders, then a file, a folder or nothing) without a thread-pool hop per
    // level: a publish write walked its path twice, ~6 async lstats of a 1 KB write's ~20 fs calls.
    const now = this.locateNow(key, followTop);
    if (now !== undefined) return now;
    if (key === '') {
      try {
        const st = await stat(this.root, { bigint: true });
        return st.isDirectory() ? st : null;
      } catch (err) {
        if (errno(err) === 'ENOENT') return null;
        throw err;
      }
    }
    const segments = key.split('/');
    let abs = this.root;
    for (let i = 0; i < segments.length; i++) {
      abs += `/${segments[i]}`;
      let st: BigIntStats;
      try {
        st = i === 0 && followTop ? await stat(abs, { bigint: true }) : await lstat(abs, { bigint: true });
      } catch (err) {
        if (errno(err) === 'ENOENT') return null;
        if (errno(err) === 'ENOTDIR') throw new BlobConflict(segments.slice(0, i).join('/'), 'not_folder');
        throw err;
      }
      if (st.isSymbolicLink()) {
        // Tell an escape from an internal link only for the log-worthy message; both are refused.
        const target = await realpath(abs).catch(() => null);
        const inside = target !== null && (target === this.root || target.startsWith(this.root + path.sep));
        if (!inside) throw new InvalidBlobKey(key, 'outside_root', 'resolves outside the store');
        throw new InvalidBlobKey(key, 'symlink', 'goes through a symbolic link, which is never followed');
      }
      const last = i === segments.length - 1;
      if (!last && !st.isDirectory()) throw new BlobConflict(segments.slice(0, i + 1).join('/'), 'not_folder');
      if (last && !st.isDirectory() && !st.isFile()) throw new InvalidBlobKey(key, 'not_regular', 'is not a regular file or folder');
      if (last) return st;
    }
    /* c8 ignore next */
    throw new Error('unreachable');
  }

  async stat(key: string, options: { followLink?: boolean } = {}): Promise<BlobStat | null> {
    assertBlobKey(key, { allowRoot: true });
    const st = await this.locate(key, options.followLink === true);
    return st && toStat(st);
  }

  async open(key: string): Promise<BlobReadHandle> {
    assertBlobKey(key);
    const st = await this.locate(key);
    if (!st) throw new BlobNotFound(key);
    if (st.isDirectory()) throw new BlobConflict(key, 'is_folder');
    let handle: FileHandle;
    try {
      handle = await open(this.abs(key), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new BlobNotFound(key);
      if (errno(err) === 'ELOOP') throw new InvalidBlobKey(key, 'symlink', 'goes through a symbolic link, which is never followed');
      throw err;
    }
    let opened: BlobStat;
    try {
      const fst = await handle.stat({ bigint: true });
      if (!fst.isFile()) throw new BlobConflict(key, 'is_folder');
      opened = toStat(fst);
    } catch (err) {
      await handle.close();
      throw err;
    }
    let released = false;
    return {
      stat: opened,
      stream: (range?: ByteRange) => {
        if (released) throw new Error('BlobReadHandle.stream() called twice or after close()');
        released = true;
        // FileBody closes the handle when it ends, fails or is destroyed.
        return new FileBody(handle, range?.start ?? 0, range?.end ?? opened.size - 1);
      },
      close: async () => {
        if (released) return;
        released = true;
        await handle.close();
      },
    };
  }

  async stage(key: string, source: Readable, options: StageOptions = {}): Promise<StagedBlob> {
    assertBlobKey(key);
    const folder = parentKey(key);
    const parent = await this.locate(folder);
    if (!parent || !parent.isDirectory()) throw parent ? new BlobConflict(folder, 'not_folder') : new BlobNotFound(folder);
    const maxBytes = options.maxBytes ?? Infinity;
    const floor = options.minFreeBytes;
    const dir = this.abs(folder);
    if (floor !== undefined && (await this.freeBytesOf(dir)) < floor) throw new StorageFull(`less than ${floor} bytes free`);

    const tempPath = tempPathIn(dir);
    // Read and write: the writer thread hashes what was written before it took over by reading it back.
    const handle = await open(tempPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    const sink = new HashingFileSink(handle, {
      maxBytes,
      floor: floor === undefined ? undefined : { bytes: floor, free: () => this.freeBytesOf(dir) },
      offload: this.offload,
    });
    try {
      await pumpInto(source, sink);
    } catch (err) {
      sink.releaseHeap();
      // Nothing may write to the file once it is closed (its descriptor number could be reused).
      await sink.detach();
      await handle.close().catch(() => {});
      await rm(tempPath, { force: true }).catch(() => {});
      throw portError(err, key);
    }
    sink.releaseHeap();
    await handle.close();
    return this.stagedFile(key, tempPath, sink.size, sink.sha256!);
  }

  private stagedFile(key: string, tempPath: string, size: number, sha256: string): StagedBlob {
    let done = false;
    const abort = async () => {
      if (done) return;
      done = true;
      await rm(tempPath, { force: true }).catch(() => {});
    };
    return {
      key,
      size,
      sha256,
      abort,
      commit: async (to = key) => {
        if (done) throw new Error('StagedBlob already committed or aborted');
        try {
          assertBlobKey(to);
          if (parentKey(to) !== parentKey(key)) throw new InvalidBlobKey(to, 'malformed', `a stage for ${JSON.stringify(key)} can only be committed in its folder`);
          await this.renameInto(tempPath, to);
          done = true;
          const st = await lstat(this.abs(to), { bigint: true });
          return toStat(st);
        } catch (err) {
          await abort();
          throw err;
        }
      },
    };
  }

  /** rename + fsync of the folder, with the port's errors. */
  private async renameInto(tempPath: string, key: string): Promise<void> {
    const target = this.abs(key);
    // The file being replaced, held open across the rename: its last link goes with the rename, but the
    // kernel frees its pages and blocks only at the last close, which then happens on the thread pool
    // after the commit instead of inside the rename (~0.25 s for a 1 GiB file here, on the request's
    // path; issue 12, "Upload throughput"). Anything but a regular file (none, a folder) is left alone.
    // Only for files big enough for it to matter: a small one would pay two thread-pool hops for nothing
    // (the lstat is synchronous, as in locateNow: one syscall, no hop).
    const old = lstatSync(target, { throwIfNoEntry: false });
    const replaced = old?.isFile() && old.size >= HOLD_REPLACED_BYTES
      ? await open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null)
      : null;
    try {
      await rename(tempPath, target);
    } catch (err) {
      void replaced?.close().catch(() => {});
      const code = errno(err);
      if (code === 'ENOENT') throw new BlobNotFound(parentKey(key), { cause: err });
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw new BlobConflict(key, 'is_folder', { cause: err });
      if (code === 'ENOTDIR') throw new BlobConflict(key, 'not_folder', { cause: err });
      throw portError(err, key);
    }
    try {
      await fsyncDir(path.dirname(target));
    } finally {
      // Not awaited: the commit does not wait for the old file's space to be freed.
      void replaced?.close().catch(() => {});
    }
  }

  async stageCopy(from: string, to: string): Promise<StagedCopy> {
    assertBlobKey(from);
    assertBlobKey(to);
    const st = await this.locate(from);
    if (!st) throw new BlobNotFound(from);
    const toFolder = parentKey(to);
    const parent = await this.locate(toFolder);
    if (!parent || !parent.isDirectory()) throw parent ? new BlobConflict(toFolder, 'not_folder') : new BlobNotFound(toFolder);
    const tempPath = tempPathIn(this.abs(toFolder));
    const entries: CopiedEntry[] = [];
    const copyOne = async (s: string, d: string, rel: string): Promise<void> => {
      const est = await lstat(s);
      if (est.isSymbolicLink() || (!est.isFile() && !est.isDirectory())) return;
      if (est.isDirectory()) {
        await mkdir(d);
        const mine = entries.length;
        entries.push({ rel, kind: 'folder', size: 0, mtimeMs: 0 });
        for (const name of (await readdir(s)).sort()) {
          if (name.startsWith(TEMP_PREFIX)) continue;
          await copyOne(path.join(s, name), path.join(d, name), rel === '' ? name : `${rel}/${name}`);
        }
        entries[mine]!.mtimeMs = (await lstat(d)).mtimeMs;
      } else {
        await copyFile(s, d, constants.COPYFILE_EXCL);
        const h = await open(d, 'r+');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
        const dst = await lstat(d);
        entries.push({ rel, kind: 'file', size: dst.size, mtimeMs: dst.mtimeMs });
      }
    };
    try {
      await copyOne(this.abs(from), tempPath, '');
      // Folders of the copy: their entries and contents must be durable before the rename publishes them.
      if (st.isDirectory()) await fsyncTree(tempPath);
    } catch (err) {
      await rm(tempPath, { recursive: true, force: true }).catch(() => {});
      throw portError(err, to);
    }
    let done = false;
    const abort = async () => {
      if (done) return;
      done = true;
      await rm(tempPath, { recursive: true, force: true }).catch(() => {});
    };
    return {
      key: to,
      entries,
      abort,
      commit: async () => {
        if (done) throw new Error('StagedCopy already committed or aborted');
        try {
          await this.renameInto(tempPath, to);
          done = true;
        } catch (err) {
          await abort();
          throw err;
        }
      },
    };
  }

  async ensureFolder(key: string): Promise<string[]> {
    assertBlobKey(key, { allowRoot: true });
    if (key === '') return [];
    const created: string[] = [];
    const segments = key.split('/');
    try {
      let abs = this.root;
      for (let i = 0; i < segments.length; i++) {
        const sub = segments.slice(0, i + 1).join('/');
        abs += `/${segments[i]}`;
        try {
          await mkdir(abs);
          created.push(sub);
          continue;
        } catch (err) {
          if (errno(err) === 'ENOTDIR') throw new BlobConflict(segments.slice(0, i).join('/'), 'not_folder');
          if (errno(err) === 'ENOENT' && i === 0) throw new BlobNotFound('', { cause: err });
          if (errno(err) !== 'EEXIST') throw portError(err, key);
        }
        const st = await lstat(abs);
        if (st.isSymbolicLink()) throw new InvalidBlobKey(sub, 'symlink', 'goes through a symbolic link, which is never followed');
        if (!st.isDirectory()) throw new BlobConflict(sub, 'not_folder');
      }
      // New folders must survive a crash before anything committed into them is acknowledged: each one's
      // entry lives in its parent (the deepest one's content is fsynced by the commit into it).
      for (const sub of created) await fsyncDir(path.dirname(this.abs(sub)));
      return created;
    } catch (err) {
      await this.removeEmptyFolders(created);
      throw err;
    }
  }

  async removeEmptyFolders(keys: readonly string[]): Promise<void> {
    for (const key of [...keys].reverse()) {
      if (keyProblemFree(key)) await rmdir(this.abs(key)).catch(() => {});
    }
  }

  async hasEntries(key: string): Promise<boolean> {
    assertBlobKey(key, { allowRoot: true });
    const st = await this.locate(key);
    if (!st || !st.isDirectory()) return false;
    return (await readdir(this.abs(key))).length > 0;
  }

  async remove(key: string): Promise<void> {
    assertBlobKey(key);
    // Checked first so a link on the way is refused, not followed by rm.
    if (!(await this.locate(key))) return;
    const abs = this.abs(key);
    await rm(abs, { recursive: true, force: true });
    await fsyncDir(path.dirname(abs)).catch(() => {});
  }

  async move(from: string, to: string): Promise<void> {
    assertBlobKey(from);
    assertBlobKey(to);
    const src = await this.locate(from);
    if (!src) throw new BlobNotFound(from);
    const dst = await this.locate(to);
    if (dst?.isDirectory()) throw new BlobConflict(to, 'is_folder');
    if (dst && src.isDirectory()) throw new BlobConflict(to, 'exists');
    const toFolder = parentKey(to);
    const parent = await this.locate(toFolder);
    if (!parent) throw new BlobNotFound(toFolder);
    if (!parent.isDirectory()) throw new BlobConflict(toFolder, 'not_folder');
    const [s, d] = [this.abs(from), this.abs(to)];
    try {
      await rename(s, d);
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new BlobNotFound(from, { cause: err });
      throw portError(err, to);
    }
    await fsyncDir(path.dirname(d));
    if (path.dirname(s) !== path.dirname(d)) await fsyncDir(path.dirname(s)).catch(() => {});
  }

  async freeBytes(): Promise<number | null> {
    return this.freeBytesOf(this.root);
  }

  async list(key: string): Promise<ListedBlob[]> {
    assertBlobKey(key, { allowRoot: true });
    const top = await this.locate(key);
    if (!top || !top.isDirectory()) return [];
    const depth = key === '' ? 1 : key.split('/').length + 1;
    if (depth > MAX_KEY_DEPTH) return [];
    const abs = this.abs(key);
    const prefixBytes = key === '' ? 0 : Buffer.byteLength(key) + 1;
    let dirents: Dirent[];
    try {
      // (A promise only from a test's injected ScanFs.)
      dirents = await this.scanFs.readdir(abs);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return [];
      throw err;
    }
    // Synchronous lstat, as scan() does (see nodeScanFs): a folder of 10,000 files is listed in
    // milliseconds, where an async lstat per entry costs a thread-pool hop and a promise each.
    const invalid = dirents.some((d) => d.name.includes('\uFFFD')) ? invalidUtf8Names(this.scanFs, abs) : undefined;
    const out: ListedBlob[] = [];
    for (const d of dirents) {
      const name = d.name;
      if (name.startsWith(TEMP_PREFIX) || invalid?.has(name) || d.isSymbolicLink()) continue;
      if (d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice()) continue;
      if (segmentProblem(name) !== null || prefixBytes + Buffer.byteLength(name) > MAX_KEY_BYTES) continue;
      let st: BigIntStats | undefined;
      try {
        st = lstatSync(`${abs}/${name}`, { bigint: true, throwIfNoEntry: false });
      } catch {
        continue; // unreadable: left out, as scan() reports it rather than serving it
      }
      if (!st || !(st.isFile() || st.isDirectory())) continue;
      out.push({ name, ...toStat(st) });
    }
    return out;
  }

  scan(prefix: string, options: ScanOptions = {}): AsyncIterable<readonly ScanEntry[]> {
    assertBlobKey(prefix, { allowRoot: true });
    return this.scanTree(prefix, options);
  }

  async removeStaleTemp(tempKey: string, staleBeforeMs: number): Promise<boolean> {
    const segments = tempKey.split('/');
    // Only what a scan yields: plain segments below the root, the last one a temp name.
    if (!segments[segments.length - 1]!.startsWith(TEMP_PREFIX)) return false;
    if (segments.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) return false;
    return removeStaleTemp(this.abs(tempKey), staleBeforeMs);
  }

  /**
   * locate() for the common case, synchronously (every segment a plain folder, the last a folder or file,
   * or nothing there): a scan per user of 1,000 users paid a thread-pool hop each for its top. Undefined
   * for anything else (links, errors), which locate() then settles with its checks and messages.
   */
  private locateNow(key: string, followTop: boolean): BigIntStats | null | undefined {
    if (key === '') return undefined;
    const segments = key.split('/');
    let abs = this.root;
    try {
      for (let i = 0; i < segments.length; i++) {
        abs += `/${segments[i]}`;
        const st = i === 0 && followTop ? statSync(abs, { bigint: true, throwIfNoEntry: false }) : lstatSync(abs, { bigint: true, throwIfNoEntry: false });
        if (!st) return null;
        const last = i === segments.length - 1;
        if (st.isDirectory()) {
          if (last) return st;
          continue;
        }
        return last && st.isFile() ? st : undefined;
      }
    } catch {
      return undefined;
    }
    /* c8 ignore next */
    return undefined;
  }

  private async *scanTree(prefix: string, options: ScanOptions): AsyncGenerator<readonly ScanEntry[]> {
    const followTop = options.followLink === true;
    const now = this.locateNow(prefix, followTop);
    const top = now === undefined ? await this.locate(prefix, followTop) : now;
    if (!top || !top.isDirectory()) return;
    const depth0 = prefix === '' ? 0 : prefix.split('/').length;
    const bytes0 = Buffer.byteLength(prefix);
    const rules: ScanRules = {
      nfc: options.nfc === true,
      temps: options.temps === true,
      maxDepth: Math.min(MAX_KEY_DEPTH, depth0 + (options.limits?.depth ?? Infinity)),
      // Keys below the prefix carry `prefix/` in front of what the limit counts.
      maxBytes: Math.min(MAX_KEY_BYTES, (prefix === '' ? 0 : bytes0 + 1) + (options.limits?.keyBytes ?? Infinity)),
      lastLevel: depth0 + (options.levels ?? Infinity),
      rootLength: this.root.length,
      tooDeep: options.limits ? `more than ${options.limits.depth} segments below the scanned folder` : `deeper than ${MAX_KEY_DEPTH} segments`,
      tooLong: options.limits ? `longer than ${options.limits.keyBytes} bytes below the scanned folder` : `key longer than ${MAX_KEY_BYTES} bytes`,
    };
    const stack: ScanFrame[] = [];
    let batch: ScanEntry[] = [];
    const first = await this.listFolder(prefix, this.abs(prefix), depth0, bytes0, batch, rules);
    if (first) stack.push(first);
    let sinceYield = 0;
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.items.length) {
        stack.pop();
        continue;
      }
      const item = frame.items[frame.next++]!;
      if (item.kind !== 'descend') {
        batch.push(item);
      } else {
        // The folder's content sorts after `name/`, i.e. after siblings such as `name-2` ('-' < '/').
        const key = frame.key === '' ? item.name : `${frame.key}/${item.name}`;
        const listed = this.listFolder(key, `${frame.abs}/${item.diskName}`, frame.depth + 1, frame.key === '' ? item.bytes : frame.bytes + 1 + item.bytes, batch, rules);
        const child = listed instanceof Promise ? await listed : listed;
        if (child) stack.push(child);
        sinceYield += child ? child.items.length : 1;
      }
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * One folder's entries as scan items, sorted so that emitting them in order (and descending at each
   * folder's `descend` item) yields keys in byte order. Failures become `unreadable` entries in `out`.
   * Synchronous unless the injected ScanFs answers with a promise (tests that change the tree mid-scan).
   */
  private listFolder(key: string, abs: string, depth: number, bytes: number, out: ScanEntry[], rules: ScanRules): ScanFrame | null | Promise<ScanFrame | null> {
    let dirents: Dirent[] | Promise<Dirent[]>;
    try {
      dirents = this.scanFs.readdir(abs);
    } catch (err) {
      return listingFailed(err, key, out);
    }
    if (dirents instanceof Promise) {
      return dirents.then(
        (d) => this.folderFrame(key, abs, depth, bytes, d, rules),
        (err) => listingFailed(err, key, out),
      );
    }
    return this.folderFrame(key, abs, depth, bytes, dirents, rules);
  }

  private folderFrame(key: string, abs: string, depth: number, bytes: number, dirents: Dirent[], rules: ScanRules): ScanFrame {
    const fs = this.scanFs;
    const items: ScanItem[] = [];
    // Names on disk of entries whose key name was normalised (option nfc; rare).
    let diskNames: Map<ScanItem, string> | undefined;
    const keyOf = (name: string) => (key === '' ? name : `${key}/${name}`);
    // A lossy name (invalid UTF-8 decoded to U+FFFD) cannot even be lstat-ed by that name: find them first.
    const invalid = dirents.some((d) => d.name.includes('\uFFFD')) ? invalidUtf8Names(fs, abs) : undefined;
    const childDepth = depth + 1;
    const descend = childDepth < rules.lastLevel;
    const keyBytesBase = key === '' ? 0 : bytes + 1;
    let surrogates = false;
    for (const d of dirents) {
      const diskName = d.name;
      if (diskName.startsWith(TEMP_PREFIX)) {
        if (rules.temps) this.tempItem(abs, diskName, rules, items);
        continue;
      }
      const hex = invalid?.get(diskName);
      if (hex !== undefined) {
        items.push(skipped(keyOf(diskName), 'invalid_name', `name is not valid UTF-8 (bytes ${hex})`, 'invalid_utf8', hex));
        continue;
      }
      if (d.isSymbolicLink()) {
        items.push(skipped(keyOf(diskName), 'symlink', 'symbolic link: never followed'));
        continue;
      }
      if (d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice()) {
        items.push(skipped(keyOf(diskName), 'special', 'not a regular file or folder'));
        continue;
      }
      let name = diskName;
      let nameBytes: number;
      if (PRINTABLE_ASCII.test(name)) {
        // The common case: one regex settles the byte count, surrogates and NFC.
        nameBytes = name.length;
        const why = name.length > MAX_KEY_SEGMENT_BYTES || name === '.' || name === '..' || name.includes('\\') ? segmentProblem(name) : null;
        if (why) {
          items.push(skipped(keyOf(name), 'invalid_name', why, 'bad_segment'));
          continue;
        }
      } else {
        let why = segmentProblem(name);
        let rule: ScanSkipRule = 'bad_segment';
        if (why !== null) {
          const n = name.normalize('NFC');
          if (n !== name && segmentProblem(n) === null) {
            if (rules.nfc) {
              name = n;
              why = null;
            } else rule = 'not_nfc';
          }
        }
        if (why) {
          items.push(skipped(keyOf(diskName), 'invalid_name', why, rule));
          continue;
        }
        nameBytes = Buffer.byteLength(name);
        if (!surrogates && SURROGATE.test(name)) surrogates = true;
      }
      if (childDepth > rules.maxDepth) {
        items.push(skipped(keyOf(name), 'invalid_name', rules.tooDeep, 'too_deep'));
        continue;
      }
      if (keyBytesBase + nameBytes > rules.maxBytes) {
        items.push(skipped(keyOf(name), 'invalid_name', rules.tooLong, 'too_long'));
        continue;
      }
      let s;
      try {
        s = fs.lstat(`${abs}/${diskName}`);
      } catch (err) {
        items.push({ kind: 'unreadable', key: keyOf(name), code: errno(err) ?? 'EIO', detail: (err as Error).message });
        continue;
      }
      // Vanished between readdir and lstat (deleted while we scan): not there, so not listed.
      if (!s) continue;
      let entry: ScanItem;
      if (s.isFile()) {
        items.push((entry = { kind: 'file', key: keyOf(name), size: s.size, mtimeMs: s.mtimeMs }));
      } else if (s.isDirectory()) {
        const childKey = keyOf(name);
        items.push((entry = { kind: 'folder', key: childKey, size: 0, mtimeMs: s.mtimeMs }));
        if (descend) items.push({ kind: 'descend', key: `${childKey}/`, name, diskName, bytes: nameBytes });
      } else {
        items.push(skipped(keyOf(diskName), 'special', 'not a regular file or folder'));
        continue;
      }
      if (name !== diskName) (diskNames ??= new Map()).set(entry, diskName);
    }
    const sorted = diskNames ? dropCollisions(items, diskNames, keyOf) : items;
    // Sorted by key: every key of one folder starts with `key/`, so this is the order of the names, and a
    // folder's descend item (`name/`) lands where its content belongs. Plain `<` compares UTF-16 units,
    // which matches UTF-8 byte order unless surrogates are involved.
    if (surrogates) sorted.sort((a, b) => compareKeys(a.key, b.key));
    else sorted.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { key, abs, depth, bytes, items: sorted, next: 0 };
  }

  /** A temp entry found by a scan with `temps` (rare: one lstat, only for temp names). */
  private tempItem(abs: string, name: string, rules: ScanRules, items: ScanItem[]): void {
    let s;
    try {
      s = this.scanFs.lstat(`${abs}/${name}`);
    } catch {
      return;
    }
    if (!s || !s.isFile()) return;
    const below = abs.length > rules.rootLength ? `${abs.slice(rules.rootLength + 1)}/` : '';
    items.push({ kind: 'temp', key: below + name, mtimeMs: s.mtimeMs });
  }
}

/** What a scan's options come to, resolved once per scan. Depths and bytes count from the store's root. */
interface ScanRules {
  nfc: boolean;
  temps: boolean;
  maxDepth: number;
  maxBytes: number;
  /** Folders at this depth are not descended into. */
  lastLevel: number;
  rootLength: number;
  tooDeep: string;
  tooLong: string;
}

/** The place of a folder's content in its parent's order (`key` is `<folder key>/`): descend here. */
interface Descend {
  kind: 'descend';
  key: string;
  /** The folder's key name, and its name on disk. */
  name: string;
  diskName: string;
  bytes: number;
}

/** One folder's listing in key order: what the scan yields, and where to descend. */
type ScanItem = ScanEntry | Descend;

interface ScanFrame {
  key: string;
  abs: string;
  depth: number;
  bytes: number;
  items: ScanItem[];
  next: number;
}

function listingFailed(err: unknown, key: string, out: ScanEntry[]): null {
  // ENOENT: removed while we scan, so simply not there. Anything else: its content is unknown.
  if (errno(err) !== 'ENOENT' && errno(err) !== 'ENOTDIR') out.push({ kind: 'unreadable', key, code: errno(err) ?? 'EIO', detail: `cannot list folder: ${(err as Error).message}` });
  return null;
}

function skipped(key: string, reason: 'symlink' | 'special' | 'invalid_name', detail: string, rule?: ScanSkipRule, rawNameHex?: string): ScanEntry {
  const entry: ScanEntry = { kind: 'skipped', key, reason, detail };
  if (rule !== undefined) entry.rule = rule;
  if (rawNameHex !== undefined) entry.rawNameHex = rawNameHex;
  return entry;
}

/**
 * With the scan option `nfc`, two names of one folder may now share a key (`e\u0301` and `é`). Keeps the
 * one whose name on disk is already NFC (what the files API writes), else the first, and turns the other
 * into a skipped `name_collision` under its name on disk (its descend item goes with it). Rare: only
 * folders where a name was normalised get here. `diskNames`: entries whose disk name differs from their key's.
 */
function dropCollisions(items: ScanItem[], diskNames: Map<ScanItem, string>, keyOf: (name: string) => string): ScanItem[] {
  const kept = new Map<string, ScanItem>();
  const dropped = new Map<ScanItem, string>();
  for (const item of items) {
    if (item.kind !== 'file' && item.kind !== 'folder') continue;
    const twin = kept.get(item.key);
    if (!twin) {
      kept.set(item.key, item);
      continue;
    }
    const loser = !diskNames.has(item) && diskNames.has(twin) ? twin : item;
    if (loser === twin) kept.set(item.key, item);
    dropped.set(loser, item.key);
  }
  if (dropped.size === 0) return items;
  const droppedFolders = new Set([...dropped.keys()].filter((d) => d.kind === 'folder').map((d) => diskNames.get(d) ?? keyName(d.key)));
  const out: ScanItem[] = [];
  for (const item of items) {
    const key = dropped.get(item);
    if (key !== undefined) {
      const name = keyName(key);
      out.push(skipped(keyOf(diskNames.get(item) ?? name), 'invalid_name', `differs from another name in its folder only by Unicode normalisation (both are "${name}" in NFC)`, 'name_collision'));
      continue;
    }
    if (item.kind === 'descend' && droppedFolders.has(item.diskName)) continue;
    out.push(item);
  }
  return out;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function keyProblemFree(key: string): boolean {
  try {
    assertBlobKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * Node decodes names that are not valid UTF-8 lossily (bytes → U+FFFD), so such a name cannot be opened by
 * the name we hold. Re-read the folder as bytes (rare): lossy name → raw bytes in hex.
 */
function invalidUtf8Names(fs: ScanFs, dir: string): Map<string, string> {
  const byLossyName = new Map<string, string>();
  try {
    for (const raw of fs.readdirRaw(dir)) {
      try {
        fatalUtf8.decode(raw);
      } catch {
        byLossyName.set(raw.toString('utf8'), raw.toString('hex'));
      }
    }
  } catch {
    // The folder went away between the two reads: its entries will fail their lstat instead.
  }
  return byLossyName;
}

/** fsync of every folder in a freshly copied tree (files were fsynced as they were copied). */
async function fsyncTree(dir: string): Promise<void> {
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (d.isDirectory()) await fsyncTree(path.join(dir, d.name));
  }
  await fsyncDir(dir);
}

/**
 * Pipes `source` into `sink` and resolves when the sink has finished (data fsynced). The source is piped
 * by hand rather than through pipeline(): on a refusal (quota, floor) pipeline would destroy the request,
 * and with it the socket, before the client could read the answer. A source that errors or closes before
 * its end fails the sink with UploadAborted.
 */
function pumpInto(source: Readable, sink: HashingFileSink): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      source.off('error', onSourceError);
      source.off('close', onSourceClose);
      sink.off('error', onSinkError);
      sink.off('finish', onFinish);
    };
    const onSourceError = (err: Error) => sink.destroy(new UploadAborted({ cause: err }));
    const onSourceClose = () => {
      if (!source.readableEnded) sink.destroy(new UploadAborted());
    };
    const onSinkError = (err: Error) => {
      cleanup();
      source.unpipe(sink);
      reject(err);
    };
    const onFinish = () => {
      cleanup();
      resolve();
    };
    source.on('error', onSourceError);
    source.on('close', onSourceClose);
    sink.on('error', onSinkError);
    sink.on('finish', onFinish);
    if (source.readableEnded) return void sink.end();
    if (source.destroyed) return void sink.destroy(new UploadAborted());
    source.pipe(sink);
  });
}

/**
 * Writes chunks to an open file at increasing offsets and computes their sha256. Counts bytes against a
 * limit and, optionally, checks a free-space floor as they arrive. Its final step fsyncs the file:
 * 'finish' means durable.
 *
 * Two ways of writing, one after the other: the first `offload.afterBytes` are written by the thread pool
 * and hashed on the main thread *while* the pool writes them (both only read the buffers). Beyond that,
 * an upload is handed to the writer thread (upload-writer.ts), which writes and hashes the rest from a
 * ring the main thread copies each chunk into, and first hashes the bytes already written by reading
 * them back; the main thread then only parses and copies (issue 12, "Upload throughput").
 */
class HashingFileSink extends Writable {
  size = 0;
  /** The sha256 (hex) of every byte written, once 'finish' was emitted. */
  sha256: string | null = null;
  private position = 0;
  private sinceFloorCheck = Infinity;
  private sinceWriteback = 0;
  /** The early fdatasync in flight (see WRITEBACK_EVERY), or null. It never rejects; see writebackError. */
  private writeback: Promise<void> | null = null;
  private writebackError: unknown = null;
  /** Set once the upload is large enough to hold V8's raised growing factor (upload-heap.ts). */
  private heapHold: (() => void) | null = null;
  /** The main thread's hash, until (if ever) the writer thread takes over. */
  private hash: Hash | null = createHash('sha256');
  private offloaded: OffloadedWrite | null = null;
  /** The batch being written, if any (detach waits for it). */
  private inflight: Promise<void> | null = null;
  private detached = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly limits: { maxBytes: number; floor?: { bytes: number; free: () => Promise<number> }; offload: { afterBytes: number } | false },
  ) {
    super({ highWaterMark: UPLOAD_QUEUE_BYTES });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.track(this.writeBatch([chunk])).then(() => done(), done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.track(this.writeBatch(chunks.map((c) => c.chunk))).then(() => done(), done);
  }

  private track(batch: Promise<void>): Promise<void> {
    const settled = batch.then(
      () => {},
      () => {},
    );
    this.inflight = settled;
    void settled.then(() => {
      if (this.inflight === settled) this.inflight = null;
    });
    return batch;
  }

  private async writeBatch(buffers: Buffer[]): Promise<void> {
    if (this.detached) throw new UploadAborted();
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    if (this.size + bytes > this.limits.maxBytes) throw new LimitExceeded(this.limits.maxBytes);
    const floor = this.limits.floor;
    if (floor) {
      this.sinceFloorCheck += bytes;
      if (this.sinceFloorCheck >= FLOOR_CHECK_EVERY) {
        this.sinceFloorCheck = 0;
        // Leave room for what is about to be written and for the next unchecked stretch.
        if ((await floor.free()) - bytes - FLOOR_CHECK_EVERY < floor.bytes) throw new StorageFull(`writing on would leave less than ${floor.bytes} bytes free`);
      }
    }
    this.size += bytes;
    noteUploadBytes(bytes);
    if (this.heapHold === null && this.size >= UPLOAD_HEAP_AFTER_BYTES) this.heapHold = holdUploadHeap();
    if (this.offloaded === null && this.limits.offload && this.size > this.limits.offload.afterBytes && !this.detached) this.handOver();
    if (this.offloaded) {
      await this.offloaded.write(buffers);
    } else {
      const written = this.writeAll(buffers, this.position, bytes);
      for (const b of buffers) this.hash!.update(b);
      await written;
    }
    this.position += bytes;
    this.sinceWriteback += bytes;
    if (this.sinceWriteback >= WRITEBACK_EVERY && this.writeback === null) {
      this.sinceWriteback = 0;
      // With the writer thread, this flushes what it has written so far (the rest at the final fsync).
      this.writeback = this.handle.datasync().then(
        () => void (this.writeback = null),
        (err: unknown) => {
          this.writeback = null;
          this.writebackError ??= err;
        },
      );
    }
    // A failed early flush (EIO, ENOSPC on some filesystems) fails the upload now rather than at the end.
    if (this.writebackError) throw this.writebackError;
  }

  /** From here on the writer thread writes and hashes (every earlier write has completed). */
  private handOver(): void {
    try {
      this.offloaded = writerThread.open(this.handle.fd, this.position, this.position);
      this.hash = null;
    } catch {
      // No thread to be had (resource limits): this upload stays on the main thread.
      this.limits.offload = false;
    }
  }

  /** Lets go of V8's raised growing factor, if this upload held it (idempotent). */
  releaseHeap(): void {
    this.heapHold?.();
  }

  /**
   * After a failure: waits until nothing writes to the file any more (the batch in flight, the writer
   * thread's session, an early flush), so that the handle may be closed.
   */
  async detach(): Promise<void> {
    this.detached = true;
    while (this.inflight) await this.inflight;
    await this.offloaded?.drop();
    await this.writebackDone();
  }

  /** Resolves once no early flush is in flight (the handle may then be closed). */
  async writebackDone(): Promise<void> {
    while (this.writeback) await this.writeback;
  }

  private async writeAll(buffers: Buffer[], position: number, total: number): Promise<void> {
    let { bytesWritten } = await this.handle.writev(buffers, position);
    // Short writes are rare on regular files, but possible: write the rest.
    while (bytesWritten < total) {
      let skip = bytesWritten;
      const rest: Buffer[] = [];
      for (const b of buffers) {
        if (skip >= b.length) skip -= b.length;
        else {
          rest.push(skip > 0 ? b.subarray(skip) : b);
          skip = 0;
        }
      }
      const more = await this.handle.writev(rest, position + bytesWritten);
      if (more.bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
      bytesWritten += more.bytesWritten;
    }
  }

  override _final(done: (err?: Error | null) => void): void {
    (async () => {
      this.sha256 = this.offloaded ? await this.offloaded.end() : this.hash!.digest('hex');
      await this.writebackDone();
      if (this.writebackError) throw this.writebackError;
      await this.handle.sync();
    })().then(() => done(), done);
  }
}
