import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import type { Logger } from '../../logger.ts';
import type { OutboundPolicy } from '../../net/outbound.ts';
import type { PublishContentStore } from '../../storage/publish-content-store.ts';
import type { S3BlobStore, S3Target } from '../../storage/s3-blob-store.ts';
import type { TaskContext } from '../../tasks/framework.ts';
import type { RaiseAlert } from '../alerts/alerts.types.ts';
import { contentTypeFor } from '../files/content-type.ts';
import type { PublishingRepository } from './publishing.repository.ts';
import type { MirrorQueue } from './publishing.service.ts';
import type { PublishedFile, PublishLogEntry, Site } from './publishing.types.ts';
import { checkS3Endpoint, mirrorConfigured, type SitesService } from './sites.service.ts';

export interface UploadArgs {
  siteId: string;
  path: string;
}

export interface RemoveArgs {
  siteId: string;
  items: Array<{ path: string; generation: number }>;
}

/** The alerts the mirror raises (AlertsService, narrowed). */
export interface MirrorAlerts {
  raise(alert: RaiseAlert): Promise<unknown>;
  resolve(organizationId: string, conditionKey: string): Promise<unknown>;
}

export interface MirrorServiceDeps {
  db: Db;
  repo: PublishingRepository;
  sites: SitesService;
  store: PublishContentStore;
  clock: Clock;
  logger: Pick<Logger, 'warn' | 'info' | 'error'>;
  alerts: MirrorAlerts;
  multipartThresholdBytes: number;
  /** Enqueue functions of the `publish.upload` / `publish.delete` tasks (publishing.tasks.ts). */
  enqueueUpload(args: UploadArgs): Promise<unknown>;
  enqueueRemove(args: RemoveArgs): Promise<unknown>;
  /** Where a site's own S3 endpoint may lead (src/net/outbound.ts): checked when a bucket is opened, and at connect time. */
  outbound: Pick<OutboundPolicy, 'check' | 'connectLookup'>;
  /** Opens the bucket of a site (default openS3Bucket, loaded on first use; tests hand in their own). */
  openBucket?: (target: S3Target) => S3BlobStore;
}

/** A mirror job this process cannot do right now because another one holds the file; retried later. */
export class MirrorBusy extends Error {}

/** How long one upload may hold a file before another job may take it over (a crashed worker's lease). */
const LEASE_MS = 15 * 60_000;
/** S3 error codes of a body that did not match the checksum sent with it. */
const CHECKSUM_REFUSED = new Set(['BadDigest', 'InvalidDigest', 'XAmzContentChecksumMismatch', 'InvalidRequest']);
const REMOVE_BATCH = 200;

export const deadLetterCondition = (siteId: string) => `publishing:${siteId}:mirror_dead_letter`;

/**
 * The bucket as a verified mirror of the local folder (issue 11 "Mirror to the bucket"). An upload reads
 * the local file (never a copy in memory) and sends it, then reads the object back and hashes it:
 * `sync_verified` only when the bucket's bytes hash to the index's sha256. One job per file at a time (a
 * lease on its row, across processes): the holder uploads whatever version is current and loops until
 * the version it verified is still the current one, so a newer local version supersedes an older
 * pending upload and stale content never lands over new.
 */
export class MirrorService implements MirrorQueue {
  private readonly buckets = new Map<string, { version: number; bucket: S3BlobStore }>();
  private readonly finished: FinishedUploads;

  constructor(private readonly deps: MirrorServiceDeps) {
    this.finished = new FinishedUploads(deps.db, deps.repo, () => this.now());
  }

  async upload(site: Site, file: PublishedFile): Promise<void> {
    await this.deps.enqueueUpload({ siteId: site.id, path: file.path });
  }

  async remove(site: Site, files: readonly PublishedFile[]): Promise<void> {
    for (let i = 0; i < files.length; i += REMOVE_BATCH) {
      await this.deps.enqueueRemove({ siteId: site.id, items: files.slice(i, i + REMOVE_BATCH).map((f) => ({ path: f.path, generation: f.generation })) });
    }
  }

  /** Re-mirrors every file of the site (`POST …/resync`). */
  async resync(site: Site): Promise<number> {
    const paths = await this.deps.repo.resetMirror(site.id, this.now());
    for (const path of paths) await this.deps.enqueueUpload({ siteId: site.id, path });
    return paths.length;
  }

  /**
   * The bucket of a site as the s3 BlobStore adapter (keys are content paths below the site's prefix),
   * rebuilt when its settings change. The SDK is loaded on first use, not when the server starts.
   */
  async bucketOf(site: Site): Promise<S3BlobStore> {
    const cached = this.buckets.get(site.id);
    if (cached && cached.version === site.settingsVersion) return cached.bucket;
    const target: S3Target = {
      endpoint: site.s3.endpoint,
      region: site.s3.region ?? 'us-east-1',
      bucket: site.s3.bucket!,
      keyPrefix: site.s3.prefix ? `${site.s3.prefix}/` : '',
      accessKeyId: site.s3.accessKeyId!,
      secretAccessKey: this.deps.sites.secretOf(site)!,
    };
    // The settings were checked against the outbound policy when saved; the policy may have changed since
    // (and an IP literal never reaches the connect-time lookup), so again here, once per settings version.
    if (site.s3.endpoint) await checkS3Endpoint(this.deps.outbound, site.s3.endpoint);
    let open = this.deps.openBucket;
    if (!open) {
      const { openS3Bucket } = await import('../../storage/s3-blob-store.ts');
      const lookup = this.deps.outbound.connectLookup();
      // A site's own endpoint connects only to addresses the policy allows; AWS's (no endpoint) is public.
      open = (t) => openS3Bucket(t, { lookup: t.endpoint ? lookup : undefined });
    }
    // Another caller may have opened it while the module loaded.
    const again = this.buckets.get(site.id);
    if (again && again.version === site.settingsVersion) return again.bucket;
    again?.bucket.close();
    const bucket = open(target);
    this.buckets.set(site.id, { version: site.settingsVersion, bucket });
    return bucket;
  }

  close(): void {
    for (const { bucket } of this.buckets.values()) bucket.close();
    this.buckets.clear();
  }

  /** The `publish.upload` handler. */
  async runUpload(args: UploadArgs, ctx: Pick<TaskContext, 'attempt' | 'signal' | 'taskResult'>): Promise<Record<string, string | boolean>> {
    const { repo } = this.deps;
    const site = await this.deps.sites.findById(args.siteId);
    if (!site || !mirrorConfigured(site)) return { skipped: 'the site is gone or has no bucket configured' };
    const holder = `${ctx.taskResult.id}:${ctx.attempt}`;
    const lastAttempt = ctx.attempt >= ctx.taskResult.maxAttempts;
    // The common case in one statement: the file is live, not verified yet, and nobody holds it.
    let file = await repo.claimFileForUpload(site.id, args.path, holder, this.now(), new Date(this.deps.clock.now().getTime() + LEASE_MS).toISOString());
    if (!file) {
      const row = await repo.findFile(site.id, args.path);
      if (!row || row.deleted) return { skipped: 'the file was deleted' };
      if (row.cdn.syncVerified && row.cdn.cdnHash === row.sha256) return { verified: true, sha256: row.sha256, already: true };
      // Another job is mirroring this file; it loops until the current version is verified.
      if (lastAttempt) return { skipped: 'another upload of this file holds it' };
      throw new MirrorBusy(`another upload of ${args.path} is running`);
    }
    let released = false;
    try {
      for (let round = 0; ; round++) {
        if (round > 0) {
          const current = await repo.findFileById(file.id);
          if (!current || current.deleted) return { skipped: 'the file was deleted' };
          file = current;
        }
        const outcome = await this.uploadOnce(site, file, ctx);
        if (outcome.sent !== file.sha256 || outcome.back !== outcome.sent) {
          const after = await repo.findFileById(file.id);
          if (after && !after.deleted && after.generation !== file.generation) {
            await this.log(file, { action: 'upload', status: 'superseded', attempt: ctx.attempt, localHash: outcome.sent, cdnHash: outcome.back, syncVerified: false, error: null });
            continue; // a newer local version arrived meanwhile: it is ours to mirror now
          }
        }
        if (outcome.sent !== file.sha256) {
          throw new Error(`the local file no longer matches the index (sha256 ${outcome.sent}, index ${file.sha256}); run rebuild-index --scope publishing`);
        }
        if (outcome.back !== outcome.sent) {
          const error = outcome.back === null ? 'the object is missing after the upload' : `read-back mismatch: the bucket holds sha256 ${outcome.back}, the local file is ${outcome.sent}`;
          await this.log(file, { action: 'upload', status: 'mismatch', attempt: ctx.attempt, localHash: outcome.sent, cdnHash: outcome.back, syncVerified: false, error });
          throw new Error(error);
        }
        // Conditional on the generation: a newer version written during the upload is not marked verified.
        // State, lease and log in one transaction shared with the uploads finishing at the same time.
        if (!(await this.finished.add({ file, holder, attempt: ctx.attempt, cdnHash: outcome.back }))) continue;
        released = true;
        return { verified: true, sha256: outcome.back };
      }
    } catch (err) {
      const message = (err as Error).message.slice(0, 1000);
      if (!(err instanceof MirrorBusy)) {
        const status = lastAttempt ? 'dead_letter' : 'failed';
        await repo.setMirrorState(file.id, file.generation, { status, syncVerified: false, attempts: ctx.attempt, lastError: message, now: this.now() });
        if (lastAttempt) {
          await this.log(file, { action: 'upload', status: 'dead_letter', attempt: ctx.attempt, localHash: file.sha256, cdnHash: null, syncVerified: false, error: message });
          await this.deps.alerts.raise({
            organizationId: site.organizationId,
            conditionKey: deadLetterCondition(site.id),
            kind: 'publish.mirror_dead_letter',
            subject: site.name,
            severity: 'critical',
            message: `site ${site.name}: mirroring ${file.path} to the bucket failed ${ctx.attempt} times and was given up (dead letter); URLs of unverified files point at the local copy`,
            details: { site: site.name, path: file.path, last_error: message },
          });
        } else {
          await this.log(file, { action: 'upload', status: 'error', attempt: ctx.attempt, localHash: file.sha256, cdnHash: null, syncVerified: false, error: message });
        }
      }
      throw err;
    } finally {
      if (!released) await repo.releaseLease(file.id, holder).catch(() => {});
    }
  }

  /** The `publish.delete` handler: removes the objects of files deleted locally, then their rows. */
  async runRemove(args: RemoveArgs, ctx: Pick<TaskContext, 'attempt' | 'signal' | 'taskResult'>): Promise<{ removed: number }> {
    const { repo } = this.deps;
    const site = await this.deps.sites.findById(args.siteId);
    let removed = 0;
    const holder = `${ctx.taskResult.id}:${ctx.attempt}`;
    for (const item of args.items) {
      const file = await repo.findFile(args.siteId, item.path);
      // Written again since (revived), or already gone: nothing to remove.
      if (!file || !file.deleted || file.generation !== item.generation) continue;
      if (!(await repo.claimLease(file.id, holder, this.now(), new Date(this.deps.clock.now().getTime() + LEASE_MS).toISOString()))) throw new MirrorBusy(`an upload of ${item.path} is running`);
      try {
        if (site && mirrorConfigured(site)) await (await this.bucketOf(site)).deleteObject(file.path, ctx.signal);
        await repo.purgeDeleted(file.id, file.generation);
        await this.log(file, { action: 'delete', status: 'deleted', attempt: ctx.attempt, localHash: null, cdnHash: null, syncVerified: false, error: null });
        removed++;
      } finally {
        await repo.releaseLease(file.id, holder).catch(() => {});
      }
    }
    return { removed };
  }

  /**
   * One pass: read the local file from disk and send it (with the index's sha256 as x-amz-checksum-sha256,
   * so a server that checks it refuses other bytes), then read the object back and hash it. Hashes of
   * both sides: an ETag is never taken for a content hash.
   */
  private async uploadOnce(site: Site, file: PublishedFile, ctx: Pick<TaskContext, 'signal'>): Promise<{ sent: string; back: string | null }> {
    const { store } = this.deps;
    const first = await store.open(site.name, file.path);
    if (!first) throw new Error(`the local file ${file.path} is missing`);
    const { size, version } = first.stat;
    let firstUsed = false;
    // Each multipart part streams its own range from disk; every part must come from the same version.
    const read = async (start: number, end: number) => {
      if (!firstUsed) {
        firstUsed = true;
        return first.stream({ start, end });
      }
      const again = await store.open(site.name, file.path);
      if (!again || again.stat.version !== version) {
        await again?.close();
        throw new Error('the local file changed during the upload');
      }
      return again.stream({ start, end });
    };
    let sent: string;
    let bucket: S3BlobStore;
    try {
      bucket = await this.bucketOf(site);
      ({ sentSha256: sent } = await bucket.putFile(file.path, size, read, {
        contentType: contentTypeFor(file.path),
        cacheControl: site.cacheControl,
        sha256: file.sha256,
        checksumSha256: file.sha256,
        multipartThreshold: this.deps.multipartThresholdBytes,
        signal: ctx.signal,
      }));
    } catch (err) {
      // A server that checks the checksum refused the bytes: say so when the disk drifted from the index.
      // (By name: a value import of the adapter would load the SDK at start-up; it is loaded on first use.)
      if ((err as Error).name === 'BucketError' && CHECKSUM_REFUSED.has((err as { s3Code?: string }).s3Code ?? '')) {
        const onDisk = await store.hashFile(site.name, file.path);
        if (onDisk && onDisk.sha256 !== file.sha256) return { sent: onDisk.sha256, back: null };
      }
      throw err;
    } finally {
      await first.close();
    }
    const back = await bucket.readBackSha256(file.path, ctx.signal);
    return { sent, back: back?.sha256 ?? null };
  }

  private async log(file: PublishedFile, e: Omit<PublishLogEntry, 'siteId' | 'path' | 'generation'>): Promise<void> {
    await this.deps.repo.appendLog([{ ...e, siteId: file.siteId, path: file.path, generation: file.generation, now: this.now() }]);
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }
}

interface FinishedUpload {
  file: PublishedFile;
  holder: string;
  attempt: number;
  cdnHash: string;
}

/**
 * Verified uploads, committed together: each one's mirror state, lease release and log entry, for every
 * upload that finishes while the previous commit is under way, in one transaction (group commit). A
 * mirror of many small files otherwise spends more on its commits than on its PUTs. add() resolves with
 * whether the row was still at that generation (false: superseded, logged as such, the lease kept).
 */
class FinishedUploads {
  private pending: Array<{ item: FinishedUpload; resolve: (applied: boolean) => void; reject: (err: unknown) => void }> = [];
  private flushing = false;

  constructor(
    private readonly db: Db,
    private readonly repo: PublishingRepository,
    private readonly now: () => string,
  ) {}

  add(item: FinishedUpload): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        const now = this.now();
        const applied = await inTransaction(this.db, async (handle) => {
          const tx = this.repo.on(handle);
          const out: boolean[] = [];
          for (const { item } of batch) out.push(await tx.finishVerified(item.file.id, item.file.generation, item.holder, { cdnHash: item.cdnHash, attempts: item.attempt, now }));
          await tx.appendLog(
            batch.map(({ item }, i) => ({
              siteId: item.file.siteId,
              path: item.file.path,
              generation: item.file.generation,
              action: 'upload' as const,
              status: out[i] ? ('verified' as const) : ('superseded' as const),
              attempt: item.attempt,
              localHash: item.cdnHash,
              cdnHash: item.cdnHash,
              syncVerified: out[i]!,
              error: null,
              now,
            })),
          );
          return out;
        });
        batch.forEach((b, i) => b.resolve(applied[i]!));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = false;
  }
}
