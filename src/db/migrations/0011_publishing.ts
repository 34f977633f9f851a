import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * Publishing (issue 11): sites and their settings, the index of published files with each file's mirror
 * state, the publish log, the settings version every process watches, and the org-wide alerts and
 * webhooks (general: backups raise alerts and deliver webhooks through the same tables).
 * Append-only: never edit once released.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const pg = isPostgres(db);
  const autoId = <T extends string>(t: CreateTableBuilder<T, never>) =>
    pg ? t.addColumn('id', 'bigserial', (c) => c.primaryKey()) : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  await db.schema
    .createTable('publish_sites')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    // Global: the public URL /p/{site}/… names no organization.
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('cdn_enabled', 'integer', (c) => c.notNull())
    .addColumn('local_fallback_mode', 'integer', (c) => c.notNull())
    .addColumn('cdn_base_url', 'text')
    .addColumn('cache_control', 'text', (c) => c.notNull())
    .addColumn('s3_endpoint', 'text')
    .addColumn('s3_region', 'text')
    .addColumn('s3_bucket', 'text')
    .addColumn('s3_prefix', 'text', (c) => c.notNull())
    .addColumn('s3_access_key_id', 'text')
    // AES-256-GCM (src/lib/secret-box.ts); never returned by the API.
    .addColumn('s3_secret_access_key_enc', 'text')
    .addColumn('health_business_hours', 'text', (c) => c.notNull())
    .addColumn('health_time_zone', 'text', (c) => c.notNull())
    .addColumn('health_sample_size', 'integer', (c) => c.notNull())
    .addColumn('health_min_free_bytes', 'bigint', (c) => c.notNull())
    // Failover: 'auto' follows the health checks; 'cdn' / 'local' are an admin's pin.
    .addColumn('failover_pin', 'text', (c) => c.notNull())
    .addColumn('failover_failure_threshold', 'integer', (c) => c.notNull())
    .addColumn('failover_recovery_threshold', 'integer', (c) => c.notNull())
    // What the automatic failover decided last ('cdn' | 'local') and the streaks that lead there.
    .addColumn('failover_state', 'text', (c) => c.notNull())
    .addColumn('failover_failures', 'integer', (c) => c.notNull())
    .addColumn('failover_successes', 'integer', (c) => c.notNull())
    .addColumn('failover_changed_at', 'text')
    .addColumn('last_health_at', 'text')
    .addColumn('last_health_ok', 'integer')
    // The global settings version at this site's last change (publish_settings_version).
    .addColumn('settings_version', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('publish_sites_org_idx').on('publish_sites').columns(['organization_id', 'name']).execute();

  // One row: bumped in the transaction of every settings change; processes poll it and are nudged.
  await db.schema
    .createTable('publish_settings_version')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .execute();
  await db.insertInto('publish_settings_version').values({ id: 1, version: 0 }).execute();

  await autoId(db.schema.createTable('published_files'))
    .addColumn('site_id', 'text', (c) => c.notNull().references('publish_sites.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('modified_at', 'text', (c) => c.notNull())
    // Bumped by every write, rollback and delete: mirror work is conditional on it.
    .addColumn('generation', 'bigint', (c) => c.notNull())
    // A deleted file keeps its row (deleted = 1) until its bucket object is gone, so a re-created file and
    // the pending bucket delete of the old one are ordered by the same per-file upload lease.
    .addColumn('deleted', 'integer', (c) => c.notNull())
    .addColumn('cdn_status', 'text', (c) => c.notNull())
    .addColumn('cdn_hash', 'text')
    .addColumn('sync_verified', 'integer', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('upload_holder', 'text')
    .addColumn('upload_lease_until', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('published_files_site_path_uq', ['site_id', 'path'])
    .execute();
  // Reconciliation streams a site's rows in byte order of path (SQLite's BINARY collation already is).
  if (pg) await sql`CREATE INDEX published_files_sync_order_idx ON published_files (site_id, path COLLATE "C")`.execute(db);

  await autoId(db.schema.createTable('publish_log'))
    .addColumn('site_id', 'text', (c) => c.notNull().references('publish_sites.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('local_hash', 'text')
    .addColumn('cdn_hash', 'text')
    .addColumn('sync_verified', 'integer', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('publish_log_site_idx').on('publish_log').columns(['site_id', 'path', 'id']).execute();

  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    // What is wrong, and with what: one open alert per condition (the partial unique index below).
    .addColumn('condition_key', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('occurrences', 'integer', (c) => c.notNull())
    .addColumn('first_seen_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('acknowledged_at', 'text')
    .addColumn('acknowledged_by', 'text')
    .addColumn('resolved_at', 'text')
    .execute();
  await db.schema
    .createIndex('alerts_open_condition_uq')
    .on('alerts')
    .columns(['organization_id', 'condition_key'])
    .unique()
    .where(sql.ref('resolved_at'), 'is', null)
    .execute();
  await db.schema.createIndex('alerts_org_idx').on('alerts').columns(['organization_id', 'last_seen_at']).execute();

  await db.schema
    .createTable('webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('url', 'text', (c) => c.notNull())
    // JSON array of event names ("alert.raised", …) or ["*"].
    .addColumn('events', 'text', (c) => c.notNull())
    // The HMAC key, encrypted (it must be read back to sign, so it cannot be hashed).
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('last_delivery_at', 'text')
    .addColumn('last_delivery_status', 'text')
    .execute();
  await db.schema.createIndex('webhooks_org_idx').on('webhooks').column('organization_id').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
