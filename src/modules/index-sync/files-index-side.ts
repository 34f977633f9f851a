import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { AppError } from '../../errors.ts';
import { sortByKey } from '../../storage/reconcile/key-order.ts';
import type { IndexSide, Partition, PlanContext, ReconcileError, ScanEntry, StaleChange, StoredEntry } from '../../storage/reconcile/reconcile.types.ts';
import { removeStaleTemp } from '../../storage/temp-files.ts';
import { joinUserRoot, nameOf, normalizeUserPath, parentOf, userRoot } from '../../storage/safe-path.ts';
import type { DiskTreeReader, PathState } from '../../storage/tree-walker.ts';
import { classifyListing, isTempName, joinRel, MtimeFormatter, rowValuesFor, staleFieldsOf, type FileIndexRow } from './index-diff.ts';
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

/** Entries per page of the storage scan. */
const SCAN_PAGE = 2048;
/** The scan yields to the event loop after this many entries, so a background audit does not stall serve. */
const YIELD_EVERY = 4096;
const LOCK_NAME = 'index_sync';

/** One directory being walked: its entries (and "descend" markers for its folders) in key order. */
interface Frame {
  slots: Slot[];
  next: number;
}

/** A listed entry, or the place in key order where a folder's children begin (`<name>/`). */
interface Slot {
  sortKey: string;
  entry?: ScanEntry;
  descend?: { rel: string; abs: string; depth: number; bytes: number };
}

/**
 * The files capability's side of the reconciliation engine (issue 8): the storage is
 * `{storage_root}/{user_id}/{path}`, the index `stored_files`, one partition per user, share links
 * protect rows from clean. The storage scan walks a user's folder depth first and yields its entries in
 * key (code point) order — a folder's listing is sorted, and a sub-folder's children are placed where
 * `<name>/` sorts — so it meets the index scan (`ORDER BY path`) in one merge.
 */
export class FilesIndexSide implements IndexSide<FileIndexRow, FilesFilter> {
  readonly scope = 'files';
  readonly lockName = LOCK_NAME;
  private readonly pageSize: number;

  constructor(
    private readonly repo: IndexSyncRepository,
    private readonly disk: DiskTreeReader,
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

  isWholeScope(filter: FilesFilter): boolean {
    return filter.userId === undefined && filter.path === '';
  }

  async plan(ctx: PlanContext<FilesFilter>): Promise<Array<Partition<FileIndexRow>>> {
    const { filter } = ctx;
    const root = this.probeRoot(this.storageRoot, ctx);
    if (!root || root.kind !== 'dir') {
      const message = `storage root ${this.storageRoot} is ${root ? 'not a folder' : 'missing'} (is the volume mounted?)`;
      if (ctx.destructive) throw new AppError('conflict', `${message}: refusing to ${ctx.mode}, it would wipe the index; nothing was done`);
      ctx.report({ path: '', code: 'storage_root_missing', message });
      return [];
    }
    const users = filter.userId ? [filter.userId] : await this.repo.listUserIds();

    // A user's folder that is missing while the index holds rows for it looks like an unmounted volume,
    // not like deleted files: clean/full refuse before changing anything (issue 4).
    const missingRoots = new Set<string>();
    for (const userId of users) {
      const state = this.probeRoot(userRoot(this.storageRoot, userId), ctx);
      if (state && state.kind === 'dir') continue;
      if (!(await this.repo.hasRows(userId, filter.path))) continue;
      missingRoots.add(userId);
      if (ctx.destructive) {
        throw new AppError(
          'conflict',
          `the folder of user ${userId} is ${state ? 'not a folder' : 'missing'} but the index holds rows for it (is the storage volume mounted?): refusing to ${ctx.mode}; nothing was done`,
        );
      }
    }
    if (!filter.userId) await this.reportForeignFolders(new Set(users), ctx);

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

  private probeRoot(dir: string, ctx: PlanContext<FilesFilter>): PathState | null {
    try {
      return this.disk.probeRoot(dir);
    } catch (err) {
      ctx.report({ path: path.relative(this.storageRoot, dir), code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message });
      return { kind: 'special', size: 0, mtimeMs: 0 };
    }
  }

  /** Folders in the storage root that belong to no user: data the index can never show. */
  private async reportForeignFolders(userIds: Set<string>, ctx: PlanContext<FilesFilter>): Promise<void> {
    let names: string[];
    try {
      names = await this.disk.listSubdirectories(this.storageRoot);
    } catch (err) {
      ctx.report({ path: '', code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message });
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || userIds.has(name)) continue;
      ctx.report({ path: name, code: 'unknown_owner_folder', message: 'folder in the storage root that belongs to no user: not indexed' });
    }
  }

  private partition(userId: string, scope: string, skip?: ReconcileError): Partition<FileIndexRow> {
    const repo = this.repo;
    const mtimes = new MtimeFormatter();
    // Where the scan found each temp file (keys are NFC; a folder on disk may not be).
    const tempFiles = new Map<string, string>();
    const iso = (ms: number) => mtimes.format(ms);
    const newRows = (entries: StoredEntry[]): NewIndexRow[] =>
      entries.map((e) => {
        const name = nameOf(e.key);
        return { ownerId: userId, path: e.key, name, parentPath: parentOf(e.key), ...rowValuesFor({ name, kind: e.kind, size: e.size, mtimeMs: e.mtimeMs }, iso) };
      });
    return {
      label: userId,
      ...(skip ? { skip } : {}),
      storage: () => this.scanUser(userId, scope, tempFiles),
      index: () => this.rowsOf(userId, scope),
      staleFields: (row, entry) => staleFieldsOf(row.kind === 'dir', row.size, row.contentType, row.modifiedAt, entry.kind, entry.size, entry.mtimeMs, entry.key),
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
      storedNow: async (key) => {
        try {
          return this.disk.probe(joinUserRoot(this.storageRoot, userId, key)) !== null;
        } catch {
          return undefined;
        }
      },
      protectedIds: (rows, nowIso) => repo.sharedIds(rows.map((r) => r.id), nowIso),
      remove: (rows, unchangedSince, nowIso) => repo.deleteRows(rows.map((r) => r.id), unchangedSince, nowIso),
      removeTemps: async (keys, staleBeforeMs) => {
        let removed = 0;
        for (const key of keys) {
          const file = tempFiles.get(key);
          if (file !== undefined && removeStaleTemp(file, staleBeforeMs)) removed++;
        }
        return removed;
      },
    };
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

  /** The user's entries at or below `scope`, in key order, in pages. */
  private async *scanUser(userId: string, scope: string, tempFiles: Map<string, string>): AsyncGenerator<ScanEntry[]> {
    const rootAbs = userRoot(this.storageRoot, userId);
    const stack: Frame[] = [];
    if (scope === '') {
      stack.push({ slots: [{ sortKey: '', descend: { rel: '', abs: rootAbs, depth: 0, bytes: 0 } }], next: 0 });
    } else {
      const first = this.scopeEntry(rootAbs, userId, scope);
      stack.push({ slots: first, next: 0 });
    }
    let page: ScanEntry[] = [];
    let sinceYield = 0;
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.slots.length) {
        stack.pop();
        continue;
      }
      const slot = frame.slots[frame.next++]!;
      if (slot.entry) {
        page.push(slot.entry);
        if (page.length >= SCAN_PAGE) {
          yield page;
          page = [];
        }
        continue;
      }
      const dir = slot.descend!;
      let listing;
      // Temp names are skipped by the listing (no lstat for them) and examined here, rarely.
      const temps: string[] = [];
      try {
        listing = await this.disk.listDirectory(dir.abs, (name) => isTempName(name) && temps.push(name) > 0);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        // ENOENT: deleted while we scan; its rows are handled like any folder that is gone. Anything else:
        // unreadable is not empty, its rows stay untouched (issue 4: EACCES is an error, not an orphan).
        if (code !== 'ENOENT') page.push({ key: dir.rel, kind: 'problem', code, message: `cannot list folder: ${(err as Error).message}`, unreadable: true });
        continue;
      }
      sinceYield += listing.length;
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
      const { items, problems } = classifyListing(listing, dir.depth, dir.bytes);
      const slots: Slot[] = [];
      for (const p of problems) {
        // Unreadable entries are keyed by their NFC name: rows at or below it are protected.
        const name = p.unreadable ? p.name.normalize('NFC') : p.name;
        const key = joinRel(dir.rel, name);
        slots.push({ sortKey: name, entry: { key, kind: 'problem', code: p.code, message: p.message, unreadable: p.unreadable } });
      }
      const prefix = dir.abs.endsWith(path.sep) ? dir.abs : dir.abs + path.sep;
      for (const name of temps) {
        let state;
        try {
          state = this.disk.probe(prefix + name);
        } catch {
          continue;
        }
        if (state?.kind !== 'file') continue;
        const key = joinRel(dir.rel, name);
        tempFiles.set(key, prefix + name);
        slots.push({ sortKey: name, entry: { key, kind: 'temp', mtimeMs: state.mtimeMs } });
      }
      for (const item of items) {
        const key = joinRel(dir.rel, item.name);
        slots.push({ sortKey: item.name, entry: { key, kind: item.kind, size: item.size, mtimeMs: item.mtimeMs } });
        if (item.kind === 'dir') {
          const bytes = dir.bytes + (dir.rel === '' ? 0 : 1) + Buffer.byteLength(item.name);
          slots.push({ sortKey: `${item.name}/`, descend: { rel: key, abs: prefix + item.diskName, depth: dir.depth + 1, bytes } });
        }
      }
      stack.push({ slots: sortByKey(slots, (s) => s.sortKey), next: 0 });
    }
    if (page.length > 0) yield page;
  }

  /** The scope's own entry (it lives in its parent folder), and its children when it is a folder. */
  private scopeEntry(rootAbs: string, userId: string, scope: string): Slot[] {
    const problem = (code: string, message: string): Slot[] => [{ sortKey: scope, entry: { key: scope, kind: 'problem', code, message, unreadable: true } }];
    // A folder between the user's root and the scope that is a symlink (never followed) or unreadable.
    let abs = rootAbs;
    for (const part of scope.split('/').slice(0, -1)) {
      abs = path.join(abs, part);
      let state;
      try {
        state = this.disk.probe(abs);
      } catch {
        return problem('EACCES', `cannot scan ${scope}: a folder on its way is unreadable`);
      }
      if (state?.kind === 'symlink') return problem('symlink', `cannot scan ${scope}: a folder on its way is a symbolic link`);
    }
    const target = joinUserRoot(this.storageRoot, userId, scope);
    let state;
    try {
      state = this.disk.probe(target);
    } catch (err) {
      return problem((err as NodeJS.ErrnoException).code ?? 'EIO', (err as Error).message);
    }
    if (!state) return [];
    if (state.kind === 'symlink') return [{ sortKey: scope, entry: { key: scope, kind: 'problem', code: 'symlink', message: 'symbolic link: not followed, not indexed', unreadable: false } }];
    if (state.kind !== 'file' && state.kind !== 'dir') return [];
    const slots: Slot[] = [{ sortKey: scope, entry: { key: scope, kind: state.kind, size: state.size, mtimeMs: state.mtimeMs } }];
    if (state.kind === 'dir') slots.push({ sortKey: `${scope}/`, descend: { rel: scope, abs: target, depth: scope.split('/').length, bytes: Buffer.byteLength(scope) } });
    return slots;
  }
}
