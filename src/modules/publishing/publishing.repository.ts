import { sql, type Selectable } from 'kysely';
import type { DialectName } from '../../db/database.ts';
import type { DbOrTx, PublishedFilesTable, PublishSitesTable } from '../../db/schema.ts';
import type { FailoverPin, FailoverState } from './failover.ts';
import type { CdnStatus, PublishedFile, PublishLogEntry, Site } from './publishing.types.ts';

function toSite(r: PublishSitesTable): Site {
  return {
    id: r.id,
    organizationId: r.organization_id,
    name: r.name,
    cdnEnabled: r.cdn_enabled === 1,
    localFallbackMode: r.local_fallback_mode === 1,
    cdnBaseUrl: r.cdn_base_url,
    cacheControl: r.cache_control,
    s3: { endpoint: r.s3_endpoint, region: r.s3_region, bucket: r.s3_bucket, prefix: r.s3_prefix, accessKeyId: r.s3_access_key_id, secretAccessKeyEnc: r.s3_secret_access_key_enc },
    health: { businessHours: r.health_business_hours, timeZone: r.health_time_zone, sampleSize: r.health_sample_size, minFreeBytes: r.health_min_free_bytes },
    failover: {
      pin: r.failover_pin as FailoverPin,
      failureThreshold: r.failover_failure_threshold,
      recoveryThreshold: r.failover_recovery_threshold,
      state: r.failover_state as FailoverState,
      failures: r.failover_failures,
      successes: r.failover_successes,
      changedAt: r.failover_changed_at,
    },
    lastHealthAt: r.last_health_at,
    lastHealthOk: r.last_health_ok === null ? null : r.last_health_ok === 1,
    settingsVersion: r.settings_version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function siteRow(s: Site): PublishSitesTable {
  return {
    id: s.id,
    organization_id: s.organizationId,
    name: s.name,
    cdn_enabled: s.cdnEnabled ? 1 : 0,
    local_fallback_mode: s.localFallbackMode ? 1 : 0,
    cdn_base_url: s.cdnBaseUrl,
    cache_control: s.cacheControl,
    s3_endpoint: s.s3.endpoint,
    s3_region: s.s3.region,
    s3_bucket: s.s3.bucket,
    s3_prefix: s.s3.prefix,
    s3_access_key_id: s.s3.accessKeyId,
    s3_secret_access_key_enc: s.s3.secretAccessKeyEnc,
    health_business_hours: s.health.businessHours,
    health_time_zone: s.health.timeZone,
    health_sample_size: s.health.sampleSize,
    health_min_free_bytes: s.health.minFreeBytes,
    failover_pin: s.failover.pin,
    failover_failure_threshold: s.failover.failureThreshold,
    failover_recovery_threshold: s.failover.recoveryThreshold,
    failover_state: s.failover.state,
    failover_failures: s.failover.failures,
    failover_successes: s.failover.successes,
    failover_changed_at: s.failover.changedAt,
    last_health_at: s.lastHealthAt,
    last_health_ok: s.lastHealthOk === null ? null : s.lastHealthOk ? 1 : 0,
    settings_version: s.settingsVersion,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  };
}

/** A live row as reconciliation compares it (publishing-index-side.ts). */
export interface IndexedPublishedRow {
  id: number;
  key: string;
  kind: 'file';
  size: number;
  sha256: string;
  modifiedAt: string;
}

function toFile(r: Selectable<PublishedFilesTable>): PublishedFile {
  return {
    id: r.id,
    siteId: r.site_id,
    path: r.path,
    size: r.size,
    sha256: r.sha256,
    modifiedAt: r.modified_at,
    generation: r.generation,
    deleted: r.deleted === 1,
    cdn: { status: r.cdn_status as CdnStatus, cdnHash: r.cdn_hash, syncVerified: r.sync_verified === 1, attempts: r.attempts, lastError: r.last_error },
  };
}

/** Escapes LIKE wildcards so a folder name is matched literally. */
const likePrefix = (folder: string) => `${folder.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`;

export class PublishingRepository {
  constructor(
    private readonly db: DbOrTx,
    private readonly dialect: DialectName,
  ) {}

  /** The same repository on another handle (a transaction the service opened with inTransaction). */
  on(db: DbOrTx): PublishingRepository {
    return new PublishingRepository(db, this.dialect);
  }

  // ------------------------------------------------------------------ settings version

  /** Bumps the global settings version (in the caller's transaction) and returns the new value. */
  async bumpVersion(): Promise<number> {
    const row = await this.db
      .updateTable('publish_settings_version')
      .set((eb) => ({ version: eb('version', '+', 1) }))
      .where('id', '=', 1)
      .returning('version')
      .executeTakeFirstOrThrow();
    return row.version;
  }

  async currentVersion(): Promise<number> {
    const row = await this.db.selectFrom('publish_settings_version').select('version').where('id', '=', 1).executeTakeFirst();
    return row?.version ?? 0;
  }

  // ------------------------------------------------------------------ sites

  async insertSite(site: Site): Promise<void> {
    await this.db.insertInto('publish_sites').values(siteRow(site)).execute();
  }

  async updateSite(site: Site): Promise<void> {
    const { id, organization_id, created_at, ...rest } = siteRow(site);
    void organization_id;
    void created_at;
    await this.db.updateTable('publish_sites').set(rest).where('id', '=', id).execute();
  }

  async deleteSite(id: string): Promise<void> {
    await this.db.deleteFrom('publish_sites').where('id', '=', id).execute();
  }

  async findSiteByName(name: string): Promise<Site | undefined> {
    const row = await this.db.selectFrom('publish_sites').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toSite(row) : undefined;
  }

  async findSiteById(id: string): Promise<Site | undefined> {
    const row = await this.db.selectFrom('publish_sites').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toSite(row) : undefined;
  }

  async listSites(organizationId: string): Promise<Site[]> {
    const rows = await this.db.selectFrom('publish_sites').selectAll().where('organization_id', '=', organizationId).orderBy('name').execute();
    return rows.map(toSite);
  }

  /** Every site of every organization (the health check's round). */
  async allSites(): Promise<Site[]> {
    const rows = await this.db.selectFrom('publish_sites').selectAll().orderBy('name').execute();
    return rows.map(toSite);
  }

  // ------------------------------------------------------------------ files

  async findFile(siteId: string, path: string): Promise<PublishedFile | undefined> {
    const row = await this.db.selectFrom('published_files').selectAll().where('site_id', '=', siteId).where('path', '=', path).executeTakeFirst();
    return row ? toFile(row) : undefined;
  }

  /** Records a new local version (write or rollback): a new generation, mirror state back to pending. */
  async recordVersion(f: { siteId: string; path: string; size: number; sha256: string; modifiedAt: string; now: string }): Promise<PublishedFile> {
    const reset = { size: f.size, sha256: f.sha256, modified_at: f.modifiedAt, deleted: 0, cdn_status: 'pending', cdn_hash: null, sync_verified: 0, attempts: 0, last_error: null, updated_at: f.now };
    const row = await this.db
      .insertInto('published_files')
      .values({ site_id: f.siteId, path: f.path, generation: 1, upload_holder: null, upload_lease_until: null, ...reset })
      .onConflict((oc) => oc.columns(['site_id', 'path']).doUpdateSet((eb) => ({ ...reset, generation: eb('published_files.generation', '+', 1) })))
      .returningAll()
      .executeTakeFirstOrThrow();
    return toFile(row);
  }

  /** Marks files deleted (their bucket objects go next); returns them with their new generation. */
  async markDeleted(siteId: string, paths: readonly string[], now: string): Promise<PublishedFile[]> {
    if (paths.length === 0) return [];
    const out: PublishedFile[] = [];
    for (let i = 0; i < paths.length; i += 500) {
      const rows = await this.db
        .updateTable('published_files')
        .set((eb) => ({ deleted: 1, cdn_status: 'deleting', sync_verified: 0, attempts: 0, last_error: null, generation: eb('generation', '+', 1), updated_at: now }))
        .where('site_id', '=', siteId)
        .where('path', 'in', paths.slice(i, i + 500))
        .where('deleted', '=', 0)
        .returningAll()
        .execute();
      out.push(...rows.map(toFile));
    }
    return out;
  }

  /** Live (not deleted) paths at or below `folder`. */
  async livePathsBelow(siteId: string, folder: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('published_files')
      .select('path')
      .where('site_id', '=', siteId)
      .where('deleted', '=', 0)
      .where((eb) => eb.or([eb('path', '=', folder), eb('path', 'like', sql<string>`${likePrefix(folder)} ESCAPE '\\'`)]))
      .execute();
    return rows.map((r) => r.path);
  }

  /** A page of live files below `folder` ('' = the whole site), by path, after `after`. */
  async listFiles(siteId: string, folder: string, limit: number, after?: string): Promise<PublishedFile[]> {
    let q = this.db.selectFrom('published_files').selectAll().where('site_id', '=', siteId).where('deleted', '=', 0);
    if (folder !== '') q = q.where('path', 'like', sql<string>`${likePrefix(folder)} ESCAPE '\\'`);
    if (after !== undefined) q = q.where('path', '>', after);
    const rows = await q.orderBy(sql`path COLLATE ${sql.raw(this.binaryCollation())}`).limit(limit).execute();
    return rows.map(toFile);
  }

  async countLive(siteId: string): Promise<number> {
    const row = await this.db.selectFrom('published_files').select((eb) => eb.fn.countAll<number>().as('n')).where('site_id', '=', siteId).where('deleted', '=', 0).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async countByStatus(siteId: string, status: CdnStatus): Promise<number> {
    const row = await this.db.selectFrom('published_files').select((eb) => eb.fn.countAll<number>().as('n')).where('site_id', '=', siteId).where('deleted', '=', 0).where('cdn_status', '=', status).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Up to `n` live files picked at random (the health check's sample). */
  async sample(siteId: string, n: number): Promise<PublishedFile[]> {
    const rows = await this.db.selectFrom('published_files').selectAll().where('site_id', '=', siteId).where('deleted', '=', 0).orderBy(sql`random()`).limit(n).execute();
    return rows.map(toFile);
  }

  /** Puts every live file of the site back to pending (resync); returns their paths. */
  async resetMirror(siteId: string, now: string): Promise<string[]> {
    const rows = await this.db
      .updateTable('published_files')
      .set({ cdn_status: 'pending', sync_verified: 0, attempts: 0, last_error: null, updated_at: now })
      .where('site_id', '=', siteId)
      .where('deleted', '=', 0)
      .returning('path')
      .execute();
    return rows.map((r) => r.path);
  }

  // ------------------------------------------------------------------ reconciliation (publishing-index-side.ts)

  /** A page of live rows at or below `scope` ('' = the whole site), in byte order of path, after `after`. */
  async liveRowsByKey(siteId: string, scope: string, after: string | null, limit: number): Promise<IndexedPublishedRow[]> {
    let q = this.db.selectFrom('published_files').select(['id', 'path', 'size', 'sha256', 'modified_at']).where('site_id', '=', siteId).where('deleted', '=', 0);
    if (scope !== '') q = q.where((eb) => eb.or([eb('path', '=', scope), eb('path', 'like', sql<string>`${likePrefix(scope)} ESCAPE '\\'`)]));
    if (after !== null) q = q.where(sql<boolean>`path COLLATE ${sql.raw(this.binaryCollation())} > ${after}`);
    const rows = await q.orderBy(sql`path COLLATE ${sql.raw(this.binaryCollation())}`).limit(limit).execute();
    return rows.map((r) => ({ id: r.id, key: r.path, kind: 'file' as const, size: r.size, sha256: r.sha256, modifiedAt: r.modified_at }));
  }

  /** A page of rows (deleted ones too) at or below `scope`, in byte order of path: the bucket comparison. */
  async mirrorRowsByKey(siteId: string, scope: string, after: string | null, limit: number): Promise<Array<{ path: string; deleted: boolean; syncVerified: boolean }>> {
    let q = this.db.selectFrom('published_files').select(['path', 'deleted', 'sync_verified']).where('site_id', '=', siteId);
    if (scope !== '') q = q.where((eb) => eb.or([eb('path', '=', scope), eb('path', 'like', sql<string>`${likePrefix(scope)} ESCAPE '\\'`)]));
    if (after !== null) q = q.where(sql<boolean>`path COLLATE ${sql.raw(this.binaryCollation())} > ${after}`);
    const rows = await q.orderBy(sql`path COLLATE ${sql.raw(this.binaryCollation())}`).limit(limit).execute();
    return rows.map((r) => ({ path: r.path, deleted: r.deleted === 1, syncVerified: r.sync_verified === 1 }));
  }

  /** Of `paths`, those with a live row now. */
  async livePathsIn(siteId: string, paths: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < paths.length; i += 500) {
      const rows = await this.db.selectFrom('published_files').select('path').where('site_id', '=', siteId).where('deleted', '=', 0).where('path', 'in', paths.slice(i, i + 500)).execute();
      for (const r of rows) out.add(r.path);
    }
    return out;
  }

  /** Path and last update of live rows by id (deleted or gone rows are absent). */
  async liveVersions(ids: readonly number[]): Promise<Map<number, { path: string; updatedAt: string }>> {
    const out = new Map<number, { path: string; updatedAt: string }>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.selectFrom('published_files').select(['id', 'path', 'updated_at']).where('id', 'in', ids.slice(i, i + 500)).where('deleted', '=', 0).execute();
      for (const r of rows) out.set(r.id, { path: r.path, updatedAt: r.updated_at });
    }
    return out;
  }

  /**
   * Indexes a file found on disk without a live row: inserts it, or revives a deleted row (new generation).
   * A live row that appeared meanwhile (a write committed during the scan) is left alone: undefined.
   */
  async indexFound(f: { siteId: string; path: string; size: number; sha256: string; modifiedAt: string; now: string }): Promise<PublishedFile | undefined> {
    const reset = { size: f.size, sha256: f.sha256, modified_at: f.modifiedAt, deleted: 0, cdn_status: 'pending', cdn_hash: null, sync_verified: 0, attempts: 0, last_error: null, updated_at: f.now };
    const row = await this.db
      .insertInto('published_files')
      .values({ site_id: f.siteId, path: f.path, generation: 1, upload_holder: null, upload_lease_until: null, ...reset })
      .onConflict((oc) =>
        oc
          .columns(['site_id', 'path'])
          .doUpdateSet((eb) => ({ ...reset, generation: eb('published_files.generation', '+', 1) }))
          .where('published_files.deleted', '=', 1),
      )
      .returningAll()
      .executeTakeFirst();
    return row ? toFile(row) : undefined;
  }

  /**
   * Brings a live row in line with its file on disk, if the row is unchanged since `unchangedSince`. New
   * content (another sha256 or size) is a new generation whose mirror starts over; the same content only
   * takes the file's time. Undefined when the row changed meanwhile.
   */
  async reindex(id: number, unchangedSince: string, f: { size: number; sha256: string; modifiedAt: string; now: string }): Promise<{ file: PublishedFile; contentChanged: boolean } | undefined> {
    const same = await this.db
      .updateTable('published_files')
      .set({ modified_at: f.modifiedAt, updated_at: f.now })
      .where('id', '=', id)
      .where('deleted', '=', 0)
      .where('updated_at', '<', unchangedSince)
      .where('size', '=', f.size)
      .where('sha256', '=', f.sha256)
      .returningAll()
      .executeTakeFirst();
    if (same) return { file: toFile(same), contentChanged: false };
    const changed = await this.db
      .updateTable('published_files')
      .set((eb) => ({ size: f.size, sha256: f.sha256, modified_at: f.modifiedAt, cdn_status: 'pending', cdn_hash: null, sync_verified: 0, attempts: 0, last_error: null, generation: eb('generation', '+', 1), updated_at: f.now }))
      .where('id', '=', id)
      .where('deleted', '=', 0)
      .where('updated_at', '<', unchangedSince)
      .returningAll()
      .executeTakeFirst();
    return changed ? { file: toFile(changed), contentChanged: true } : undefined;
  }

  /** Marks rows deleted (their objects go next) if unchanged since `unchangedSince`; returns them. */
  async markDeletedIfUnchanged(ids: readonly number[], unchangedSince: string, now: string): Promise<PublishedFile[]> {
    const out: PublishedFile[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .updateTable('published_files')
        .set((eb) => ({ deleted: 1, cdn_status: 'deleting', sync_verified: 0, attempts: 0, last_error: null, generation: eb('generation', '+', 1), updated_at: now }))
        .where('id', 'in', ids.slice(i, i + 500))
        .where('deleted', '=', 0)
        .where('updated_at', '<', unchangedSince)
        .returningAll()
        .execute();
      out.push(...rows.map(toFile));
    }
    return out;
  }

  /** Whether the site has live rows at or below `scope`. */
  async hasLiveRows(siteId: string, scope: string): Promise<boolean> {
    return (await this.liveRowsByKey(siteId, scope, null, 1)).length > 0;
  }

  // ------------------------------------------------------------------ mirror state

  /**
   * Takes the per-file upload lease (one mirror job per file at a time, across processes): succeeds when
   * nobody holds it, its lease ran out, or `holder` already holds it.
   */
  async claimLease(fileId: number, holder: string, now: string, until: string): Promise<boolean> {
    const r = await this.db
      .updateTable('published_files')
      .set({ upload_holder: holder, upload_lease_until: until })
      .where('id', '=', fileId)
      .where((eb) => eb.or([eb('upload_holder', 'is', null), eb('upload_lease_until', '<', now), eb('upload_holder', '=', holder)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * findFile + claimLease in one statement, for the upload's common case: takes the lease of the live
   * file at `path` unless its current version is verified already. Undefined when that did not happen
   * (no such live file, verified already, or leased by another holder): the caller looks at the row.
   */
  async claimFileForUpload(siteId: string, path: string, holder: string, now: string, until: string): Promise<PublishedFile | undefined> {
    const row = await this.db
      .updateTable('published_files')
      .set({ upload_holder: holder, upload_lease_until: until })
      .where('site_id', '=', siteId)
      .where('path', '=', path)
      .where('deleted', '=', 0)
      .where((eb) => eb.or([eb('sync_verified', '=', 0), eb('cdn_hash', 'is', null), eb('cdn_hash', '!=', eb.ref('sha256'))]))
      .where((eb) => eb.or([eb('upload_holder', 'is', null), eb('upload_lease_until', '<', now), eb('upload_holder', '=', holder)]))
      .returningAll()
      .executeTakeFirst();
    return row ? toFile(row) : undefined;
  }

  /**
   * Marks one generation verified and gives up `holder`'s lease, in one statement. False (and the lease
   * kept) when a newer generation was written meanwhile: the holder mirrors that one next.
   */
  async finishVerified(fileId: number, generation: number, holder: string, state: { cdnHash: string; attempts: number; now: string }): Promise<boolean> {
    const r = await this.db
      .updateTable('published_files')
      .set({
        cdn_status: 'verified',
        sync_verified: 1,
        cdn_hash: state.cdnHash,
        attempts: state.attempts,
        last_error: null,
        updated_at: state.now,
        upload_holder: sql<string | null>`CASE WHEN upload_holder = ${holder} THEN NULL ELSE upload_holder END`,
        upload_lease_until: sql<string | null>`CASE WHEN upload_holder = ${holder} THEN NULL ELSE upload_lease_until END`,
      })
      .where('id', '=', fileId)
      .where('generation', '=', generation)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async releaseLease(fileId: number, holder: string): Promise<void> {
    await this.db.updateTable('published_files').set({ upload_holder: null, upload_lease_until: null }).where('id', '=', fileId).where('upload_holder', '=', holder).execute();
  }

  async findFileById(id: number): Promise<PublishedFile | undefined> {
    const row = await this.db.selectFrom('published_files').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toFile(row) : undefined;
  }

  /** Sets the mirror state of one generation; a newer generation written meanwhile is left alone. */
  async setMirrorState(fileId: number, generation: number, state: { status: CdnStatus; cdnHash?: string | null; syncVerified: boolean; attempts?: number; lastError?: string | null; now: string }): Promise<boolean> {
    const r = await this.db
      .updateTable('published_files')
      .set({
        cdn_status: state.status,
        sync_verified: state.syncVerified ? 1 : 0,
        ...(state.cdnHash !== undefined ? { cdn_hash: state.cdnHash } : {}),
        ...(state.attempts !== undefined ? { attempts: state.attempts } : {}),
        ...(state.lastError !== undefined ? { last_error: state.lastError } : {}),
        updated_at: state.now,
      })
      .where('id', '=', fileId)
      .where('generation', '=', generation)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Drops the row of a deleted file once its bucket object is gone (same generation only). */
  async purgeDeleted(fileId: number, generation: number): Promise<void> {
    await this.db.deleteFrom('published_files').where('id', '=', fileId).where('generation', '=', generation).where('deleted', '=', 1).execute();
  }

  async appendLog(entries: readonly (PublishLogEntry & { now: string })[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db
      .insertInto('publish_log')
      .values(
        entries.map((e) => ({
          site_id: e.siteId,
          path: e.path,
          generation: e.generation,
          action: e.action,
          status: e.status,
          attempt: e.attempt,
          local_hash: e.localHash,
          cdn_hash: e.cdnHash,
          sync_verified: e.syncVerified ? 1 : 0,
          error: e.error,
          created_at: e.now,
        })),
      )
      .execute();
  }

  async logOf(siteId: string, path: string, limit: number): Promise<(PublishLogEntry & { createdAt: string })[]> {
    const rows = await this.db.selectFrom('publish_log').selectAll().where('site_id', '=', siteId).where('path', '=', path).orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      siteId: r.site_id,
      path: r.path,
      generation: r.generation,
      action: r.action as PublishLogEntry['action'],
      status: r.status as PublishLogEntry['status'],
      attempt: r.attempt,
      localHash: r.local_hash,
      cdnHash: r.cdn_hash,
      syncVerified: r.sync_verified === 1,
      error: r.error,
      createdAt: r.created_at,
    }));
  }

  private binaryCollation(): string {
    // Byte order of paths on both dialects (the order reconciliation and listings rely on).
    return this.dialect === 'postgres' ? '"C"' : 'BINARY';
  }
}
