import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Clock } from '../../clock.ts';
import { KeyedLock, type KeyedMutex } from '../../coordination/keyed-lock.ts';
import type { DbOrTx } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import type { Logger } from '../../logger.ts';
import { AppError } from '../../errors.ts';
import {
  BlobConflict,
  BlobNotFound,
  BlobStoreError,
  InvalidBlobKey,
  LimitExceeded,
  StorageFull,
  UploadAborted,
  type BlobStat,
  type BlobStore,
  type StagedBlob,
  type StagedCopy,
} from '../../storage/blob-store.port.ts';
import { isSameOrBelow, nameOf, normalizeUserPath, parentOf } from '../../storage/safe-path.ts';
import { contentTypeFor, DIRECTORY_CONTENT_TYPE } from './content-type.ts';
import { userFileKey, userPathOf, userRootKey } from './files-layout.ts';
import type { FilesRepository, NewFile } from './files.repository.ts';
import { toMeta, type DirListing, type FileEntry, type FileMeta, type FileRecord } from './files.types.ts';
import { ifMatchPasses, ifNoneMatchPasses } from './http-conditions.ts';

/** Where a user's quota comes from (the users module). */
export interface QuotaSource {
  /** Bytes the user may store; null = unlimited; undefined = no such user. */
  quotaBytes(userId: string): Promise<number | null | undefined>;
}

export interface FilesServiceDeps {
  /** Opens the transactions that span several index writes (db/transaction.ts). */
  db: DbOrTx;
  repo: FilesRepository;
  /** Holds every user's files under keys `<user_id>/<path>` (files-layout.ts): an fs store rooted at the storage root. */
  store: BlobStore;
  quotas: QuotaSource;
  clock: Clock;
  /** Writes are refused (507) when they would leave less than this free on the storage volume (checked as uploads stream too). */
  minFreeBytes: number;
  logger?: Pick<Logger, 'error' | 'warn'>;
  /** The per-user write lock; across processes when several share the storage (issue 12). Default: this process only. */
  lock?: KeyedMutex;
}

export interface PutOptions {
  /** Declared body length, when the client sent one: lets quota and free space refuse before reading. */
  contentLength?: number;
  ifMatch?: string;
  ifNoneMatch?: string;
}

/** An open file ready to stream, with what the headers need. */
export interface OpenedFile {
  entry: FileEntry & { etag: string };
  /**
   * The bytes `[start, end]` (inclusive; default the whole file) as the body of an HTTP response: piped into
   * it, the fs store sends from reused buffers (storage/file-body.ts). Closes the file when done. Call once.
   */
  stream(start?: number, end?: number): Readable;
  /** Closes the file without streaming (HEAD, 304, 416). */
  close(): Promise<void>;
  name: string;
  contentType: string;
}

/**
 * Index writes of another module that must commit or roll back with a write of this one (WebDAV: dead
 * properties and locks follow their resource, issue 13). Runs inside the files transaction, on its
 * handle, after this module's own index writes and before the change becomes visible on disk where the
 * order allows (delete: the disk follows the commit; copy: the disk commit is inside the transaction;
 * move: the rename comes first, its index half is this transaction).
 */
export type AlsoInTransaction = (tx: DbOrTx) => Promise<void>;

export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 200;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Per-user file storage: the BlobStore (the disk) is the truth and stored_files its index. Every write
 * follows one order so that a crash leaves, at worst, a file on disk without a row (which index
 * reconciliation recovers), never a row without a file:
 * - create/replace/move/copy: stream into a temp file next to the target and fsync, then under the
 *   user's lock open a transaction, write the rows, rename on disk, commit;
 * - delete: commit the row deletion first, then remove from disk.
 */
export class FilesService {
  private readonly lock: KeyedMutex;

  constructor(private readonly deps: FilesServiceDeps) {
    this.lock = deps.lock ?? new KeyedLock();
  }

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
    const entry = await this.entryAt(userId, rel);
    // A user who never wrote has no folder yet: their root is empty, and reading it creates nothing.
    if (!entry && rel === '') return rootMeta(this.deps.clock.now().getTime());
    if (!entry) throw notFound(rel);
    if (rel === '') return rootMeta(entry.mtimeMs);
    let record = await this.indexed(userId, rel, entry);
    if (!record.isDirectory && record.sha256 === null) {
      // Contract with index reconciliation: rows it creates carry no hash; compute it on first ask.
      const hashed = await this.hashFile(userId, rel);
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
    const entry = await this.entryAt(userId, rel);
    if (!entry && rel === '') return true;
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
    let handle;
    try {
      handle = await this.deps.store.open(userFileKey(userId, rel));
    } catch (err) {
      if (err instanceof BlobNotFound) throw notFound(rel);
      throw filesError(err, userId, rel);
    }
    const name = nameOf(rel);
    const entry = toEntry(handle.stat) as FileEntry & { etag: string };
    const opened = handle;
    return {
      entry,
      name,
      contentType: contentTypeFor(name),
      stream: (start = 0, end = entry.size - 1) => opened.stream({ start, end }),
      close: () => opened.close(),
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
    const entry = await this.entryAt(userId, rel);
    if (!entry && rel === '') return { path: '', entries: [], next_cursor: null };
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

  /**
   * Every child of a folder, with its ETag: size, time and version from one listing of the store, the rest
   * from the index. For WebDAV PROPFIND Depth 1 (issue 13): a metaNormalized() per child cost a stat per
   * path segment and an index query each, 2.6 s for 10,000 files. Membership is the index's, as in list();
   * a row whose entry is gone from the disk, or is now the other kind, is left out (the disk wins, and
   * index reconciliation corrects the row). Unlike metaNormalized() it neither corrects rows nor hashes:
   * a file changed behind our back shows its size and time from the disk and no sha256.
   */
  async listAllNormalized(userId: string, rel: string): Promise<FileMeta[]> {
    const entry = await this.entryAt(userId, rel);
    if (!entry && rel === '') return [];
    if (!entry) throw notFound(rel);
    if (!entry.isDirectory) throw new AppError('conflict', `${JSON.stringify(rel)} is a file, not a folder`);
    let listed;
    try {
      listed = await this.deps.store.list(userFileKey(userId, rel));
    } catch (err) {
      throw filesError(err, userId, rel);
    }
    const metas = await this.deps.repo.childMetas(userId, rel);
    const onDisk = new Map(listed.map((e) => [e.name, e]));
    const out: FileMeta[] = [];
    for (const m of metas) {
      const st = onDisk.get(m.name);
      if (!st || (st.kind === 'folder') !== m.is_directory) continue;
      if (m.is_directory) {
        out.push(m);
        continue;
      }
      const modifiedAt = iso(st.mtimeMs);
      const etag = toEntry(st).etag;
      // The metas are fresh objects of this call: completed in place rather than copied.
      m.etag = etag;
      if (m.size !== st.size || m.modified_at !== modifiedAt) Object.assign(m, { size: st.size, modified_at: modifiedAt, sha256: null });
      out.push(m);
    }
    return out;
  }

  /** The index row of `rawPath`, indexing it first if it exists on disk only (share creation needs an id). */
  async record(userId: string, rawPath: string): Promise<FileRecord> {
    const rel = normalizeUserPath(rawPath);
    const entry = await this.entryAt(userId, rel);
    if (!entry) throw notFound(rel);
    return this.indexed(userId, rel, entry);
  }

  /** Bytes the user stores (per the index) and their quota (null = unlimited): WebDAV's RFC 4331 properties. */
  async usage(userId: string): Promise<{ usedBytes: number; quotaBytes: number | null }> {
    const [usedBytes, quotaBytes] = await Promise.all([this.deps.repo.usage(userId), this.quotaOf(userId)]);
    return { usedBytes, quotaBytes };
  }

  // ---------------------------------------------------------------- writes

  /** Creates or replaces a file from a stream. `created` tells 201 from 200. */
  async put(userId: string, rawPath: string, body: Readable, options: PutOptions = {}): Promise<{ meta: FileMeta; created: boolean }> {
    const rel = normalizeUserPath(rawPath);
    const parent = parentOf(rel);
    const { store, repo } = this.deps;

    // Refuse early, before reading a byte, whatever can be refused from the headers alone.
    const before = await this.entryAt(userId, rel);
    this.checkPutTarget(rel, before, options);
    const quota = await this.quotaOf(userId);
    const limit = quota === null ? Infinity : Math.max(0, quota - (await repo.usage(userId, rel)));
    if (options.contentLength !== undefined && options.contentLength > limit) throw quotaExceeded(quota!);
    await this.checkFreeSpace(options.contentLength ?? 0);

    const createdDirs = await this.ensureFolder(userId, parent);
    let staged: StagedBlob | undefined;
    try {
      // The floor is checked as the bytes arrive (issue 12): a chunked upload that would fill the volume
      // stops at the floor instead of taking other users' writes down with it.
      staged = await store.stage(userFileKey(userId, rel), body, {
        maxBytes: limit,
        minFreeBytes: this.deps.minFreeBytes > 0 ? this.deps.minFreeBytes : undefined,
      });
      if (options.contentLength !== undefined && staged.size !== options.contentLength) {
        throw new AppError('invalid_request', `body had ${staged.size} bytes, Content-Length said ${options.contentLength}`);
      }
      // The stage left room for its next unchecked stretch; check the floor once more now that all bytes are on disk.
      await this.checkFreeSpace(0);
    } catch (err) {
      if (staged) await staged.abort();
      await store.removeEmptyFolders(createdDirs);
      if (err instanceof LimitExceeded) throw quotaExceeded(quota!);
      // The client went away mid-body: a 4xx nobody will read, not an "unhandled" 500 in the log.
      if (err instanceof UploadAborted) throw new AppError('invalid_request', 'the upload was interrupted before the whole body arrived; nothing was stored');
      throw filesError(err, userId, rel);
    }

    const written = staged;
    let renamed = false;
    try {
      return await this.lock.run(userId, async () => {
        // Someone may have written meanwhile: every check again, now race-free.
        const current = await this.entryAt(userId, rel);
        this.checkPutTarget(rel, current, options);
        if (quota !== null) {
          const used = await repo.usage(userId, rel);
          if (used + written.size > quota) throw quotaExceeded(quota);
        }
        const now = this.deps.clock.now().toISOString();
        // The stat of the committed file serves both the row and the ETag of the answer.
        const { record, entry } = await this.transaction(async (tx) => {
          await tx.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(rel), now));
          const entry = toEntry(await written.commit());
          renamed = true;
          return { record: await tx.upsert(this.fileRow(userId, rel, entry, written.sha256, now)), entry };
        });
        return { meta: toMeta(record, entry.etag), created: current === null };
      });
    } catch (err) {
      if (!renamed) {
        await written.abort();
        await store.removeEmptyFolders(createdDirs);
        // The folder (and our temp file in it) was deleted while the body was arriving.
        if (err instanceof BlobNotFound) {
          throw new AppError('conflict', `the folder of ${JSON.stringify(rel)} was removed during the upload; nothing was stored`);
        }
      }
      throw filesError(err, userId, rel);
    }
  }

  /** Creates a folder and its parents. `created` is false when it already existed. */
  async mkdir(userId: string, rawPath: string, options: { alsoInTransaction?: AlsoInTransaction } = {}): Promise<{ meta: FileMeta; created: boolean }> {
    const rel = normalizeUserPath(rawPath);
    const { store, repo } = this.deps;
    return this.lock.run(userId, async () => {
      const existing = await this.entryAt(userId, rel);
      if (existing && !existing.isDirectory) throw new AppError('already_exists', `a file exists at ${JSON.stringify(rel)}`);
      if (!existing) await this.checkFreeSpace(0);
      const createdDirs = await this.ensureFolder(userId, rel);
      try {
        const now = this.deps.clock.now().toISOString();
        const rows = this.folderRows(userId, [...ancestorsOf(rel), rel], now);
        const also = options.alsoInTransaction;
        if (also) {
          await inTransaction(this.deps.db, async (db) => {
            await repo.on(db).insertIgnoringExisting(rows);
            await also(db);
          });
        } else await repo.insertIgnoringExisting(rows);
      } catch (err) {
        await store.removeEmptyFolders(createdDirs);
        throw err;
      }
      const entry = (await this.entryAt(userId, rel))!;
      return { meta: toMeta(await this.indexed(userId, rel, entry, true), null), created: createdDirs.length > 0 };
    });
  }

  /** Deletes a file, or a folder (non-empty ones only with `recursive`). */
  async delete(userId: string, rawPath: string, options: { recursive?: boolean; alsoInTransaction?: AlsoInTransaction } = {}): Promise<void> {
    const rel = normalizeUserPath(rawPath);
    const { store, repo } = this.deps;
    await this.lock.run(userId, async () => {
      const entry = await this.entryAt(userId, rel);
      if (!entry) {
        // Not on disk: the disk wins. Drop a stale row if there was one, and say so.
        await repo.deleteSubtree(userId, rel);
        throw notFound(rel);
      }
      // hasEntries counts uploads in flight too: a folder receiving one is not empty.
      if (entry.isDirectory && !options.recursive && (await store.hasEntries(userFileKey(userId, rel)))) {
        throw new AppError('not_empty', `${JSON.stringify(rel)} is a folder that is not empty; pass recursive=true to delete it with its content`);
      }
      // Index first: a crash between the two leaves files without rows (recoverable), never rows without files.
      const also = options.alsoInTransaction;
      if (also) {
        await inTransaction(this.deps.db, async (db) => {
          await repo.on(db).deleteSubtree(userId, rel);
          await also(db);
        });
      } else await repo.deleteSubtree(userId, rel);
      await this.removeAt(userId, rel);
    });
  }

  /**
   * Moves (renames) a file or folder, keeping its index rows (and so its share links). Crash-safe through
   * a journal on the row: pending_path is committed before the rename and cleared with the row update,
   * and recoverInterruptedMoves() finishes or undoes a move a crash cut in between. A replaced target
   * that is (or is replaced by) a folder is deleted first, like DELETE (index, then disk).
   */
  async move(userId: string, rawFrom: string, rawTo: string, options: { overwrite?: boolean; alsoInTransaction?: AlsoInTransaction } = {}): Promise<FileMeta> {
    const { from, to } = this.checkTransfer(rawFrom, rawTo, 'move');
    const { store, repo } = this.deps;
    return this.lock.run(userId, async () => {
      const src = await this.entryAt(userId, from);
      if (!src) throw notFound(from);
      let dst = await this.entryAt(userId, to);
      if (dst && !options.overwrite) throw new AppError('already_exists', `${JSON.stringify(to)} already exists; pass overwrite=true to replace it`);
      // The rows must exist to be moved (and keep their ids): index what only the disk knows so far.
      await this.indexTree(userId, from, src);
      if (dst && (dst.isDirectory || src.isDirectory)) {
        // A rename cannot replace a folder, or a file by a folder: remove the target first.
        await repo.deleteSubtree(userId, to);
        await this.removeAt(userId, to);
        dst = null;
      }
      const createdDirs = await this.ensureFolder(userId, parentOf(to));
      await repo.markPendingMove(userId, from, to);
      try {
        await store.move(userFileKey(userId, from), userFileKey(userId, to));
      } catch (err) {
        await repo.clearPendingMove(userId, from);
        await store.removeEmptyFolders(createdDirs);
        throw filesError(err, userId, to);
      }
      try {
        await this.finishMove(userId, from, to, options.alsoInTransaction);
      } catch (err) {
        // The disk has moved; the journal lets the next start finish the index side.
        this.deps.logger?.error({ err, userId, from, to }, 'move: renamed on disk but the index update failed; it will be finished at the next start');
        throw err;
      }
      return this.metaOf(userId, to);
    });
  }

  /** The index half of a move whose rename is done: rows follow, a replaced target's rows go. */
  private async finishMove(userId: string, from: string, to: string, also?: AlsoInTransaction): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await inTransaction(this.deps.db, async (db) => {
      const tx = this.deps.repo.on(db);
      await tx.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(to), now));
      await tx.deleteSubtree(userId, to);
      await tx.moveSubtree(userId, from, to, nameOf(to), parentOf(to), now);
      if (also) await also(db);
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
        const statOrNull = (rel: string) => this.entryAt(ownerId, rel).catch(() => null);
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
  async copy(userId: string, rawFrom: string, rawTo: string, options: { overwrite?: boolean; alsoInTransaction?: AlsoInTransaction } = {}): Promise<FileMeta> {
    const { from, to } = this.checkTransfer(rawFrom, rawTo, 'copy');
    const { store, repo } = this.deps;
    const src = await this.entryAt(userId, from);
    if (!src) throw notFound(from);
    const preDst = await this.entryAt(userId, to);
    if (preDst && !options.overwrite) throw new AppError('already_exists', `${JSON.stringify(to)} already exists; pass overwrite=true to replace it`);
    const size = src.isDirectory ? (await this.walk(userId, from)).reduce((sum, e) => sum + e.size, 0) : src.size;
    const quota = await this.quotaOf(userId);
    const checkQuota = async () => {
      if (quota === null) return;
      const replaced = options.overwrite ? await repo.subtreeSize(userId, to) : 0;
      if ((await repo.usage(userId)) - replaced + size > quota) throw quotaExceeded(quota);
    };
    await checkQuota();
    await this.checkFreeSpace(size);

    const createdDirs = await this.ensureFolder(userId, parentOf(to));
    let staged: StagedCopy | undefined;
    let committed = false;
    try {
      staged = await store.stageCopy(userFileKey(userId, from), userFileKey(userId, to));
      const copied = staged;
      const hashes = new Map((await repo.subtree(userId, from)).map((r) => [r.path, r]));
      return await this.lock.run(userId, async () => {
        const dst = await this.entryAt(userId, to);
        if (dst && !options.overwrite) throw new AppError('already_exists', `${JSON.stringify(to)} already exists; pass overwrite=true to replace it`);
        await checkQuota();
        if (dst && (dst.isDirectory || src.isDirectory)) {
          // A rename cannot replace a folder, or a file by a folder: remove the target first, like DELETE.
          await repo.deleteSubtree(userId, to);
          await this.removeAt(userId, to);
        }
        const now = this.deps.clock.now().toISOString();
        await inTransaction(this.deps.db, async (db) => {
          const tx = this.deps.repo.on(db);
          await tx.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(to), now));
          if (dst) await tx.deleteSubtree(userId, to);
          const rows = copied.entries.map((entry) => {
            const dstPath = entry.rel === '' ? to : `${to}/${entry.rel}`;
            if (entry.kind === 'folder') return this.folderRow(userId, dstPath, now, entry.mtimeMs);
            const original = hashes.get(entry.rel === '' ? from : `${from}/${entry.rel}`);
            const sha = original && original.size === entry.size ? original.sha256 : null;
            return this.fileRow(userId, dstPath, entry, sha, now);
          });
          await tx.insertIgnoringExisting(rows);
          if (options.alsoInTransaction) await options.alsoInTransaction(db);
          await copied.commit();
          committed = true;
        });
        return this.metaOf(userId, to);
      });
    } catch (err) {
      if (staged && !committed) await staged.abort();
      if (!committed) await store.removeEmptyFolders(createdDirs);
      throw filesError(err, userId, to);
    }
  }

  // ---------------------------------------------------------------- helpers

  private checkPutTarget(rel: string, current: FileEntry | null, options: PutOptions): void {
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
    const free = await this.deps.store.freeBytes();
    if (free !== null && free - incoming < this.deps.minFreeBytes) throw insufficientStorage();
  }

  // ------------------------------------------------- the store, in user paths and the files module's errors

  /** What the store holds at a user path, or null. Never creates anything (not even the user's root). */
  private async entryAt(userId: string, rel: string): Promise<FileEntry | null> {
    try {
      const st = await this.deps.store.stat(userFileKey(userId, rel));
      return st && toEntry(st);
    } catch (err) {
      throw filesError(err, userId, rel);
    }
  }

  /**
   * Creates the folder and its parents and returns the keys it created, for removeEmptyFolders. The user's
   * root is created by the first write (as before the BlobStore port) and never rolled back; reads never
   * create it (issue 12).
   */
  private async ensureFolder(userId: string, rel: string): Promise<string[]> {
    try {
      await this.deps.store.ensureFolder(userRootKey(userId));
      return rel === '' ? [] : await this.deps.store.ensureFolder(userFileKey(userId, rel));
    } catch (err) {
      throw filesError(err, userId, rel);
    }
  }

  private async removeAt(userId: string, rel: string): Promise<void> {
    if (rel === '') throw new AppError('invalid_path', 'the root folder cannot be removed');
    try {
      await this.deps.store.remove(userFileKey(userId, rel));
    } catch (err) {
      throw filesError(err, userId, rel);
    }
  }

  /** Every file and folder below `rel` (not `rel` itself), as user paths; links and odd names are left out. */
  private async walk(userId: string, rel: string): Promise<Array<{ path: string; isDirectory: boolean; size: number; mtimeMs: number }>> {
    const out: Array<{ path: string; isDirectory: boolean; size: number; mtimeMs: number }> = [];
    try {
      for await (const batch of this.deps.store.scan(userFileKey(userId, rel))) {
        for (const e of batch) {
          if (e.kind === 'file' || e.kind === 'folder') out.push({ path: userPathOf(userId, e.key), isDirectory: e.kind === 'folder', size: e.size, mtimeMs: e.mtimeMs });
        }
      }
    } catch (err) {
      throw filesError(err, userId, rel);
    }
    return out;
  }

  /** sha256 of a file, streamed; null if it vanished. Also returns the entry it hashed, to detect races. */
  private async hashFile(userId: string, rel: string): Promise<{ sha256: string; entry: FileEntry } | null> {
    let handle;
    try {
      handle = await this.deps.store.open(userFileKey(userId, rel));
    } catch (err) {
      if (err instanceof BlobNotFound) return null;
      throw filesError(err, userId, rel);
    }
    const hash = createHash('sha256');
    await pipeline(handle.stream(), hash);
    return { sha256: hash.digest('hex'), entry: toEntry(handle.stat) };
  }

  /**
   * Index row for an entry that exists on disk, created or corrected (the disk wins) if needed. A
   * correction runs under the user's lock from a fresh look at the disk, so a write committing meanwhile
   * cannot be overwritten with what we saw before it. Callers already holding the lock say so (the lock
   * is not reentrant).
   */
  private async indexed(userId: string, rel: string, entry: FileEntry, holdingLock = false): Promise<FileRecord> {
    const row = await this.deps.repo.findByPath(userId, rel);
    const modifiedAt = iso(entry.mtimeMs);
    if (row && row.isDirectory === entry.isDirectory && (entry.isDirectory || (row.size === entry.size && row.modifiedAt === modifiedAt))) {
      return row;
    }
    const correct = async () => {
      const fresh = (await this.entryAt(userId, rel)) ?? entry;
      const now = this.deps.clock.now().toISOString();
      await this.deps.repo.insertIgnoringExisting(this.folderRows(userId, ancestorsOf(rel), now));
      return this.deps.repo.upsert(fresh.isDirectory ? this.folderRow(userId, rel, now, fresh.mtimeMs) : this.fileRow(userId, rel, fresh, null, now));
    };
    return holdingLock ? correct() : this.lock.run(userId, correct);
  }

  /** Indexes `rel` and, for a folder, everything below it that has no row yet. */
  private async indexTree(userId: string, rel: string, entry: FileEntry): Promise<void> {
    await this.indexed(userId, rel, entry, true);
    if (!entry.isDirectory) return;
    const below = await this.walk(userId, rel);
    const known = new Set((await this.deps.repo.subtree(userId, rel)).map((r) => r.path));
    const now = this.deps.clock.now().toISOString();
    const missing = below
      .filter((e) => !known.has(e.path))
      .map((e) => (e.isDirectory ? this.folderRow(userId, e.path, now, e.mtimeMs) : this.fileRow(userId, e.path, e, null, now)));
    await this.deps.repo.insertIgnoringExisting(missing);
  }

  /** Metadata after a write, called under the user's lock. */
  private async metaOf(userId: string, rel: string): Promise<FileMeta> {
    const entry = await this.entryAt(userId, rel);
    if (!entry) throw notFound(rel);
    return toMeta(await this.indexed(userId, rel, entry, true), entry.etag);
  }

  private fileRow(userId: string, rel: string, entry: { size: number; mtimeMs: number }, sha256: string | null, now: string): NewFile {
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

function rootMeta(mtimeMs: number): FileMeta {
  return {
    path: '',
    name: '',
    size: 0,
    content_type: DIRECTORY_CONTENT_TYPE,
    is_directory: true,
    sha256: null,
    modified_at: iso(mtimeMs),
    created_at: iso(mtimeMs),
    etag: null,
  };
}

function toEntry(st: BlobStat): FileEntry {
  return { isDirectory: st.kind === 'folder', size: st.size, mtimeMs: st.mtimeMs, etag: st.version === null ? null : `"${st.version}"` };
}

/**
 * The files module's AppError for a store error, worded in user paths (a key such as `<user_id>/<path>` is
 * an internal name). Errors that are not the store's pass through unchanged.
 */
function filesError(err: unknown, userId: string, rel: string): unknown {
  if (!(err instanceof BlobStoreError)) return err;
  const at = err.key === undefined ? rel : userPathOf(userId, err.key);
  if (err instanceof InvalidBlobKey) {
    switch (err.reason) {
      case 'outside_root':
        return new AppError('invalid_path', `invalid path ${JSON.stringify(at)}: resolves outside your root`);
      case 'symlink':
        return new AppError('invalid_path', `invalid path ${JSON.stringify(at)}: goes through a symbolic link, which is never followed`);
      case 'not_regular':
        return new AppError('invalid_path', `${JSON.stringify(at)} is not a regular file or folder`);
      default:
        return new AppError('invalid_path', `invalid path ${JSON.stringify(rel)}: ${err.detail}`);
    }
  }
  if (err instanceof BlobConflict) {
    if (err.reason === 'not_folder') return new AppError('conflict', `${JSON.stringify(at)} is a file, not a folder`);
    if (err.reason === 'is_folder') return new AppError('conflict', `${JSON.stringify(at)} is a folder`);
    return new AppError('conflict', `${JSON.stringify(at)} already exists`);
  }
  if (err instanceof StorageFull) return insufficientStorage();
  if (err instanceof BlobNotFound) return notFound(at);
  if (err instanceof UploadAborted) return new AppError('invalid_request', 'the upload was interrupted before the whole body arrived; nothing was stored');
  if (err instanceof LimitExceeded) return new AppError('payload_too_large', err.message);
  return err;
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
