import { lstatSync, readdirSync, statSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/**
 * Reads directory trees for index reconciliation (issue 4). Only this file touches the disk for it; the
 * comparison with the index is pure logic in modules/index-sync.
 *
 * Speed matters here (bench/index-rebuild: within 3× of `find -printf '%s %T@ %p'` on a million files), so
 * a directory is listed with one readdir (d_type included) and each entry is lstat-ed, both synchronously:
 * an async lstat costs a thread-pool hop and a promise per file, several times the syscall itself. To keep
 * the server responsive while a background audit runs, the loop yields to the event loop every
 * YIELD_EVERY entries. Symlinks are never followed (lstat, and the caller never descends into them).
 */

export type EntryKind = 'file' | 'dir' | 'symlink' | 'special';

/** One entry of a directory as found on disk. */
export interface DiskEntry {
  /** The name as Node decoded it (invalid UTF-8 bytes become U+FFFD; see `invalidUtf8Hex`). */
  name: string;
  kind: EntryKind;
  /** Bytes, for files; 0 otherwise. */
  size: number;
  /** Modification time in ms since the epoch (fractional). */
  mtimeMs: number;
  /** When the raw name is not valid UTF-8: its bytes in hex, so it can be reported exactly. */
  invalidUtf8Hex?: string;
  /** lstat of this entry failed (e.g. EACCES on a directory without search permission). */
  error?: FsFailure;
}

export interface FsFailure {
  /** errno code such as EACCES, ENOENT, ENOTDIR, EIO. */
  code: string;
  message: string;
}

/** The kind, size and mtime of one path, or null when nothing is there. */
export interface PathState {
  kind: EntryKind;
  size: number;
  mtimeMs: number;
}

interface StatLike {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  size: number;
  mtimeMs: number;
}

/**
 * The filesystem calls the walker makes. The default is node:fs; tests wrap it to inject failures such as
 * EACCES (the suite runs as root, which can read everything) or to change the tree in the middle of a scan.
 */
export interface WalkerFs {
  /** readdir with file types, names decoded as UTF-8. */
  readdir(dir: string): Promise<Dirent[]>;
  /** readdir with raw byte names (only called for directories holding a name with U+FFFD). */
  readdirRaw(dir: string): Promise<Buffer[]>;
  /** lstat; throws an errno error. Returns undefined when the path does not exist. */
  lstat(file: string): StatLike | undefined;
  /** stat, following symlinks (used for the storage and user roots only); undefined when missing. */
  stat(file: string): StatLike | undefined;
}

export const nodeWalkerFs: WalkerFs = {
  // Synchronous on purpose (see the file comment): an async readdir leaves the process idle waiting for
  // the thread pool, which cost a third of an audit's time in bench/index-rebuild.
  readdir: async (dir) => readdirSync(dir, { withFileTypes: true }),
  readdirRaw: async (dir) => readdirSync(dir, { encoding: 'buffer' }),
  lstat: (file) => lstatSync(file, { throwIfNoEntry: false }),
  stat: (file) => statSync(file, { throwIfNoEntry: false }),
};


const YIELD_EVERY = 2048;
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

function kindOf(s: StatLike): EntryKind {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  return 'special';
}

export function toFsFailure(err: unknown): FsFailure {
  const e = err as NodeJS.ErrnoException;
  return { code: typeof e?.code === 'string' ? e.code : 'EIO', message: e instanceof Error ? e.message : String(err) };
}

/** Reads directory trees without following symlinks. */
export class DiskTreeReader {
  constructor(private readonly fs: WalkerFs = nodeWalkerFs) {}

  /**
   * Lists one directory: every entry with its kind, size and mtime. Names for which `skip(name)` is true
   * (temp files of uploads in flight) are left out before any syscall.
   * @throws an errno error when the directory itself cannot be read (EACCES, ENOENT, ENOTDIR…).
   */
  async listDirectory(dir: string, skip: (name: string) => boolean): Promise<DiskEntry[]> {
    const dirents = await this.fs.readdir(dir);
    const entries: DiskEntry[] = [];
    // A lossy name (invalid UTF-8 decoded to U+FFFD) cannot even be lstat-ed by that name: find them first.
    const invalid = dirents.some((d) => d.name.includes('\uFFFD')) ? await this.invalidUtf8Names(dir) : undefined;
    // Plain concatenation: path.join normalises every time, measurable over a million entries.
    const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
    let sinceYield = 0;
    for (const d of dirents) {
      const name = d.name;
      if (skip(name)) continue;
      const hex = invalid?.get(name);
      if (hex !== undefined) {
        entries.push({ name, kind: 'special', size: 0, mtimeMs: 0, invalidUtf8Hex: hex });
        continue;
      }
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
      // d_type already tells symlinks and special files apart: no lstat needed for those.
      if (d.isSymbolicLink()) {
        entries.push({ name, kind: 'symlink', size: 0, mtimeMs: 0 });
        continue;
      }
      if (d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice()) {
        entries.push({ name, kind: 'special', size: 0, mtimeMs: 0 });
        continue;
      }
      try {
        const s = this.fs.lstat(prefix + name);
        // Vanished between readdir and lstat (deleted while we scan): not there, so not listed.
        if (!s) continue;
        const kind = kindOf(s);
        entries.push({ name, kind, size: kind === 'file' ? s.size : 0, mtimeMs: s.mtimeMs });
      } catch (err) {
        entries.push({ name, kind: d.isDirectory() ? 'dir' : 'file', size: 0, mtimeMs: 0, error: toFsFailure(err) });
      }
    }
    return entries;
  }

  /**
   * Node decodes names that are not valid UTF-8 lossily (bytes → U+FFFD), so such a name cannot be opened
   * by the name we hold. Re-read the directory as bytes (rare: only when a U+FFFD appeared): lossy name →
   * raw bytes in hex, for the names that really are invalid.
   */
  private async invalidUtf8Names(dir: string): Promise<Map<string, string>> {
    const invalidByLossyName = new Map<string, string>();
    for (const raw of await this.fs.readdirRaw(dir)) {
      try {
        fatalUtf8.decode(raw);
      } catch {
        invalidByLossyName.set(raw.toString('utf8'), raw.toString('hex'));
      }
    }
    return invalidByLossyName;
  }

  /** The state of one path without following a final symlink, or null when nothing is there. */
  probe(file: string): PathState | null {
    const s = this.fs.lstat(file);
    if (!s) return null;
    const kind = kindOf(s);
    return { kind, size: kind === 'file' ? s.size : 0, mtimeMs: s.mtimeMs };
  }

  /**
   * The state of a root folder (storage root or a user's root), following a symlink: an administrator may
   * place a user's folder on another volume that way. Null when missing.
   */
  probeRoot(dir: string): PathState | null {
    const s = this.fs.stat(dir);
    return s ? { kind: kindOf(s), size: 0, mtimeMs: s.mtimeMs } : null;
  }

  /** Names of the sub-folders of `dir` (for spotting storage-root folders that belong to no user). */
  async listSubdirectories(dir: string): Promise<string[]> {
    const dirents = await this.fs.readdir(dir);
    return dirents.filter((d) => d.isDirectory()).map((d) => d.name);
  }
}
