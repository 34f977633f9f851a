import type { Readable } from 'node:stream';
import type { Clock } from '../../clock.ts';
import type { DbOrTx } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import type { Logger } from '../../logger.ts';
import { AppError } from '../../errors.ts';
import { freeBytes } from '../../storage/disk.ts';
import { isSameOrBelow, nameOf, normalizeUserPath, parentOf } from '../../storage/safe-path.ts';
import { ByteLimitExceeded, UploadAborted, type DiskEntry, type UserFileStore } from '../../storage/user-files.ts';
import { contentTypeFor, DIRECTORY_CONTENT_TYPE } from './content-type.ts';
import type { FilesRepository, NewFile } from './files.repository.ts';
import { toMeta, type DirListing, type FileMeta, type FileRecord } from './files.types.ts';
import { ifMatchPasses, ifNoneMatchPasses } from './http-conditions.ts';
import { KeyedLock } from './keyed-lock.ts';

/** Where a user's quota comes from (the users module). */
export interface QuotaSource {
  /** Bytes the user may store; null = unlimited; undefined = no such user. */
  quotaBytes(userId: string): Promise<number | null | undefined>;
}

export interface FilesServiceDeps {
  /** Opens the transactions that span several index writes (db/transaction.ts). */
  db: DbOrTx;
  repo: FilesRepository;
  store: UserFileStore;
  quotas: QuotaSource;
  clock: Clock;
  storageRoot: string;
  /** Writes are refused (507) when they would leave less than this free on the storage volume. */
  minFreeBytes: number;
  logger?: Pick<Logger, 'error' | 'warn'>;
}

export interface PutOptions {
  /** Declared body length, when the client sent one: lets quota and free space refuse before reading. */
  contentLength?: number;
  ifMatch?: string;
  ifNoneMatch?: string;
}

/** An open file ready to stream, with what the headers need. */
export interface OpenedFile {
  entry: DiskEntry;
  /**
   * The bytes `[start, end]` (inclusive; default the whole file) as the body of an HTTP response: piped into
   * it, it sends from reused buffers (storage/file-body.ts). Closes the file when done. Call once.
   */
  stream(start?: number, end?: number): Readable;
  /** Closes the file without streaming (HEAD, 304, 416). */
  close(): Promise<void>;
  name: string;
  contentType: string;
}

export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 200;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Per-user file storage: the disk (UserFileStore) is the truth and stored_files its index. Every write
 * follows one order so that a crash leaves, at worst, a file on disk without a row (which index
 * reconciliation recovers), never a row without a file:
 * - create/replace/move/copy: stream into a temp file next to the target and fsync, then under the
 *   user's lock open a transaction, write the rows, rename on disk, commit;
 * - delete: commit the row deletion first, then remove from disk.
 */
export class FilesService {
  private readonly lock = new KeyedLock();

  constructor(private readonly deps: FilesServiceDeps) {}

  /** Runs `fn` in one transaction, on a repository bound to it. */
  private transaction<T>(fn: (tx: FilesRepository) => Promise<T>): Promise<T> {
    return inTransaction(this.deps.db, (db) => fn(this.deps.repo.on(db)));
  }

  // ---------------------------------------------------------------- reads

  async meta(userId: string, rawPath: string): Promise<FileMeta> {
    return this.metaNormalized(userId, normalizeUserPath(rawPath, { allowRoot: true }));
  }

  /** As meta(), for a path already normalised (share links resolve theirs from the index). */
  async metaNormalized(userId: string, rel: string): Promise<FileMeta> {
    const entry = await this.deps.store.stat(userId, rel);
    if (!entry) throw notFound(rel);
    if (rel === '') return rootMeta(entry);
    let record = await this.indexed(userId, rel, entry);
    if (!record.isDirectory && record.sha256 === null) {
      // Contract with index reconciliation: rows it creates carry no hash; compute it on first ask.
      const hashed = await this.deps.store.hashFile(userId, rel);
      if (hashed && hashed.entry.etag === entry.etag) {
        await this.deps.repo.setSha256(userId, record.id, hashed.sha256, iso(hashed.entry.mtimeMs), hashed.entry.size);
        record = { ...record, sha256: hashed.sha256 };
      }
    }
    return toMeta(record, entry.etag);
  }

  /**
   * Whether a normalised path is a folder, from the disk alone (share links decide list vs download with
   * it). Unlike metaNormalized it neither reads the index nor hashes the file.
   */
  async isFolderNormalized(userId: string, rel: string): Promise<boolean> {
    const entry = await this.deps.store.stat(userId, rel);
    if (!entry) throw notFound(rel);
    return entry.isDirectory;
  }

  /** Opens a file for download; null when there is none. Needs no index: headers come from the disk. */
  async open(userId: string, rawPath: string): Promise<OpenedFile> {
    const rel = normalizeUserPath(rawPath);
    return this.openNormalized(userId, rel);
  }

  /** As open(), for a path already normalised (share links resolve theirs from the index). */
  async openNormalized(userId: string, rel: string): Promise<OpenedFile> {
    const opened = await this.deps.store.openFile(userId, rel);
    if (!opened) throw notFound(rel);
    const name = nameOf(rel);
    const { handle, entry } = opened;
    return {
      entry,
      name,
      contentType: contentTypeFor(name),
      stream: (start = 0, end = entry.size - 1) => this.deps.store.responseBody(handle, start, end),
      close: () => handle.close(),
    };
  }

  async list(userId: string, rawPath: string, options: { limit?: number; cursor?: string } = {}): Promise<DirListing> {
    const rel = normalizeUserPath(rawPath, { allowRoot: true });
    return this.listNormalized(userId, rel, options);
  }

  async listNormalized(userId: string, rel: string, options: { limit?: number; cursor?: string } = {}): Promise<DirListing> {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new AppError('invalid_request', `limit must be between 1 and ${MAX_LIST_LIMIT}`);
    }
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const entry = await this.deps.store.stat(userId, rel);
    if (!entry) throw notFound(rel);
    if (!entry.isDirectory) throw new AppError('conflict', `${JSON.stringify(rel)} is a file, not a folder`);
    const rows = await this.deps.repo.listChildren(userId, rel, limit + 1, after);
    const page = rows.slice(0, limit);
    return {
      path: rel,
      entries: page.map((r) => toMeta(r, null)),
      next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.name) : null,
    };
  }

  /** The index row of `rawPath`, indexing it first if it exists on disk only (share creation needs an id). */
  async record(userId: string, rawPath: string): Promise<FileRecord> {
    const rel = normalizeUserPath(rawPath);
    const entry = await this.deps.store.stat(userId, rel);
    if (!entry) throw notFound(rel);
    return this.indexed(userId, rel, entry);
  }

  // ---------------------------------------------------------------- writes

  /** Creates or replaces a file from a stream. `created` tells 201 from 200. */
  async put(userId: string, rawPath: string, body: Readable, options: PutOptions = {}): Promise<{ meta: FileMeta; created: boolean }> {
    const rel = normalizeUserPath(rawPath);
    const parent = parentOf(rel);
    const { store, repo } = this.deps;

    // Refuse early, before reading a byte, whatever can be refused from the headers alone.
    const before = await store.stat(userId, rel);
    this.checkPutTarget(rel, before, options);
    const quota = await this.quotaOf(userId);
    const limit = quota === null ? Infinity : Math.max(0, quota - (await repo.usage(userId, rel)));
    if (options.contentLength !== undefined && options.contentLength > limit) throw quotaExceeded(quota!);
    await this.checkFreeSpace(options.contentLength ?? 0);

    const createdDirs = await store.ensureDirs(userId, parent);
    let temp;
    try {
      temp = await store.writeTemp(userId, parent, body, limit);
      if (options.contentLength !== undefined && temp.size !== options.contentLength) {
        throw new AppError('invalid_request', `body had ${temp.size} bytes, Content-Length said ${options.contentLength}`);
      }
      // A chunked upload declared no size: check the floor again now that the bytes are on disk.
      if ((await freeBytes(this.deps.storageRoot)) < this.deps.minFreeBytes) throw insufficientStorage();
    } catch (err) {
      if (temp) await store.discard(temp);
      await store.rollbackDirs(userId, createdDirs);
      if (err instanceof ByteLimitExceeded) throw quotaExceeded(quota!);
      if (['ENOSPC', 'EDQUOT'].includes((err as NodeJS.ErrnoException).code ?? '')) throw insufficientStorage();
      // The client went away mid-body: a 4xx nobody will read, not an "unhandled" 500 in the log.
      if (err instanceof UploadAborted || ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED'].includes((err as NodeJS.ErrnoException).code ?? '')) {
        throw new AppError('invalid_request', 'the upload was interrupted before the whole body arrived; nothing was stored');
      }
      throw err;
    }

    const written = temp;
    let renamed = false;
    try {
      return await this.lock.run(userId, async () => {
        // Someone may have written meanwhile: every check again, now race-free.
        const current = await store.stat(userId, rel);
        this.checkPutTarget(rel, current, options);
        if (quota !== null) {
          const used = await repo.usage(userId, rel);
          if (used + written.size > quota) throw quotaExceeded(quota);
        }
        const now = this.deps.clock.now().toISOString();
        // One stat of the committed file serves both the row and the ETag of the answer.
        const { record, entry } = await this.transaction(async (tx) => {
          await tx.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(rel), now));
          await store.commit(userId, written, rel);
          renamed = true;
          const entry = (await store.stat(userId, rel))!;
          return { record: await tx.upsert(this.fileRow(userId, rel, entry, written.sha256, now)), entry };
        });
        return { meta: toMeta(record, entry.etag), created: current === null };
      });
    } catch (err) {
      if (!renamed) {
        await store.discard(written);
        await store.rollbackDirs(userId, createdDirs);
        // The folder (and our temp file in it) was deleted while the body was arriving.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new AppError('conflict', `the folder of ${JSON.stringify(rel)} was removed during the upload; nothing was stored`);
        }
      }
      throw err;
    }
  }

  /** Creates a folder and its parents. `created` is false when it already existed. */
  async mkdir(userId: string, rawPath: string): Promise<{ meta: FileMeta; created: boolean }> {
    const rel = normalizeUserPath(rawPath);
    const { store, repo } = this.deps;
    return this.lock.run(userId, async () => {
      const existing = await store.stat(userId, rel);
      if (existing && !existing.isDirectory) throw new AppError('already_exists', `a file exists at ${JSON.stringify(rel)}`);
      if (!existing) await this.checkFreeSpace(0);
      const createdDirs = await store.ensureDirs(userId, rel);
      try {
        const now = this.deps.clock.now().toISOString();
        await repo.insertIgnoringExisting(this.folderRows(userId, [...ancestorsOf(rel), rel], now));
      } catch (err) {
        await store.rollbackDirs(userId, createdDirs);
        throw err;
      }
      const entry = (await store.stat(userId, rel))!;
      return { meta: toMeta(await this.indexed(userId, rel, entry, true), null), created: createdDirs.length > 0 };
    });
  }

  /** Deletes a file, or a folder (non-empty ones only with `recursive`). */
  async delete(userId: string, rawPath: string, options: { recursive?: boolean } = {}): Promise<void> {
    const rel = normalizeUserPath(rawPath);
    const { store, repo } = this.deps;
    await this.lock.run(userId, async () => {
      const entry = await store.stat(userId, rel);
      if (!entry) {
        // Not on disk: the disk wins. Drop a stale row if there was one, and say so.
        await repo.deleteSubtree(userId, rel);
        throw notFound(rel);
      }
      if (entry.isDirectory && !options.recursive && (await store.hasChildren(userId, rel))) {
        throw new AppError('not_empty', `${JSON.stringify(rel)} is a folder that is not empty; pass recursive=true to delete it with its content`);
      }
      // Index first: a crash between the two leaves files without rows (recoverable), never rows without files.
      await repo.deleteSubtree(userId, rel);
      await store.remove(userId, rel);
    });
  }

  /**
   * Moves (renames) a file or folder, keeping its index rows (and so its share links). Crash-safe through
   * a journal on the row: pending_path is committed before the rename and cleared with the row update,
   * and recoverInterruptedMoves() finishes or undoes a move a crash cut in between. A replaced target
   * that is (or is replaced by) a folder is deleted first, like DELETE (index, then disk).
   */
  async move(userId: string, rawFrom: string, rawTo: string, options: { overwrite?: boolean } = {}): Promise<FileMeta> {
    const { from, to } = this.checkTransfer(rawFrom, rawTo, 'move');
    const { store, repo } = this.deps;
    return this.lock.run(userId, async () => {
      const src = await store.stat(userId, from);
      if (!src) throw notFound(from);
      let dst = await store.stat(userId, to);
      if (dst && !options.overwrite) throw new AppError('already_exists', `${JSON.stringify(to)} already exists; pass overwrite=true to replace it`);
      // The rows must exist to be moved (and keep their ids): index what only the disk knows so far.
      await this.indexTree(userId, from, src);
      if (dst && (dst.isDirectory || src.isDirectory)) {
        // rename() cannot replace a folder, or a file by a folder: remove the target first.
        await repo.deleteSubtree(userId, to);
        await store.remove(userId, to);
        dst = null;
      }
      const createdDirs = await store.ensureDirs(userId, parentOf(to));
      await repo.markPendingMove(userId, from, to);
      try {
        await store.move(userId, from, to);
      } catch (err) {
        await repo.clearPendingMove(userId, from);
        await store.rollbackDirs(userId, createdDirs);
        throw err;
      }
      try {
        await this.finishMove(userId, from, to);
      } catch (err) {
        // The disk has moved; the journal lets the next start finish the index side.
        this.deps.logger?.error({ err, userId, from, to }, 'move: renamed on disk but the index update failed; it will be finished at the next start');
        throw err;
      }
      return this.metaOf(userId, to);
    });
  }

  /** The index half of a move whose rename is done: rows follow, a replaced target's rows go. */
  private async finishMove(userId: string, from: string, to: string): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await this.transaction(async (tx) => {
      await tx.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(to), now));
      await tx.deleteSubtree(userId, to);
      await tx.moveSubtree(userId, from, to, nameOf(to), parentOf(to), now);
    });
  }

  /**
   * Resolves moves a crash interrupted (rows still carrying pending_path), against the disk: if the
   * entry is at its destination and gone from its origin the rename happened, so the rows follow;
   * otherwise it did not, and the journal entry is dropped. Run at start-up, before serving.
   * Returns how many were finished and how many undone.
   */
  async recoverInterruptedMoves(): Promise<{ finished: number; undone: number }> {
    const result = { finished: 0, undone: 0 };
    for (const { ownerId, from, to } of await this.deps.repo.pendingMoves()) {
      await this.lock.run(ownerId, async () => {
        const statOrNull = (rel: string) => this.deps.store.stat(ownerId, rel).catch(() => null);
        const [atFrom, atTo] = [await statOrNull(from), await statOrNull(to)];
        if (atTo && !atFrom) {
          await this.finishMove(ownerId, from, to);
          result.finished++;
        } else {
          await this.deps.repo.clearPendingMove(ownerId, from);
          result.undone++;
        }
      });
    }
    return result;
  }

  /** Copies a file or folder tree; the copy gets new rows (share links stay with the original). */
  async copy(userId: string, rawFrom: string, rawTo: string, options: { overwrite?: boolean } = {}): Promise<FileMeta> {
    const { from, to } = this.checkTransfer(rawFrom, rawTo, 'copy');
    const { store, repo } = this.deps;
    const src = await store.stat(userId, from);
    if (!src) throw notFound(from);
    const preDst = await store.stat(userId, to);
    if (preDst && !options.overwrite) throw new AppError('already_exists', `${JSON.stringify(to)} already exists; pass overwrite=true to replace it`);
    const size = src.isDirectory ? (await store.walk(userId, from)).reduce((sum, e) => sum + e.entry.size, 0) : src.size;
    const quota = await this.quotaOf(userId);
    const checkQuota = async () => {
      if (quota === null) return;
      const replaced = options.overwrite ? await repo.subtreeSize(userId, to) : 0;
      if ((await repo.usage(userId)) - replaced + size > quota) throw quotaExceeded(quota);
    };
    await checkQuota();
    await this.checkFreeSpace(size);

    const createdDirs = await store.ensureDirs(userId, parentOf(to));
    let temp: Awaited<ReturnType<UserFileStore['copyToTemp']>> | undefined;
    let committed = false;
    try {
      temp = await store.copyToTemp(userId, from, parentOf(to));
      const copied = temp;
      const hashes = new Map((await repo.subtree(userId, from)).map((r) => [r.path, r]));
      return await this.lock.run(userId, async () => {
        const dst = await store.stat(userId, to);
        if (dst && !options.overwrite) throw new AppError('already_exists', `${JSON.stringify(to)} already exists; pass overwrite=true to replace it`);
        await checkQuota();
        if (dst && (dst.isDirectory || src.isDirectory)) {
          // rename() cannot replace a folder, or a file by a folder: remove the target first, like DELETE.
          await repo.deleteSubtree(userId, to);
          await store.remove(userId, to);
        }
        const now = this.deps.clock.now().toISOString();
        await this.transaction(async (tx) => {
          await tx.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(to), now));
          if (dst) await tx.deleteSubtree(userId, to);
          const rows = copied.copied.map(({ rel, entry }) => {
            const dstPath = rel === '' ? to : `${to}/${rel}`;
            if (entry.isDirectory) return this.folderRow(userId, dstPath, now, entry.mtimeMs);
            const original = hashes.get(rel === '' ? from : `${from}/${rel}`);
            const sha = original && original.size === entry.size ? original.sha256 : null;
            return this.fileRow(userId, dstPath, entry, sha, now);
          });
          await tx.insertIgnoringExisting(rows);
          await store.commit(userId, copied, to);
          committed = true;
        });
        return this.metaOf(userId, to);
      });
    } catch (err) {
      if (temp && !committed) await store.discard(temp);
      if (!committed) await store.rollbackDirs(userId, createdDirs);
      if (['ENOSPC', 'EDQUOT'].includes((err as NodeJS.ErrnoException).code ?? '')) throw insufficientStorage();
      throw err;
    }
  }

  // ---------------------------------------------------------------- helpers

  private checkPutTarget(rel: string, current: DiskEntry | null, options: PutOptions): void {
    if (current?.isDirectory) throw new AppError('conflict', `${JSON.stringify(rel)} is a folder`);
    const etag = current?.etag ?? null;
    if (!ifMatchPasses(options.ifMatch, etag)) {
      throw new AppError('precondition_failed', `If-Match failed: ${JSON.stringify(rel)} ${etag ? `is at ${etag}` : 'does not exist'}`);
    }
    if (options.ifNoneMatch !== undefined && !ifNoneMatchPasses(options.ifNoneMatch, etag)) {
      throw new AppError('precondition_failed', `If-None-Match failed: ${JSON.stringify(rel)} exists`);
    }
  }

  private checkTransfer(rawFrom: string, rawTo: string, verb: 'move' | 'copy'): { from: string; to: string } {
    const from = normalizeUserPath(rawFrom);
    const to = normalizeUserPath(rawTo);
    if (from === to) throw new AppError('invalid_request', `cannot ${verb} ${JSON.stringify(from)} onto itself`);
    if (isSameOrBelow(to, from)) throw new AppError('invalid_request', `cannot ${verb} ${JSON.stringify(from)} into itself`);
    if (isSameOrBelow(from, to)) {
      // Replacing an ancestor of the source would delete the source first.
      throw new AppError('invalid_request', `cannot ${verb} ${JSON.stringify(from)} over its own parent folder`);
    }
    return { from, to };
  }

  private async quotaOf(userId: string): Promise<number | null> {
    const quota = await this.deps.quotas.quotaBytes(userId);
    if (quota === undefined) throw new AppError('unauthorized', 'user no longer exists');
    return quota;
  }

  private async checkFreeSpace(incoming: number): Promise<void> {
    const free = await freeBytes(this.deps.storageRoot);
    if (free - incoming < this.deps.minFreeBytes) throw insufficientStorage();
  }

  /**
   * Index row for an entry that exists on disk, created or corrected (the disk wins) if needed. A
   * correction runs under the user's lock from a fresh look at the disk, so a write committing meanwhile
   * cannot be overwritten with what we saw before it. Callers already holding the lock say so (the lock
   * is not reentrant).
   */
  private async indexed(userId: string, rel: string, entry: DiskEntry, holdingLock = false): Promise<FileRecord> {
    const row = await this.deps.repo.findByPath(userId, rel);
    const modifiedAt = iso(entry.mtimeMs);
    if (row && row.isDirectory === entry.isDirectory && (entry.isDirectory || (row.size === entry.size && row.modifiedAt === modifiedAt))) {
      return row;
    }
    const correct = async () => {
      const fresh = (await this.deps.store.stat(userId, rel)) ?? entry;
      const now = this.deps.clock.now().toISOString();
      await this.deps.repo.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(rel), now));
      return this.deps.repo.upsert(fresh.isDirectory ? this.folderRow(userId, rel, now, fresh.mtimeMs) : this.fileRow(userId, rel, fresh, null, now));
    };
    return holdingLock ? correct() : this.lock.run(userId, correct);
  }

  /** Indexes `rel` and, for a folder, everything below it that has no row yet. */
  private async indexTree(userId: string, rel: string, entry: DiskEntry): Promise<void> {
    await this.indexed(userId, rel, entry, true);
    if (!entry.isDirectory) return;
    const below = await this.deps.store.walk(userId, rel);
    const known = new Set((await this.deps.repo.subtree(userId, rel)).map((r) => r.path));
    const now = this.deps.clock.now().toISOString();
    const missing = below
      .filter((e) => !known.has(e.path))
      .map((e) => (e.entry.isDirectory ? this.folderRow(userId, e.path, now, e.entry.mtimeMs) : this.fileRow(userId, e.path, e.entry, null, now)));
    await this.deps.repo.insertIgnoringExisting(missing);
  }

  /** Metadata after a write, called under the user's lock. */
  private async metaOf(userId: string, rel: string): Promise<FileMeta> {
    const entry = await this.deps.store.stat(userId, rel);
    if (!entry) throw notFound(rel);
    return toMeta(await this.indexed(userId, rel, entry, true), entry.etag);
  }

  private fileRow(userId: string, rel: string, entry: DiskEntry, sha256: string | null, now: string): NewFile {
    return {
      ownerId: userId,
      path: rel,
      name: nameOf(rel),
      parentPath: parentOf(rel),
      size: entry.size,
      contentType: contentTypeFor(nameOf(rel)),
      isDirectory: false,
      sha256,
      modifiedAt: iso(entry.mtimeMs),
      createdAt: now,
      updatedAt: now,
    };
  }

  private folderRow(userId: string, rel: string, now: string, mtimeMs?: number): NewFile {
    return {
      ownerId: userId,
      path: rel,
      name: nameOf(rel),
      parentPath: parentOf(rel),
      size: 0,
      contentType: DIRECTORY_CONTENT_TYPE,
      isDirectory: true,
      sha256: null,
      modifiedAt: mtimeMs === undefined ? now : iso(mtimeMs),
      createdAt: now,
      updatedAt: now,
    };
  }

  private folderRows(userId: string, paths: string[], now: string): NewFile[] {
    return paths.map((p) => this.folderRow(userId, p, now));
  }
}

/** 'a/b/c' → ['a', 'a/b'] (not the path itself, not the root). */
function ancestorsOf(rel: string): string[] {
  const segments = rel.split('/');
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
}

function rootMeta(entry: DiskEntry): FileMeta {
  return {
    path: '',
    name: '',
    size: 0,
    content_type: DIRECTORY_CONTENT_TYPE,
    is_directory: true,
    sha256: null,
    modified_at: iso(entry.mtimeMs),
    created_at: iso(entry.mtimeMs),
    etag: null,
  };
}

function encodeCursor(afterName: string): string {
  return Buffer.from(JSON.stringify({ a: afterName }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { a?: unknown };
    if (typeof parsed.a === 'string') return parsed.a;
  } catch {
    // fall through
  }
  throw new AppError('invalid_request', 'invalid cursor: pass next_cursor from a previous page unchanged');
}

function notFound(rel: string): AppError {
  return new AppError('not_found', `no file or folder at ${JSON.stringify(rel)}`);
}

function quotaExceeded(quota: number): AppError {
  return new AppError('quota_exceeded', `this would exceed your quota of ${quota} bytes`, { quota_bytes: quota });
}

function insufficientStorage(): AppError {
  return new AppError('insufficient_storage', 'the server is low on disk space; the write was refused');
}
