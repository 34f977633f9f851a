import { Transform, type Readable } from 'node:stream';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import { JsonSyntaxCheck } from '../../lib/json-check.ts';
import type { Logger } from '../../logger.ts';
import { PREV_SUFFIX, type PublishContentStore, type WriteStep } from '../../storage/publish-content-store.ts';
import { nameOf, normalizeUserPath } from '../../storage/safe-path.ts';
import { BlobConflict, BlobStoreError, InvalidBlobKey, LimitExceeded, StorageFull, UploadAborted } from '../../storage/blob-store.port.ts';
import { contentTypeFor } from '../files/content-type.ts';
import type { OpenedFile } from '../files/files.service.ts';
import { siteServesCdn } from './failover.ts';
import type { PublishingRepository } from './publishing.repository.ts';
import type { PublishedFile, Site } from './publishing.types.ts';
import { mirrorConfigured } from './sites.service.ts';

/** What the content service tells the mirror (mirror.service.ts) after a commit. */
export interface MirrorQueue {
  /** A new local version of `path` is in place: mirror it. */
  upload(site: Site, file: PublishedFile): Promise<void>;
  /** These files were removed locally: remove their objects. */
  remove(site: Site, files: readonly PublishedFile[]): Promise<void>;
}

/** Disk-space alerts (publish-health.ts raises and resolves them; writes refused for space raise one too). */
export interface DiskAlerts {
  low(site: Site, free: number): Promise<void>;
}

export interface PublishingServiceDeps {
  db: Db;
  repo: PublishingRepository;
  store: PublishContentStore;
  clock: Clock;
  publicUrl: string;
  maxFileBytes: number;
  mirror: MirrorQueue;
  disk: DiskAlerts;
  logger: Pick<Logger, 'error' | 'warn'>;
  /** Crash-test hook: called at each step of the atomic write. */
  onWriteStep?: (step: WriteStep) => Promise<void> | void;
}

export const MAX_PAGE = 1000;

/** `local` URL of a path: `<public url>/p/<site>/<path>`, each segment percent-encoded. */
export function localUrl(publicUrl: string, site: string, path: string): string {
  return `${publicUrl}/p/${site}/${encodePath(path)}`;
}

/** The object key of a path in the site's bucket: `<prefix>/<path>`. */
export function objectKey(site: Site, path: string): string {
  return site.s3.prefix ? `${site.s3.prefix}/${path}` : path;
}

/** `cdn_base_url` + `/` + `prefix` + `/` + path (issue 11: the base points at the bucket's root as the CDN serves it). */
export function cdnUrl(site: Site, path: string): string {
  return `${site.cdnBaseUrl}/${encodePath(objectKey(site, path))}`;
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/** Whether the site hands out CDN URLs at all right now (before looking at one file). */
export function servesCdn(site: Site): boolean {
  return siteServesCdn({
    cdnEnabled: site.cdnEnabled,
    localFallbackMode: site.localFallbackMode,
    cdnBaseUrl: site.cdnBaseUrl,
    s3Configured: mirrorConfigured(site),
    pin: site.failover.pin,
    state: site.failover.state,
  });
}

/**
 * Local content of published sites (issue 11 "Writing" and "URL resolver"): the local folder is the truth,
 * the bucket a verified mirror. A write streams into a fsynced temp file (a `.json` body is checked as it
 * streams), then in one transaction takes the file's row (which orders concurrent writers, across
 * processes) and puts the file in place keeping `.prev` (PublishContentStore); the mirror is queued after
 * the commit. A crash leaves the old or the new file; an index row behind the disk is what reconciliation
 * (`rebuild-index --scope publishing`) repairs.
 */
export class PublishingService {
  constructor(private readonly deps: PublishingServiceDeps) {}

  /** Canonical content path: the files API's rules, and never a `.prev` name (those are the kept versions). */
  contentPath(raw: string): string {
    const rel = normalizeUserPath(raw);
    if (rel.endsWith(PREV_SUFFIX)) throw new AppError('invalid_path', `names ending in "${PREV_SUFFIX}" are reserved for the previous version of a file`);
    return rel;
  }

  async write(site: Site, rawPath: string, body: Readable, options: { contentLength?: number } = {}): Promise<{ file: PublishedFile; created: boolean }> {
    const rel = this.contentPath(rawPath);
    const { store, repo } = this.deps;
    const floor = site.health.minFreeBytes;
    if (options.contentLength !== undefined && options.contentLength > this.deps.maxFileBytes) throw tooLarge(this.deps.maxFileBytes);
    await this.checkSpace(site, options.contentLength ?? 0, floor);
    // A folder at the path is found by the final rename (409, nothing changed), not by a walk of the path
    // before every write.

    const json = rel.endsWith('.json') ? jsonChecked(body) : null;
    let staged;
    try {
      // The floor is also checked while the bytes arrive (BlobStore stage), so a chunked body cannot pass it.
      staged = await store.stage(site.name, rel, json?.source ?? body, { maxBytes: this.deps.maxFileBytes, minFreeBytes: floor > 0 ? floor : undefined });
    } catch (err) {
      json?.source.destroy(); // stops the check and lets go of what it still held
      const problem = json?.problem();
      if (problem) throw new AppError('invalid_request', `a .json file must hold valid JSON: ${problem}`);
      if (err instanceof StorageFull) await this.raiseDiskLow(site);
      throw uploadError(err, this.deps.maxFileBytes, floor);
    }
    if (options.contentLength !== undefined && staged.blob.size !== options.contentLength) {
      await store.discard(staged);
      throw new AppError('invalid_request', `body had ${staged.blob.size} bytes, Content-Length said ${options.contentLength}`);
    }
    // The JSON check runs beside the write (its last bytes while the temp file is fsynced): wait for it.
    const problem = json ? await json.verdict() : null;
    if (problem) {
      await store.discard(staged);
      throw new AppError('invalid_request', `a .json file must hold valid JSON: ${problem}`);
    }

    const now = this.deps.clock.now().toISOString();
    let file: PublishedFile;
    try {
      file = await inTransaction(this.deps.db, async (handle) => {
        const tx = repo.on(handle);
        const row = await tx.recordVersion({ siteId: site.id, path: rel, size: staged.blob.size, sha256: staged.blob.sha256, modifiedAt: now, now });
        await store.commitKeepingPrev(staged, this.deps.onWriteStep);
        return row;
      });
    } catch (err) {
      await store.discard(staged);
      throw uploadError(err, this.deps.maxFileBytes, floor);
    }
    await this.queueUpload(site, file);
    return { file, created: file.generation === 1 };
  }

  /** Swaps in `.prev` (and mirrors it); the replaced version becomes the new `.prev`. */
  async rollback(site: Site, rawPath: string): Promise<PublishedFile> {
    const rel = this.contentPath(rawPath);
    const hashed = await this.deps.store.hashFile(site.name, rel + PREV_SUFFIX);
    if (!hashed) throw new AppError('not_found', `${JSON.stringify(rel)} has no previous version to roll back to`);
    const now = this.deps.clock.now().toISOString();
    const file = await inTransaction(this.deps.db, async (handle) => {
      const tx = this.deps.repo.on(handle);
      const row = await tx.recordVersion({ siteId: site.id, path: rel, size: hashed.stat.size, sha256: hashed.sha256, modifiedAt: now, now });
      if (!(await this.deps.store.swapWithPrev(site.name, rel))) throw new AppError('not_found', `${JSON.stringify(rel)} has no previous version to roll back to`);
      return row;
    });
    await this.queueUpload(site, file);
    return file;
  }

  /** Removes a file (and its `.prev`), or with `recursive` a folder; empty parents go too; objects are removed by a task. */
  async delete(site: Site, rawPath: string, options: { recursive?: boolean } = {}): Promise<{ removed: number }> {
    const rel = this.contentPath(rawPath);
    const { store, repo } = this.deps;
    const entry = await store.stat(site.name, rel);
    const now = this.deps.clock.now().toISOString();
    if (entry?.kind === 'folder') {
      if (!options.recursive) throw new AppError('not_empty', `${JSON.stringify(rel)} is a folder: add ?recursive=true to delete it with everything in it`);
      const onDisk = await store.listFiles(site.name, rel);
      const indexed = await repo.livePathsBelow(site.id, rel);
      const paths = [...new Set([...onDisk, ...indexed])];
      const files = await inTransaction(this.deps.db, async (handle) => {
        const tx = repo.on(handle);
        const rows = await tx.markDeleted(site.id, paths, now);
        await store.removeTree(site.name, rel);
        return rows;
      });
      await this.queueRemove(site, files);
      return { removed: paths.length };
    }
    const row = await repo.findFile(site.id, rel);
    if (!entry && (!row || row.deleted)) throw new AppError('not_found', `no published file ${JSON.stringify(rel)}`);
    const files = await inTransaction(this.deps.db, async (handle) => {
        const tx = repo.on(handle);
      const rows = await tx.markDeleted(site.id, [rel], now);
      await store.removeFile(site.name, rel);
      return rows;
    });
    await this.queueRemove(site, files);
    return { removed: 1 };
  }

  async meta(site: Site, rawPath: string): Promise<PublishedFile> {
    const rel = this.contentPath(rawPath);
    const row = await this.deps.repo.findFile(site.id, rel);
    if (!row || row.deleted) throw new AppError('not_found', `no published file ${JSON.stringify(rel)}`);
    return row;
  }

  /** Files below `folder` ('' = all), by path, a page at a time. */
  async list(site: Site, rawFolder: string, options: { limit?: number; cursor?: string } = {}): Promise<{ files: PublishedFile[]; nextCursor: string | null }> {
    const folder = rawFolder === '' ? '' : normalizeUserPath(rawFolder, { allowRoot: true });
    const limit = options.limit ?? 200;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new AppError('invalid_request', `limit must be 1-${MAX_PAGE}`);
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const rows = await this.deps.repo.listFiles(site.id, folder, limit + 1, after);
    const page = rows.slice(0, limit);
    return { files: page, nextCursor: rows.length > limit ? Buffer.from(page[page.length - 1]!.path).toString('base64url') : null };
  }

  /** True when `path` names a folder of the site on disk (GET content/{folder} lists it). */
  async isFolder(site: Site, rawPath: string): Promise<boolean> {
    const rel = rawPath === '' ? '' : normalizeUserPath(rawPath, { allowRoot: true });
    return (await this.deps.store.stat(site.name, rel))?.kind === 'folder';
  }

  /** The URL clients should use for `path` right now, and which copy it points at. */
  async resolveUrl(site: Site, rawPath: string): Promise<{ url: string; source: 'cdn' | 'local'; file: PublishedFile }> {
    const file = await this.meta(site, rawPath);
    return { ...this.urlOf(site, file), file };
  }

  urlOf(site: Site, file: PublishedFile, cdn = servesCdn(site)): { url: string; source: 'cdn' | 'local' } {
    // The CDN copy only when it is verified to be this very version (hash read back from the bucket).
    if (cdn && file.cdn.syncVerified && file.cdn.cdnHash === file.sha256) return { url: cdnUrl(site, file.path), source: 'cdn' };
    return { url: localUrl(this.deps.publicUrl, site.name, file.path), source: 'local' };
  }

  /**
   * The manifest (every published file with its resolved URL, size and sha256) as JSON text, produced a page
   * at a time so memory does not grow with the site.
   */
  async *manifest(site: Site): AsyncGenerator<string> {
    const cdn = servesCdn(site);
    yield `{"site":${JSON.stringify(site.name)},"generated_at":${JSON.stringify(this.deps.clock.now().toISOString())},"settings_version":${site.settingsVersion},"mode":"${cdn ? 'cdn' : 'local'}","files":[`;
    let after: string | undefined;
    let first = true;
    for (;;) {
      const rows = await this.deps.repo.listFiles(site.id, '', MAX_PAGE, after);
      if (rows.length === 0) break;
      let chunk = '';
      for (const f of rows) {
        const { url, source } = this.urlOf(site, f, cdn);
        chunk += `${first ? '' : ','}${JSON.stringify({ path: f.path, url, source, size: f.size, sha256: f.sha256, modified_at: f.modifiedAt })}`;
        first = false;
      }
      yield chunk;
      after = rows[rows.length - 1]!.path;
      if (rows.length < MAX_PAGE) break;
    }
    yield ']}';
  }

  /** Opens a published file for public serving; `.prev` and temp names are never served. */
  async openPublic(site: Site, rawPath: string): Promise<OpenedFile> {
    let rel: string;
    try {
      rel = this.contentPath(rawPath);
    } catch {
      throw new AppError('not_found', 'no such published file');
    }
    const handle = await this.deps.store.open(site.name, rel).catch((err: unknown) => {
      // A link, a folder or anything else the store never serves: the public sees only "not found".
      if (err instanceof BlobStoreError) throw new AppError('not_found', 'no such published file');
      throw err;
    });
    if (!handle) throw new AppError('not_found', 'no such published file');
    const { stat } = handle;
    return {
      entry: { isDirectory: false, size: stat.size, mtimeMs: stat.mtimeMs, etag: `"${stat.version}"` },
      name: nameOf(rel),
      contentType: contentTypeFor(nameOf(rel)),
      stream: (start = 0, end = stat.size - 1) => handle.stream({ start, end }),
      close: () => handle.close(),
    };
  }

  /** Disk of the publish root below the site's floor → 507 (and the disk alert), before a byte is read. */
  private async checkSpace(site: Site, incoming: number, floor: number): Promise<void> {
    if (floor <= 0) return;
    const free = await this.deps.store.freeBytes();
    if (free - incoming < floor) {
      await this.raiseDiskLow(site);
      throw noSpace(floor);
    }
  }

  private async raiseDiskLow(site: Site): Promise<void> {
    const free = await this.deps.store.freeBytes();
    await this.deps.disk.low(site, free).catch((err: unknown) => this.deps.logger.error({ err }, 'publishing: could not raise the disk alert'));
  }

  private async queueUpload(site: Site, file: PublishedFile): Promise<void> {
    if (!mirrorConfigured(site)) return;
    try {
      await this.deps.mirror.upload(site, file);
    } catch (err) {
      // The write is done and durable; the health check and `resync` re-queue what stayed pending.
      this.deps.logger.error({ err, site: site.name, path: file.path }, 'publishing: could not queue the mirror upload');
    }
  }

  private async queueRemove(site: Site, files: readonly PublishedFile[]): Promise<void> {
    if (files.length === 0) return;
    try {
      await this.deps.mirror.remove(site, files);
    } catch (err) {
      this.deps.logger.error({ err, site: site.name }, 'publishing: could not queue the bucket deletes');
    }
  }
}

function decodeCursor(cursor: string): string {
  const path = Buffer.from(cursor, 'base64url').toString('utf8');
  if (path === '' || Buffer.from(path).toString('base64url') !== cursor) throw new AppError('invalid_request', 'cursor is not one this server handed out');
  return path;
}

function tooLarge(max: number): AppError {
  return new AppError('payload_too_large', `a published file may have at most ${max} bytes`, { max_bytes: max });
}

/** How far (bytes) the JSON check may lag behind the bytes going to disk before the body is held back. */
const JSON_CHECK_LAG_BYTES = 8 * 1024 * 1024;
/** The check runs in slices of at most this many bytes per turn of the event loop. */
const JSON_CHECK_SLICE_BYTES = 1024 * 1024;
/** A chunk up to this size, with nothing queued before it, is checked at once (about 0.1 ms of CPU at most). */
const JSON_CHECK_INLINE_BYTES = 64 * 1024;

/**
 * The body passed through a streaming JSON syntax check that runs *beside* the write rather than in front
 * of it: each chunk goes on to disk (and its sha256) at once and is checked after it, a slice per turn
 * of the event loop, at most JSON_CHECK_LAG_BYTES behind (then the body waits). So the check of the last
 * bytes overlaps the temp file's fsync instead of preceding it, and a 10 MB body does not hold the event
 * loop for the whole check at once. A syntax error fails the stream at once (the stage stops reading and
 * removes its temp file); `verdict()` resolves when every byte is checked, with the problem or null, and
 * the write awaits it before anything is committed. Nothing is published before the whole text checked.
 */
function jsonChecked(body: Readable): { source: Readable; problem: () => string | null; verdict: () => Promise<string | null> } {
  const check = new JsonSyntaxCheck();
  const backlog: Buffer[] = [];
  let backlogBytes = 0;
  let ended = false;
  let settled: string | null | undefined; // the verdict; undefined while undecided
  let syntax: string | null = null; // a syntax error found (what problem() reports)
  let resumeBody: (() => void) | null = null;
  let scheduled = false;
  const waiters: Array<(problem: string | null) => void> = [];
  const settle = (problem: string | null) => {
    if (settled !== undefined) return;
    settled = problem;
    backlog.length = 0;
    backlogBytes = 0;
    for (const w of waiters.splice(0)) w(problem);
  };
  const schedule = () => {
    if (scheduled || settled !== undefined) return;
    scheduled = true;
    setImmediate(pump);
  };
  const pump = () => {
    scheduled = false;
    if (settled !== undefined) return;
    let budget = JSON_CHECK_SLICE_BYTES;
    while (backlog.length > 0 && budget > 0) {
      const chunk = backlog[0]!;
      const piece = chunk.length <= budget ? chunk : chunk.subarray(0, budget);
      if (piece.length === chunk.length) backlog.shift();
      else backlog[0] = chunk.subarray(piece.length);
      backlogBytes -= piece.length;
      budget -= piece.length;
      if (!check.push(piece)) {
        const problem = (syntax = check.problem() ?? 'not valid JSON');
        settle(problem);
        t.destroy(new Error(problem));
        return;
      }
    }
    if (resumeBody && backlogBytes < JSON_CHECK_LAG_BYTES) {
      const resume = resumeBody;
      resumeBody = null;
      resume();
    }
    if (backlog.length > 0) return schedule();
    if (ended) settle(check.end() ? null : (syntax = check.problem() ?? 'not valid JSON'));
  };
  const t = new Transform({
    transform(chunk: Buffer, _e, done) {
      if (settled) return done(new Error(settled));
      if (backlog.length === 0 && chunk.length <= JSON_CHECK_INLINE_BYTES) {
        // A small chunk with nothing queued before it: on to disk, and checked right here, without a
        // turn of the event loop in between (most published files are a chunk or two).
        t.push(chunk);
        if (check.push(chunk)) return done();
        const problem = (syntax = check.problem() ?? 'not valid JSON');
        settle(problem);
        return done(new Error(problem));
      }
      backlog.push(chunk);
      backlogBytes += chunk.length;
      schedule();
      // On to disk now, whatever its size (a body handed over in one large chunk would otherwise wait
      // for the check of its first megabytes before its first byte is written); the *next* chunk waits
      // while the check is too far behind.
      t.push(chunk);
      if (backlogBytes >= JSON_CHECK_LAG_BYTES) resumeBody = () => done();
      else done();
    },
    flush(done) {
      ended = true;
      schedule();
      if (backlog.length === 0) pump();
      done();
    },
  });
  // The stage sees the failure through its own listeners; this one keeps a late event from going unhandled.
  t.on('error', () => {});
  // Given up (a failed stage, an aborted body): stop checking, release the chunks held.
  t.on('close', () => {
    if (settled === undefined && !ended) settle('the body did not arrive whole');
  });
  body.on('error', (err) => t.destroy(err));
  body.on('close', () => {
    if (!body.readableEnded) t.destroy(new UploadAborted());
  });
  body.pipe(t);
  return {
    source: t,
    problem: () => syntax,
    verdict: () => (settled !== undefined ? Promise.resolve(settled) : new Promise((resolve) => waiters.push(resolve))),
  };
}

function noSpace(floor: number): AppError {
  return new AppError('insufficient_storage', `not enough free disk space for this site (its floor is ${floor} bytes free); nothing was written`, { min_free_bytes: floor });
}

function uploadError(err: unknown, max: number, floor: number): unknown {
  if (err instanceof LimitExceeded) return tooLarge(max);
  if (err instanceof StorageFull) return noSpace(floor);
  if (err instanceof BlobConflict) return new AppError('conflict', `${JSON.stringify(err.key?.split('/').slice(1).join('/') ?? '')} is ${err.reason === 'not_folder' ? 'a file, not a folder' : 'a folder'}`);
  if (err instanceof InvalidBlobKey) return new AppError('invalid_path', `invalid path: ${err.detail}`);
  if (err instanceof UploadAborted) return new AppError('invalid_request', 'the upload was interrupted before the whole body arrived; nothing was stored');
  return err;
}
