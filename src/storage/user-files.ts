import { createHash } from 'node:crypto';
import { constants, createReadStream, createWriteStream, type BigIntStats } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../errors.ts';
import { fsyncDir, tempPathIn } from './atomic.ts';
import { FileBody } from './file-body.ts';
import { TEMP_PREFIX, userRoot } from './safe-path.ts';

// The filesystem half of the files feature: `{storageRoot}/{userId}/{path}` is the source of truth.
// Every method takes a canonical relative path (normalizeUserPath) and refuses to follow symbolic links:
// a link placed on disk by anyone must never let a request read or write outside the user's root, and
// refusing links outright (rather than following "safe" ones) keeps index paths equal to disk paths.
// Residual risk: a local attacker swapping a checked directory for a link between our lstat and our
// open/rename (TOCTOU). Files are opened with O_NOFOLLOW, which closes the window for the last segment.

/** What the disk says about one entry. */
export interface DiskEntry {
  isDirectory: boolean;
  size: number;
  /** Modification time, ms since epoch. */
  mtimeMs: number;
  /**
   * Strong validator of this exact version of the file: inode, size and mtime (ns). A replace goes through
   * rename, so it always changes the inode; an in-place edit on disk changes size or mtime.
   */
  etag: string;
}

/** A file fully written and fsynced next to its target, waiting for commit() or discard(). */
export interface TempFile {
  readonly tempPath: string;
  readonly size: number;
  readonly sha256: string;
}

/** An entry found by walk(), relative to the user's root. */
export interface WalkEntry {
  path: string;
  entry: DiskEntry;
}

function toEntry(st: BigIntStats): DiskEntry {
  return {
    isDirectory: st.isDirectory(),
    size: st.isDirectory() ? 0 : Number(st.size),
    mtimeMs: Number(st.mtimeMs),
    etag: `"${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}"`,
  };
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

const symlinkRefused = (rel: string) =>
  new AppError('invalid_path', `invalid path ${JSON.stringify(rel)}: goes through a symbolic link, which is never followed`);

/** Thrown by the byte-limit transform; the service turns it into the right AppError. */
export class ByteLimitExceeded extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
  }
}

/** The client went away before the whole body arrived. */
export class UploadAborted extends Error {
  constructor() {
    super('the upload was interrupted before the whole body arrived');
  }
}

const IO_CHUNK = 1024 * 1024;

/**
 * Buffering between the request and the temp file of an upload: one socket read (Node's HTTP parser hands
 * over at most 64 KiB at a time). Each chunk is then written and dropped before V8's next young-generation
 * collection, so it dies young and is freed cheaply. With 1 MiB here ~30 chunks were in flight at any time,
 * some lived through two collections, got promoted, and their memory waited for full collections: 1 GiB
 * uploads held ~35 MB of dead chunks at their peak (vs ~12 MB) and sometimes spent a third of their time in
 * mark-compact. Measured: the same CPU time per upload as with 1 MiB.
 */
const UPLOAD_BUFFER = 64 * 1024;

export class UserFileStore {
  private readonly root: string;

  constructor(storageRoot: string) {
    this.root = path.resolve(storageRoot);
  }

  /** `<storageRoot>/<userId>`, created on first use. Refused if it is itself a link. */
  async userRoot(userId: string): Promise<string> {
    const dir = userRoot(this.root, userId);
    try {
      const st = await lstat(dir);
      if (!st.isDirectory()) throw new AppError('internal', `user root ${dir} is not a directory`);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
      await mkdir(dir, { recursive: true });
    }
    return dir;
  }

  /**
   * Absolute path of `rel` after checking every existing component with lstat: no symbolic links, and
   * no component but the last may be a file. Returns the final entry's stat, or null if it does not exist.
   */
  async locate(userId: string, rel: string): Promise<{ abs: string; stat: BigIntStats | null }> {
    const root = await this.userRoot(userId);
    if (rel === '') return { abs: root, stat: await lstat(root, { bigint: true }) };
    const segments = rel.split('/');
    let abs = root;
    for (let i = 0; i < segments.length; i++) {
      abs = path.join(abs, segments[i]!);
      let st: BigIntStats;
      try {
        // bigint: the last one is also the ETag's source (ns mtime), so stat() needs no second lstat.
        st = await lstat(abs, { bigint: true });
      } catch (err) {
        if (errno(err) === 'ENOENT') return { abs: path.join(root, ...segments), stat: null };
        if (errno(err) === 'ENOTDIR') throw notAFolder(segments.slice(0, i).join('/'));
        throw err;
      }
      if (st.isSymbolicLink()) {
        // Tell an escape from an internal link only for the log-worthy message; both are refused.
        const target = await realpath(abs).catch(() => null);
        const inside = target !== null && (target === root || target.startsWith(root + path.sep));
        if (!inside) throw new AppError('invalid_path', `invalid path ${JSON.stringify(rel)}: resolves outside your root`);
        throw symlinkRefused(rel);
      }
      const last = i === segments.length - 1;
      if (!last && !st.isDirectory()) throw notAFolder(segments.slice(0, i + 1).join('/'));
      if (last) {
        if (!st.isDirectory() && !st.isFile()) throw new AppError('invalid_path', `${JSON.stringify(rel)} is not a regular file or folder`);
        return { abs, stat: st };
      }
    }
    /* c8 ignore next */
    throw new Error('unreachable');
  }

  async stat(userId: string, rel: string): Promise<DiskEntry | null> {
    const { stat } = await this.locate(userId, rel);
    return stat && toEntry(stat);
  }

  /**
   * Opens a regular file for reading without following a link at the last segment (O_NOFOLLOW), and
   * returns its stat taken from the open descriptor, so what is streamed is exactly what was described.
   */
  async openFile(userId: string, rel: string): Promise<{ handle: FileHandle; entry: DiskEntry } | null> {
    const { abs, stat } = await this.locate(userId, rel);
    if (!stat) return null;
    if (stat.isDirectory()) throw new AppError('conflict', `${JSON.stringify(rel)} is a folder`);
    let handle: FileHandle;
    try {
      handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (errno(err) === 'ENOENT') return null;
      if (errno(err) === 'ELOOP') throw symlinkRefused(rel);
      throw err;
    }
    try {
      const st = await handle.stat({ bigint: true });
      if (!st.isFile()) throw new AppError('conflict', `${JSON.stringify(rel)} is not a regular file`);
      return { handle, entry: toEntry(st) };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** A read stream over `[start, end]` (inclusive) of an open file; it closes the handle when done. */
  readStream(handle: FileHandle, start?: number, end?: number): Readable {
    return createReadStream('', { fd: handle, start, end, highWaterMark: IO_CHUNK, autoClose: true });
  }

  /** The body of a download: `[start, end]` (inclusive) of an open file, sent from reused buffers; closes the handle. */
  responseBody(handle: FileHandle, start: number, end: number): Readable {
    return new FileBody(handle, start, end);
  }

  /**
   * Creates the folder `rel` and any missing parents, one level at a time with lstat checks (never
   * through a link). Returns the relative paths it created, outermost first, so a refused upload can
   * remove exactly those (rollbackDirs) and leave nothing behind.
   */
  async ensureDirs(userId: string, rel: string): Promise<string[]> {
    const root = await this.userRoot(userId);
    if (rel === '') return [];
    const created: string[] = [];
    const segments = rel.split('/');
    try {
      for (let i = 0; i < segments.length; i++) {
        const sub = segments.slice(0, i + 1).join('/');
        const abs = path.join(root, ...segments.slice(0, i + 1));
        try {
          await mkdir(abs);
          created.push(sub);
          continue;
        } catch (err) {
          if (errno(err) === 'ENOTDIR') throw notAFolder(segments.slice(0, i).join('/'));
          if (errno(err) !== 'EEXIST') throw err;
        }
        const st = await lstat(abs);
        if (st.isSymbolicLink()) throw symlinkRefused(sub);
        if (!st.isDirectory()) throw notAFolder(sub);
      }
      return created;
    } catch (err) {
      await this.rollbackDirs(userId, created);
      throw err;
    }
  }

  /** Removes folders created by ensureDirs, innermost first, only while they are still empty. */
  async rollbackDirs(userId: string, created: string[]): Promise<void> {
    const root = userRoot(this.root, userId);
    for (const rel of [...created].reverse()) {
      await rmdir(path.join(root, ...rel.split('/'))).catch(() => {});
    }
  }

  /**
   * Streams `source` into a new temp file in folder `parentRel` (which must exist), hashing and counting
   * on the way, then fsyncs it. Memory stays flat: the pipeline applies backpressure to the source.
   * Fails with ByteLimitExceeded as soon as more than `maxBytes` arrive. On any failure the temp file is
   * removed before the promise rejects.
   */
  async writeTemp(userId: string, parentRel: string, source: Readable, maxBytes = Infinity): Promise<TempFile> {
    const root = userRoot(this.root, userId);
    const dir = parentRel === '' ? root : path.join(root, ...parentRel.split('/'));
    const tempPath = tempPathIn(dir);
    const handle = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      highWaterMark: UPLOAD_BUFFER,
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new ByteLimitExceeded(maxBytes));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    // The source is piped by hand rather than through pipeline(): on a refusal (quota) pipeline would
    // destroy the request, and with it the socket, before the client could read the 413.
    const onSourceError = (err: Error) => meter.destroy(err);
    const onSourceClose = () => {
      if (!source.readableEnded) meter.destroy(new UploadAborted());
    };
    source.on('error', onSourceError);
    source.on('close', onSourceClose);
    // `flush`: the stream fsyncs the file before closing it; pipeline resolves only after that close.
    const sink = createWriteStream('', { fd: handle, flush: true, highWaterMark: UPLOAD_BUFFER });
    try {
      source.pipe(meter);
      await pipeline(meter, sink);
    } catch (err) {
      source.unpipe(meter);
      sink.destroy();
      await rm(tempPath, { force: true }).catch(() => {});
      throw err;
    } finally {
      source.off('error', onSourceError);
      source.off('close', onSourceClose);
    }
    return { tempPath, size, sha256: hash.digest('hex') };
  }

  /** Atomically puts a fsynced temp file (or folder) at `rel`, replacing a file there, and makes the rename durable. */
  async commit(userId: string, temp: { tempPath: string }, rel: string): Promise<void> {
    const target = path.join(userRoot(this.root, userId), ...rel.split('/'));
    await rename(temp.tempPath, target);
    await fsyncDir(path.dirname(target));
  }

  async discard(temp: { tempPath: string }): Promise<void> {
    await rm(temp.tempPath, { recursive: true, force: true }).catch(() => {});
  }

  /** Removes a file or a folder tree (links inside are removed, never followed). */
  async remove(userId: string, rel: string): Promise<void> {
    if (rel === '') throw new AppError('invalid_path', 'the root folder cannot be removed');
    const abs = path.join(userRoot(this.root, userId), ...rel.split('/'));
    await rm(abs, { recursive: true, force: true });
    await fsyncDir(path.dirname(abs)).catch(() => {});
  }

  /** Renames within the user's root (same filesystem: atomic). Replaces a file at `to`; both must be checked by the caller. */
  async move(userId: string, from: string, to: string): Promise<void> {
    const root = userRoot(this.root, userId);
    const src = path.join(root, ...from.split('/'));
    const dst = path.join(root, ...to.split('/'));
    await rename(src, dst);
    await fsyncDir(path.dirname(dst));
    if (path.dirname(src) !== path.dirname(dst)) await fsyncDir(path.dirname(src)).catch(() => {});
  }

  /** True when the folder holds anything (temp files of uploads in flight count too). */
  async hasChildren(userId: string, rel: string): Promise<boolean> {
    const { abs } = await this.locate(userId, rel);
    return (await readdir(abs)).length > 0;
  }

  /**
   * Copies a file or folder tree `from` into a temp entry in folder `toParentRel`, ready for commit().
   * Links and temp files inside the tree are skipped (never followed). Files are fsynced.
   * Returns the temp entry and what was copied, relative to the copy's own top (top itself is '').
   */
  async copyToTemp(userId: string, from: string, toParentRel: string): Promise<{ tempPath: string; copied: Array<{ rel: string; entry: DiskEntry }> }> {
    const root = userRoot(this.root, userId);
    const src = path.join(root, ...from.split('/'));
    const dstDir = toParentRel === '' ? root : path.join(root, ...toParentRel.split('/'));
    const tempPath = tempPathIn(dstDir);
    const copied: Array<{ rel: string; entry: DiskEntry }> = [];
    const copyOne = async (s: string, d: string, rel: string): Promise<void> => {
      const st = await lstat(s);
      if (st.isSymbolicLink() || (!st.isFile() && !st.isDirectory())) return;
      if (st.isDirectory()) {
        await mkdir(d);
        for (const name of (await readdir(s)).sort()) {
          if (name.startsWith(TEMP_PREFIX)) continue;
          await copyOne(path.join(s, name), path.join(d, name), rel === '' ? name : `${rel}/${name}`);
        }
      } else {
        await copyFile(s, d, constants.COPYFILE_EXCL);
        const h = await open(d, 'r+');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
      }
      copied.push({ rel, entry: toEntry(await lstat(d, { bigint: true })) });
    };
    try {
      await copyOne(src, tempPath, '');
    } catch (err) {
      await rm(tempPath, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
    return { tempPath, copied };
  }

  /** Every file and folder below `rel` (not `rel` itself), skipping links and temp files. */
  async walk(userId: string, rel: string): Promise<WalkEntry[]> {
    const { abs } = await this.locate(userId, rel);
    const out: WalkEntry[] = [];
    const visit = async (dir: string, relDir: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        if (name.startsWith(TEMP_PREFIX)) continue;
        const childAbs = path.join(dir, name);
        const st = await lstat(childAbs, { bigint: true });
        if (st.isSymbolicLink() || (!st.isFile() && !st.isDirectory())) continue;
        const childRel = relDir === '' ? name : `${relDir}/${name}`;
        out.push({ path: childRel, entry: toEntry(st) });
        if (st.isDirectory()) await visit(childAbs, childRel);
      }
    };
    await visit(abs, rel);
    return out;
  }

  /** sha256 of a file, streamed; null if it vanished. Also returns the entry it hashed, to detect races. */
  async hashFile(userId: string, rel: string): Promise<{ sha256: string; entry: DiskEntry } | null> {
    const opened = await this.openFile(userId, rel);
    if (!opened) return null;
    const hash = createHash('sha256');
    await pipeline(this.readStream(opened.handle), hash);
    return { sha256: hash.digest('hex'), entry: opened.entry };
  }
}

function notAFolder(rel: string): AppError {
  return new AppError('conflict', `${JSON.stringify(rel)} is a file, not a folder`);
}

