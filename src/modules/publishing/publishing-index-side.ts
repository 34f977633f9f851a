import { AppError } from '../../errors.ts';
import { blobKey } from '../../storage/blob-key.ts';
import type { BlobStore } from '../../storage/blob-store.port.ts';
import { compareCodePoints } from '../../storage/reconcile/key-order.ts';
import { PREV_SUFFIX, type PublishContentStore } from '../../storage/publish-content-store.ts';
import { fromBlobScan } from '../../storage/reconcile/blob-scan.ts';
import type { IndexSide, Partition, PlanContext, ScanEntry, StaleChange, StoredEntry } from '../../storage/reconcile/reconcile.types.ts';
import { normalizeUserPath } from '../../storage/safe-path.ts';
import type { IndexedPublishedRow, PublishingRepository } from './publishing.repository.ts';
import type { PublishedFile, Site } from './publishing.types.ts';

/** Which part of the publish root a run covers: every site, one site, or a folder or file of one site. */
export interface PublishingFilter {
  site: Site | undefined;
  /** Normalised, relative to the site's folder; '' for all of it. */
  path: string;
}

/** What the index side tells the mirror after it changed rows (MirrorService through PublishingService's MirrorQueue). */
export interface ReconcileMirror {
  upload(site: Site, file: PublishedFile): Promise<void>;
  remove(site: Site, files: readonly PublishedFile[]): Promise<void>;
}

export interface PublishingIndexSideDeps {
  repo: PublishingRepository;
  store: PublishContentStore;
  /** Queues the bucket side of a change (only for sites with a bucket configured). */
  mirror: ReconcileMirror;
  mirrorConfigured(site: Site): boolean;
  /** The site's bucket (MirrorService.bucketOf), for the bucket comparison. */
  bucketOf(site: Site): Promise<Pick<BlobStore, 'scan'>>;
  pageSize?: number;
}

const LOCK_NAME = 'index_sync_publishing';

/** `modified_at` of a row made from a file found on disk: its mtime, to the millisecond the column keeps. */
const isoOf = (mtimeMs: number) => new Date(Math.floor(mtimeMs)).toISOString();

/**
 * The publishing capability's side of the reconciliation engine (issue 11 "Health and alerts", daily full
 * scan; `stormvault rebuild-index --scope publishing`). The truth is the publish root
 * `<root>/<site>/<path>` (the fs BlobStore of PublishContentStore), the index the live rows of
 * `published_files`; one partition per site. Folders and the kept `.prev` versions are not indexed.
 *
 * - missing (a file with no row): sync hashes it and adds a row (reviving a deleted one), mirror pending,
 *   and queues its upload.
 * - stale (a row whose file differs): another size, or a file modified after the row says it was. Sync
 *   hashes it: new content is a new generation (mirror pending, upload queued, so the CDN URL goes local
 *   until the new bytes are verified); the same content only takes the file's time.
 * - orphaned (a row with no file): clean marks it deleted and queues the removal of its bucket object,
 *   as a DELETE through the API would.
 *
 * A site folder missing while its rows exist looks like an unmounted volume: clean/full refuse.
 */
export class PublishingIndexSide implements IndexSide<IndexedPublishedRow, PublishingFilter> {
  readonly scope = 'publishing';
  readonly lockName = LOCK_NAME;
  private readonly pageSize: number;

  constructor(private readonly deps: PublishingIndexSideDeps) {
    this.pageSize = deps.pageSize ?? 2000;
  }

  /** `path` is `<site>[/<folder or file>]` relative to the publish root; there are no users in this scope. */
  async validate(raw: unknown): Promise<PublishingFilter> {
    const filter = (raw ?? {}) as { userId?: unknown; path?: unknown };
    if (filter.userId !== undefined) throw new AppError('invalid_request', 'the publishing scope has no users: give --path <site>[/<folder>] instead of a user id');
    if (filter.path === undefined || filter.path === '') return { site: undefined, path: '' };
    if (typeof filter.path !== 'string') throw new AppError('invalid_request', 'path must be a string');
    const rel = normalizeUserPath(filter.path, { allowRoot: true });
    const [name, ...rest] = rel.split('/');
    const site = name ? await this.deps.repo.findSiteByName(name) : undefined;
    if (!site) throw new AppError('not_found', `unknown site ${JSON.stringify(name ?? '')} (the path is <site>[/<folder>])`);
    return { site, path: rest.join('/') };
  }

  isWholeScope(filter: PublishingFilter): boolean {
    return filter.site === undefined;
  }

  async plan(ctx: PlanContext<PublishingFilter>): Promise<Array<Partition<IndexedPublishedRow>>> {
    const { store, repo } = this.deps;
    const root = await store.stat('', '').catch(() => null);
    if (!root || root.kind !== 'folder') {
      const message = `publish root ${store.root} is missing (is the volume mounted?)`;
      if (ctx.destructive) throw new AppError('conflict', `${message}: refusing to ${ctx.mode}, it would drop every published file from the index; nothing was done`);
      ctx.report({ path: '', code: 'storage_root_missing', message });
      return [];
    }
    const sites = ctx.filter.site ? [ctx.filter.site] : await repo.allSites();
    const partitions: Array<Partition<IndexedPublishedRow>> = [];
    for (const site of sites) {
      const folder = await store.stat(site.name, '').catch(() => null);
      if (folder?.kind !== 'folder' && (await repo.hasLiveRows(site.id, ctx.filter.path))) {
        if (ctx.destructive) {
          throw new AppError('conflict', `the folder of site ${site.name} is missing but the index holds files for it (is the publish volume mounted?): refusing to ${ctx.mode}; nothing was done`);
        }
        partitions.push({ ...this.partition(site, ctx.filter.path), skip: { path: site.name, code: 'site_folder_missing', message: "the site's folder is missing but the index holds files for it; its rows were not compared" } });
        continue;
      }
      partitions.push(this.partition(site, ctx.filter.path));
      // The bucket side of the daily full scan: whole sites only (a listing of the bucket below the prefix).
      if (ctx.filter.path === '' && this.deps.mirrorConfigured(site)) await this.compareBucket(site, '', ctx);
    }
    if (!ctx.filter.site) await this.reportForeignFolders(new Set(sites.map((s) => s.name)), ctx);
    return partitions;
  }

  /**
   * The bucket against the index, reported (every mode; the mirror tasks and `resync` are what repair
   * it): `bucket_object_missing` — a file the index says is verified in the bucket has no object (its URL
   * is a CDN URL that 404s: `POST /api/v1/sites/{site}/resync`); `bucket_object_unknown` — an object below
   * the site's prefix with no file in the index, not even one being deleted (someone else writes there).
   * Both scans are sorted by key, so this is one merge in constant memory.
   */
  private async compareBucket(site: Site, scope: string, ctx: PlanContext<PublishingFilter>): Promise<void> {
    const report = (path: string, code: string, message: string) => ctx.report({ path: path === '' ? site.name : `${site.name}/${path}`, code, message });
    try {
      const bucket = await this.deps.bucketOf(site);
      const objects = (async function* (): AsyncGenerator<string> {
        for await (const batch of bucket.scan(scope)) for (const e of batch) if (e.kind === 'file') yield e.key;
      })();
      const rows = this.bucketRows(site.id, scope);
      let o = await objects.next();
      let r = await rows.next();
      while (!o.done || !r.done) {
        const c = o.done ? 1 : r.done ? -1 : compareCodePoints(o.value, r.value.path);
        if (c < 0) {
          report(o.value, 'bucket_object_unknown', 'an object in the bucket with no published file in the index: not written by this server');
          o = await objects.next();
        } else if (c > 0) {
          if (!r.value.deleted && r.value.syncVerified) report(r.value.path, 'bucket_object_missing', 'verified in the index but missing from the bucket: its CDN URL fails; resync the site');
          r = await rows.next();
        } else {
          o = await objects.next();
          r = await rows.next();
        }
      }
    } catch (err) {
      report('', 'bucket_unreachable', `the bucket could not be listed: ${(err as Error).message}`);
    }
  }

  private async *bucketRows(siteId: string, scope: string): AsyncGenerator<{ path: string; deleted: boolean; syncVerified: boolean }> {
    let after: string | null = null;
    for (;;) {
      const page = await this.deps.repo.mirrorRowsByKey(siteId, scope, after, this.pageSize);
      yield* page;
      if (page.length < this.pageSize) return;
      after = page[page.length - 1]!.path;
    }
  }

  /** Folders in the publish root that belong to no site: content no URL serves. */
  private async reportForeignFolders(names: Set<string>, ctx: PlanContext<PublishingFilter>): Promise<void> {
    try {
      for await (const batch of this.deps.store.blobs.scan('')) {
        for (const e of batch) {
          if (e.key.includes('/')) continue;
          if ((e.kind === 'folder' || e.kind === 'file') && !names.has(e.key)) ctx.report({ path: e.key, code: 'unknown_site_folder', message: 'in the publish root but no site has this name: not indexed, not served' });
        }
      }
    } catch (err) {
      ctx.report({ path: '', code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message });
    }
  }

  private partition(site: Site, scope: string): Partition<IndexedPublishedRow> {
    const { repo, store } = this.deps;
    const queueUploads = async (files: PublishedFile[]) => {
      if (!this.deps.mirrorConfigured(site)) return;
      for (const f of files) await this.deps.mirror.upload(site, f);
    };
    return {
      label: site.name,
      storage: () => this.scanSite(site.name, scope),
      index: () => this.rowsOf(site.id, scope),
      staleFields: (row, entry) => {
        const fields: string[] = [];
        if (row.size !== entry.size) fields.push('size');
        // Writers record modified_at after the bytes are durable, so a file newer than its row was changed behind the server's back.
        if (Math.floor(entry.mtimeMs) > Date.parse(row.modifiedAt)) fields.push('mtime');
        return fields;
      },
      indexedNow: (keys) => repo.livePathsIn(site.id, keys),
      insert: async (entries: StoredEntry[], nowIso) => {
        const added: PublishedFile[] = [];
        for (const e of entries) {
          const hashed = await store.hashFile(site.name, e.key);
          if (!hashed) continue; // removed since the scan
          const file = await repo.indexFound({ siteId: site.id, path: e.key, size: hashed.stat.size, sha256: hashed.sha256, modifiedAt: isoOf(hashed.stat.mtimeMs), now: nowIso });
          if (file) added.push(file);
        }
        await queueUploads(added);
        return added.length;
      },
      versions: async (rows) => {
        const found = await repo.liveVersions(rows.map((r) => r.id));
        const out = new Map<number, { key: string; updatedAtMs: number; moving: boolean }>();
        for (const [id, v] of found) out.set(id, { key: v.path, updatedAtMs: Date.parse(v.updatedAt), moving: false });
        return out;
      },
      update: async (changes: Array<StaleChange<IndexedPublishedRow>>, unchangedSince, nowIso) => {
        let updated = 0;
        const changed: PublishedFile[] = [];
        for (const c of changes) {
          const hashed = await store.hashFile(site.name, c.row.key);
          if (!hashed) continue;
          const result = await repo.reindex(c.row.id, unchangedSince, { size: hashed.stat.size, sha256: hashed.sha256, modifiedAt: isoOf(hashed.stat.mtimeMs), now: nowIso });
          if (!result) continue;
          updated++;
          if (result.contentChanged) changed.push(result.file);
        }
        await queueUploads(changed);
        return updated;
      },
      storedNow: async (key) => {
        try {
          return (await store.stat(site.name, key))?.kind === 'file';
        } catch {
          return undefined;
        }
      },
      protectedIds: async () => new Set<number>(),
      remove: async (rows, unchangedSince, nowIso) => {
        const gone = await repo.markDeletedIfUnchanged(
          rows.map((r) => r.id),
          unchangedSince,
          nowIso,
        );
        if (gone.length > 0 && this.deps.mirrorConfigured(site)) await this.deps.mirror.remove(site, gone);
        else if (gone.length > 0) for (const f of gone) await repo.purgeDeleted(f.id, f.generation);
        return gone.length;
      },
    };
  }

  private async *rowsOf(siteId: string, scope: string): AsyncGenerator<IndexedPublishedRow[]> {
    let after: string | null = null;
    for (;;) {
      const page = await this.deps.repo.liveRowsByKey(siteId, scope, after, this.pageSize);
      if (page.length > 0) yield page;
      if (page.length < this.pageSize) return;
      after = page[page.length - 1]!.key;
    }
  }

  /** The site's files at or below `scope`, keys relative to the site's folder, in key order; folders and `.prev` left out. */
  private async *scanSite(site: string, scope: string): AsyncGenerator<ScanEntry[]> {
    const { store } = this.deps;
    if (scope !== '') {
      const top = await store.stat(site, scope).catch((err: unknown) => err as Error);
      if (top instanceof Error) {
        yield [{ key: scope, kind: 'problem', code: 'unreadable', message: top.message, unreadable: true }];
        return;
      }
      if (top?.kind === 'file') {
        if (!scope.endsWith(PREV_SUFFIX)) yield [{ key: scope, kind: 'file', size: top.size, mtimeMs: top.mtimeMs }];
        return;
      }
      if (!top) return;
    }
    for await (const batch of fromBlobScan(store.blobs.scan(blobKey(site, scope)), site)) {
      const files = batch.filter((e) => e.kind !== 'dir' && !(e.kind === 'file' && e.key.endsWith(PREV_SUFFIX)));
      if (files.length > 0) yield files;
    }
  }
}
