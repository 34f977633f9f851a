import { createReadStream } from 'node:fs';
import { link, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDir, tempPathFor } from './atomic.ts';
import { freeBytes } from './disk.ts';
import { parentOf } from './safe-path.ts';
import { UserFileStore, type DiskEntry, type TempFile } from './user-files.ts';

/** Suffix of the one previous version kept next to each published file (issue 11 "Writing"). */
export const PREV_SUFFIX = '.prev';

/** Points where a crash test may kill the writer (see test/publishing/atomic-write.test.ts). */
export type WriteStep = 'staged' | 'prev-linked' | 'prev-renamed' | 'renamed' | 'done';

/**
 * The local content of published sites, `<root>/<site>/<path>`: the truth the bucket mirrors. Paths are
 * canonical (safe-path.ts rules, checked by the caller); links are never followed (the same lstat walk
 * as user files). What this adds to a plain store is the write order that keeps one whole previous
 * version at `<path>.prev` without the path ever going missing:
 *
 *   stage temp (write, fsync) → link current → temp name → rename over `.prev` → rename temp over path → fsync folder
 *
 * A hard link rather than renaming the current file away: between two renames a reader would get a 404,
 * and a crash there would leave no file at the path. With the link, the path holds the old version until
 * the final rename and the new one after it; `.prev` is replaced by rename, so it is always a whole file.
 */
export class PublishContentStore {
  private readonly files: UserFileStore;
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    // Site names ([a-z0-9-]{1,63}) are single safe segments, which is all UserFileStore asks of an owner.
    this.files = new UserFileStore(this.root);
  }

  stat(site: string, rel: string): Promise<DiskEntry | null> {
    return this.files.stat(site, rel);
  }

  openFile(site: string, rel: string) {
    return this.files.openFile(site, rel);
  }

  /** Response body over `[start, end]` of an open file (closes the handle). */
  responseBody(handle: Parameters<UserFileStore['responseBody']>[0], start: number, end: number): Readable {
    return this.files.responseBody(handle, start, end);
  }

  /** A plain read stream of an open file (for uploads and hashing; closes the handle). */
  readStream(handle: Parameters<UserFileStore['readStream']>[0], start?: number, end?: number): Readable {
    return this.files.readStream(handle, start, end);
  }

  /** `[start, end]` of an open file as a stream that leaves the handle open (multipart parts share one). */
  readRange(handle: Parameters<UserFileStore['readStream']>[0], start: number, end: number): Readable {
    return createReadStream('', { fd: handle, start, end, autoClose: false, highWaterMark: 1024 * 1024 });
  }

  hashFile(site: string, rel: string) {
    return this.files.hashFile(site, rel);
  }

  freeBytes(): Promise<number> {
    return freeBytes(this.root);
  }

  /**
   * Streams `body` into a fsynced temp file next to `rel`, creating missing parents (returned, so a refused
   * write can remove exactly those with discard()).
   */
  async stage(site: string, rel: string, body: Readable, maxBytes: number): Promise<{ temp: TempFile; createdDirs: string[] }> {
    const createdDirs = await this.files.ensureDirs(site, parentOf(rel));
    try {
      return { temp: await this.files.writeTemp(site, parentOf(rel), body, maxBytes), createdDirs };
    } catch (err) {
      await this.files.rollbackDirs(site, createdDirs);
      throw err;
    }
  }

  async discard(site: string, staged: { temp: TempFile; createdDirs: string[] }): Promise<void> {
    await this.files.discard(staged.temp);
    await this.files.rollbackDirs(site, staged.createdDirs);
  }

  /** Puts a staged temp file at `rel`, keeping the file it replaces as `rel.prev` (see the class comment). */
  async commitKeepingPrev(site: string, rel: string, temp: TempFile, onStep?: (step: WriteStep) => Promise<void> | void): Promise<void> {
    await onStep?.('staged');
    const { abs, stat } = await this.files.locate(site, rel);
    if (stat?.isDirectory()) throw new Error(`${rel} is a folder`);
    if (stat) await this.linkAsPrev(abs, onStep);
    await rename(temp.tempPath, abs);
    await onStep?.('renamed');
    await fsyncDir(path.dirname(abs));
    await onStep?.('done');
  }

  /**
   * Swaps `rel` and `rel.prev` (rollback): link current → temp, rename `.prev` over the path, rename the
   * temp over `.prev`. The path is never missing; a crash leaves at worst a temp file.
   * @returns false when there is no `.prev` to roll back to.
   */
  async swapWithPrev(site: string, rel: string): Promise<boolean> {
    const current = await this.files.locate(site, rel);
    const prev = await this.files.locate(site, rel + PREV_SUFFIX);
    if (!prev.stat || prev.stat.isDirectory()) return false;
    if (!current.stat) {
      await rename(prev.abs, current.abs);
    } else {
      const tmp = tempPathFor(current.abs);
      await link(current.abs, tmp);
      await rename(prev.abs, current.abs);
      await rename(tmp, prev.abs);
    }
    await fsyncDir(path.dirname(current.abs));
    return true;
  }

  /** Removes `rel` and its `.prev`, then every parent folder left empty, up to (not including) the site folder. */
  async removeFile(site: string, rel: string): Promise<void> {
    for (const p of [rel + PREV_SUFFIX, rel]) {
      const { abs, stat } = await this.files.locate(site, p);
      if (stat && !stat.isDirectory()) await unlink(abs).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    }
    const { abs } = await this.files.locate(site, rel);
    await fsyncDir(path.dirname(abs)).catch(() => {});
    await this.pruneEmptyParents(site, parentOf(rel));
  }

  /** Removes a whole folder tree (with every `.prev` in it), then empty parents. */
  async removeTree(site: string, rel: string): Promise<void> {
    await this.files.remove(site, rel);
    await this.pruneEmptyParents(site, parentOf(rel));
  }

  /** Every file below `rel` ('' = the site) with its entry; `.prev` files and temp files left out. */
  async walkFiles(site: string, rel: string): Promise<Array<{ path: string; entry: DiskEntry }>> {
    const all = await this.files.walk(site, rel);
    return all.filter((e) => !e.entry.isDirectory && !e.path.endsWith(PREV_SUFFIX));
  }

  /** Removes the site's folder with everything in it (site deletion). */
  async removeSite(site: string): Promise<void> {
    await rm(await this.files.userRoot(site), { recursive: true, force: true });
  }

  private async linkAsPrev(abs: string, onStep?: (step: WriteStep) => Promise<void> | void): Promise<void> {
    const tmp = tempPathFor(abs);
    await link(abs, tmp);
    await onStep?.('prev-linked');
    try {
      await rename(tmp, abs + PREV_SUFFIX);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await onStep?.('prev-renamed');
  }

  private async pruneEmptyParents(site: string, rel: string): Promise<void> {
    let dir = rel;
    while (dir !== '') {
      const { abs, stat } = await this.files.locate(site, dir).catch(() => ({ abs: '', stat: null }));
      if (!stat?.isDirectory()) break;
      if ((await readdir(abs)).length > 0) break;
      try {
        await rmdir(abs);
      } catch {
        break;
      }
      dir = parentOf(dir);
    }
  }
}
