import { AppError } from '../../errors.ts';
import { BlobConflict, InvalidBlobKey, type BlobStore, type ScanEntry as BlobScanEntry, type ScanOptions } from '../../storage/blob-store.port.ts';
import type { IndexSide, Partition, PartitionBatch, PlanContext, ReconcileError, ScanEntry, StaleChange, StoredEntry } from '../../storage/reconcile/reconcile.types.ts';
import { MAX_DEPTH, MAX_PATH_BYTES, nameOf, normalizeUserPath, parentOf } from '../../storage/safe-path.ts';
import { userFileKey, userRootKey } from '../files/files-layout.ts';
import { DIRECTORY_CONTENT_TYPE } from '../files/content-type.ts';
import { MtimeFormatter, rowValuesFor, StaleCheck, type FileIndexRow } from './index-diff.ts';
import type { IndexSyncRepository, NewIndexRow } from './index-sync.repository.ts';

/** The files scope's filter: one user (or all), and a file or folder of that user (or all of it). */
export interface FilesFilter {
  userId: string | undefined;
  /** Normalised, relative to the user's root; '' for all. */
  path: string;
}

export interface FilesIndexSideOptions {
  /** Rows fetched per page of the sorted index scan. */
  pageSize?: number;
}

const LOCK_NAME = 'index_sync';

type RootState = 'dir' | 'other' | 'missing';

/**
 * The files capability's side of the reconciliation engine (issue 8): the storage is the files BlobStore
 * (keys `<user_id>/<path>`, files-layout.ts; on disk `{storage_root}/{user_id}/{path}`), the index
 * `stored_files`, one partition per user, share links protect rows from clean. The storage scan is the
 * store's `scan(<user_id>)`, which yields keys in byte order, so it meets the index scan (`ORDER BY path`)
 * in one merge. It asks the store to see the disk as reconciliation must: NFD names under their NFC keys
 * (collisions reported), upload temp files (counted, swept), the files API's depth and length limits
 * (beyond them: reported), and a user's folder that is a link placed by the administrator (followed).
 */
export class FilesIndexSide implements IndexSide<FileIndexRow, FilesFilter> {
  readonly scope = 'files';
  readonly lockName = LOCK_NAME;
  private readonly pageSize: number;
  /** How each partition handed out by plan() turns its entries into rows (for insertAcross). */
  private readonly rowBuilders = new WeakMap<Partition<FileIndexRow>, (entries: StoredEntry[]) => NewIndexRow[]>();

  constructor(
    private readonly repo: IndexSyncRepository,
    private readonly store: BlobStore,
    private readonly storageRoot: string,
    options: FilesIndexSideOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 5000;
  }

  /** A path without a user, or a path the files API would refuse → invalid_request/invalid_path; unknown user → not_found. */
  async validate(raw: unknown): Promise<FilesFilter> {
    const filter = (raw ?? {}) as { userId?: unknown; path?: unknown };
    let rel = '';
    if (filter.path !== undefined && filter.path !== '') {
      if (!filter.userId) throw new AppError('invalid_request', "a path is relative to one user's root: give a user id with it");
      if (typeof filter.path !== 'string') throw new AppError('invalid_request', 'path must be a string');
      rel = normalizeUserPath(filter.path, { allowRoot: true });
    }
    if (filter.userId !== undefined) {
      if (typeof filter.userId !== 'string' || !(await this.repo.userExists(filter.userId))) {
        throw new AppError('not_found', `unknown user id ${JSON.stringify(filter.userId)}`);
      }
    }
    return { userId: filter.userId as string | undefined, path: rel };
  }

  /** Rows of several users in one transaction (the repository's rows carry their owner). */
  async insertAcross(batches: ReadonlyArray<PartitionBatch<FileIndexRow>>, nowIso: string): Promise<number> {
    const rows: NewIndexRow[] = [];
    for (const b of batches) {
      const build = this.rowBuilders.get(b.partition);
      if (!build) throw new Error('insertAcross: a partition this side did not plan');
      for (const r of build(b.entries)) rows.push(r);
    }
    return this.repo.insertRows(rows, nowIso);
  }

  isWholeScope(filter: FilesFilter): boolean {
    return filter.userId === undefined && filter.path === '';
  }

  async plan(ctx: PlanContext<FilesFilter>): Promise<Array<Partition<FileIndexRow>>> {
    const { filter } = ctx;
    const root = await this.probe('', ctx);
    if (root !== 'dir') {
      const message = `storage root ${this.storageRoot} is ${root === 'missing' ? 'missing' : 'not a folder'} (is the volume mounted?)`;
      if (ctx.destructive) throw new AppError('conflict', `${message}: refusing to ${ctx.mode}, it would wipe the index; nothing was done`);
      ctx.report({ path: '', code: 'storage_root_missing', message });
      return [];
    }
    const users = filter.userId ? [filter.userId] : await this.repo.listUserIds();
    await this.repo.refreshStatsIfStale();

    // A user's folder that is missing while the index holds rows for it looks like an unmounted volume,
    // not like deleted files: clean/full refuse before changing anything (issue 4).
    const missingRoots = new Set<string>();
    // One listing of the storage root answers for every plain user folder (1,000 users: one readdir
    // instead of 1,000 stats); links, files and what the listing could not tell are probed one by one.
    const listing = filter.userId ? undefined : await this.listRoot(ctx);
    for (const userId of users) {
      const listed = listing?.entries.get(userRootKey(userId));
      const state = listed === 'folder' ? 'dir' : listing?.complete && listed === undefined ? 'missing' : await this.probe(userRootKey(userId), ctx);
      if (state === 'dir') continue;
      if (!(await this.repo.hasRows(userId, filter.path))) continue;
      missingRoots.add(userId);
      if (ctx.destructive) {
        throw new AppError(
          'conflict',
          `the folder of user ${userId} is ${state === 'missing' ? 'missing' : 'not a folder'} but the index holds rows for it (is the storage volume mounted?): refusing to ${ctx.mode}; nothing was done`,
        );
      }
    }
    if (listing) this.reportForeignFolders(new Set(users), listing, ctx);

    return users.map((userId) =>
      missingRoots.has(userId)
        ? this.partition(userId, filter.path, {
            path: userId,
            code: 'user_root_missing',
            message: "the user's folder is missing but the index holds rows for it; its rows were not compared",
          })
        : this.partition(userId, filter.path),
    );
  }

  /** The storage root ('') or a user's folder, following a link there (a user on another volume). */
  private async probe(key: string, ctx: PlanContext<FilesFilter>): Promise<RootState> {
    try {
      const st = await this.store.stat(key, { followLink: true });
      return st === null ? 'missing' : st.kind === 'folder' ? 'dir' : 'other';
    } catch (err) {
      ctx.report({ path: key, code: errorCode(err), message: (err as Error).message });
      return 'other';
    }
  }

  /**
   * The storage root's own entries by key (`folder`, or what else the scan saw there); `complete` when
   * the listing could be read whole (then a user's folder it lacks is missing). Errors are reported.
   */
  private async listRoot(ctx: PlanContext<FilesFilter>): Promise<{ entries: Map<string, BlobScanEntry['kind']>; complete: boolean }> {
    const entries = new Map<string, BlobScanEntry['kind']>();
    let complete = true;
    try {
      for await (const batch of this.store.scan('', { levels: 1 })) {
        for (const e of batch) {
          if (e.kind === 'unreadable' && e.key === '') {
            complete = false;
            ctx.report({ path: '', code: e.code, message: e.detail });
          }
          // The first entry of a key wins (a folder is listed once; anything odd is probed anyway).
          if (!entries.has(e.key)) entries.set(e.key, e.kind);
        }
      }
    } catch (err) {
      complete = false;
      ctx.report({ path: '', code: errorCode(err), message: (err as Error).message });
    }
    return { entries, complete };
  }

  /** Folders in the storage root that belong to no user: data the index can never show. */
  private reportForeignFolders(userIds: Set<string>, listing: { entries: Map<string, BlobScanEntry['kind']> }, ctx: PlanContext<FilesFilter>): void {
    for (const [key, kind] of listing.entries) {
      if (kind !== 'folder' || key.startsWith('.') || userIds.has(key)) continue;
      ctx.report({ path: key, code: 'unknown_owner_folder', message: 'folder in the storage root that belongs to no user: not indexed' });
    }
  }

  private partition(userId: string, scope: string, skip?: ReconcileError): Partition<FileIndexRow> {
    const repo = this.repo;
    const store = this.store;
    const mtimes = new MtimeFormatter();
    const check = new StaleCheck();
    const iso = (ms: number) => mtimes.format(ms);
    // rowValuesFor's values, with the content type looked up once per extension (a first sync writes a
    // row per entry: mime-types allocated several strings per row).
    const newRows = (entries: StoredEntry[]): NewIndexRow[] => {
      const out: NewIndexRow[] = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const slash = e.key.lastIndexOf('/');
        const name = slash < 0 ? e.key : e.key.slice(slash + 1);
        const isDirectory = e.kind === 'dir';
        out[i] = {
          ownerId: userId,
          path: e.key,
          name,
          parentPath: slash < 0 ? '' : e.key.slice(0, slash),
          size: isDirectory ? 0 : e.size,
          contentType: isDirectory ? DIRECTORY_CONTENT_TYPE : check.contentType(name),
          isDirectory,
          modifiedAt: iso(e.mtimeMs),
        };
      }
      return out;
    };
    const partition: Partition<FileIndexRow> = {
      label: userId,
      ...(skip ? { skip } : {}),
      storage: () => this.scanUser(userId, scope),
      index: () => this.rowsOf(userId, scope),
      staleFields: (row, entry) => check.fields(row.kind === 'dir', row.size, row.contentType, row.modifiedAt, entry.kind, entry.size, entry.mtimeMs, entry.key),
      indexedNow: (keys) => repo.existingPaths(userId, keys),
      insert: (entries, nowIso) => repo.insertRows(newRows(entries), nowIso),
      versions: async (rows) => {
        const found = await repo.currentVersions(rows.map((r) => r.id));
        const out = new Map<number, { key: string; updatedAtMs: number; moving: boolean }>();
        for (const [id, v] of found) out.set(id, { key: v.path, updatedAtMs: Date.parse(v.updatedAt), moving: v.moving });
        return out;
      },
      update: (changes: Array<StaleChange<FileIndexRow>>, unchangedSince, nowIso) =>
        repo.updateRows(
          changes.map((c) => ({
            id: c.row.id,
            ...rowValuesFor({ name: nameOf(c.entry.key), kind: c.entry.kind, size: c.entry.size, mtimeMs: c.entry.mtimeMs }, iso),
            // The content may have changed: the files API recomputes sha256 lazily.
            clearSha256: c.fields.includes('size') || c.fields.includes('mtime') || c.fields.includes('is_directory'),
          })),
          unchangedSince,
          nowIso,
        ),
      storedNow: (key) => storedAt(store, userFileKey(userId, key)),
      protectedIds: (rows, nowIso) => repo.sharedIds(rows.map((r) => r.id), nowIso),
      remove: (rows, unchangedSince, nowIso) => repo.deleteRows(rows.map((r) => r.id), unchangedSince, nowIso),
      removeTemps: async (keys, staleBeforeMs) => {
        if (!store.removeStaleTemp) return 0;
        let removed = 0;
        // Temp keys are as the scan found them on disk, relative to the user's folder.
        for (const key of keys) if (await store.removeStaleTemp(`${userId}/${key}`, staleBeforeMs)) removed++;
        return removed;
      },
    };
    this.rowBuilders.set(partition, newRows);
    return partition;
  }

  private async *rowsOf(userId: string, scope: string): AsyncGenerator<FileIndexRow[]> {
    let after: string | null = null;
    for (;;) {
      const page = await this.repo.rowsByKey(userId, scope, after, this.pageSize);
      if (page.length > 0) yield page;
      if (page.length < this.pageSize) return;
      after = page[page.length - 1]!.key;
    }
  }

  /** The user's entries at or below `scope`, in key order, in pages, keys relative to the user's folder. */
  private async *scanUser(userId: string, scope: string): AsyncGenerator<ScanEntry[]> {
    const rootKey = userRootKey(userId);
    let prefix = rootKey;
    let options = SCAN_OPTIONS;
    if (scope !== '') {
      const own = await this.scopeEntry(userId, scope);
      if (own.length > 0) yield own;
      if (own[0]?.kind !== 'dir') return;
      prefix = userFileKey(userId, scope);
      // The files API's limits count from the user's folder, the scan's from the scanned one.
      options = { ...SCAN_OPTIONS, limits: { depth: MAX_DEPTH - scope.split('/').length, keyBytes: MAX_PATH_BYTES - Buffer.byteLength(scope) - 1 } };
    }
    yield* asIndexEntries(this.store.scan(prefix, options), rootKey.length + 1);
  }

  /** The scope's own entry (it lives in its parent folder). */
  private async scopeEntry(userId: string, scope: string): Promise<ScanEntry[]> {
    const problem = (code: string, message: string, unreadable = true): ScanEntry[] => [{ key: scope, kind: 'problem', code, message, unreadable }];
    try {
      const st = await this.store.stat(userFileKey(userId, scope), { followLink: true });
      if (!st) return [];
      return [{ key: scope, kind: st.kind === 'folder' ? 'dir' : 'file', size: st.size, mtimeMs: st.mtimeMs }];
    } catch (err) {
      if (err instanceof InvalidBlobKey && err.reason === 'not_regular') return [];
      if (err instanceof InvalidBlobKey && (err.reason === 'symlink' || err.reason === 'outside_root')) {
        // A link at the scope itself is reported like any link; one on the way protects what is below it.
        const last = await this.store.stat(userFileKey(userId, parentOf(scope)), { followLink: true }).then(
          (p) => p?.kind === 'folder',
          () => false,
        );
        return last
          ? problem('symlink', SYMLINK_MESSAGE, false)
          : problem('symlink', `cannot scan ${scope}: a folder on its way is a symbolic link`);
      }
      if (err instanceof BlobConflict) return [];
      return problem(errorCode(err), (err as Error).message);
    }
  }
}

const SYMLINK_MESSAGE = 'symbolic link: not followed, not indexed';

/** How the files scope asks the store to scan a user's folder (see the class comment). */
const SCAN_OPTIONS: ScanOptions = { nfc: true, temps: true, followLink: true, limits: { depth: MAX_DEPTH, keyBytes: MAX_PATH_BYTES } };

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EIO';
}

/** Whether something is at `key` now (a link counts: something is there); undefined when that cannot be told. */
async function storedAt(store: BlobStore, key: string): Promise<boolean | undefined> {
  try {
    return (await store.stat(key, { followLink: true })) !== null;
  } catch (err) {
    if (err instanceof InvalidBlobKey) return err.reason !== 'malformed' && err.reason !== 'too_long';
    if (err instanceof BlobConflict) return false;
    return undefined;
  }
}

/**
 * The store's scan as the engine's storage scan for one user: keys relative to the user's folder
 * (`cut` = length of `<user_id>/`), the files scope's error codes and wording (docs/index-sync.md).
 * Special files (FIFOs, sockets, devices) are skipped silently (issue 4).
 */
async function* asIndexEntries(scan: AsyncIterable<readonly BlobScanEntry[]>, cut: number): AsyncGenerator<ScanEntry[]> {
  for await (const batch of scan) {
    const out: ScanEntry[] = [];
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      switch (e.kind) {
        case 'file':
          out.push({ key: e.key.slice(cut), kind: 'file', size: e.size, mtimeMs: e.mtimeMs });
          break;
        case 'folder':
          out.push({ key: e.key.slice(cut), kind: 'dir', size: 0, mtimeMs: e.mtimeMs });
          break;
        case 'temp':
          out.push({ key: e.key.slice(cut), kind: 'temp', mtimeMs: e.mtimeMs });
          break;
        case 'unreadable':
          out.push({ key: e.key.slice(cut), kind: 'problem', code: e.code, message: e.detail, unreadable: true });
          break;
        case 'skipped': {
          if (e.reason === 'special') break;
          const [code, message] = e.reason === 'symlink' ? ['symlink', SYMLINK_MESSAGE] : problemOf(e.rule, e.detail);
          out.push({ key: e.key.slice(cut), kind: 'problem', code, message, unreadable: false });
          break;
        }
      }
    }
    if (out.length > 0) yield out;
  }
}

function problemOf(rule: string | undefined, detail: string): [string, string] {
  switch (rule) {
    case 'invalid_utf8':
      return ['invalid_utf8', detail];
    case 'name_collision':
      return ['name_collision', detail];
    case 'too_deep':
      return ['too_deep', `deeper than ${MAX_DEPTH} folders: the files API cannot address it`];
    case 'too_long':
      return ['path_too_long', `path longer than ${MAX_PATH_BYTES} bytes`];
    default:
      return ['invalid_name', `name cannot be indexed: ${detail}`];
  }
}
