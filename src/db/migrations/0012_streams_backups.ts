import type { CreateTableBuilder, Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * Backups, part 1 (issue 9): the database adapter of the streams port, and the backups index.
 *
 * - `stream_entries` / `stream_groups` / `stream_pending`: an append-only log with consumer groups, the
 *   embedded default of src/streams (Redis Streams replaces it with the redis tasks backend). A group
 *   remembers the last entry it handed out; each delivered-but-unacknowledged entry has a pending row
 *   whose `delivered_at` decides when it is handed to another consumer again.
 * - `backup_locations`, `network_devices`, `stored_backups`: the index of what the git repositories and
 *   fs folders hold (the storage is the truth; `rebuild-index --scope backups` rebuilds the rows).
 * - `backup_task_outcomes`: one row per storage result consumed, keyed by task_identifier, so a result
 *   delivered twice (or a consumer killed between its write and its ack) is applied exactly once.
 * Append-only: never edit once released.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const pg = isPostgres(db);
  const autoId = <T extends string>(t: CreateTableBuilder<T, never>) =>
    pg ? t.addColumn('id', 'bigserial', (c) => c.primaryKey()) : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  await autoId(db.schema.createTable('stream_entries'))
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('stream_entries_stream_idx').on('stream_entries').columns(['stream', 'id']).execute();

  await db.schema
    .createTable('stream_groups')
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('group_name', 'text', (c) => c.notNull())
    .addColumn('last_id', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('stream_groups_pk', ['stream', 'group_name'])
    .execute();

  await db.schema
    .createTable('stream_pending')
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('group_name', 'text', (c) => c.notNull())
    .addColumn('entry_id', 'bigint', (c) => c.notNull())
    .addColumn('consumer', 'text', (c) => c.notNull())
    .addColumn('delivered_at', 'text', (c) => c.notNull())
    .addColumn('deliveries', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('stream_pending_pk', ['stream', 'group_name', 'entry_id'])
    .execute();
  await db.schema.createIndex('stream_pending_idle_idx').on('stream_pending').columns(['stream', 'group_name', 'delivered_at']).execute();

  await db.schema
    .createTable('backup_locations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('backup_locations_org_name_uq', ['organization_id', 'name'])
    .execute();

  await db.schema
    .createTable('network_devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('group_name', 'text', (c) => c.notNull())
    .addColumn('backup_location_id', 'text', (c) => c.notNull().references('backup_locations.id'))
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('strip_patterns', 'text', (c) => c.notNull())
    .addColumn('ignore_patterns', 'text', (c) => c.notNull())
    .addColumn('last_backup_at', 'text')
    .addColumn('last_changed_at', 'text')
    .addColumn('last_status', 'text')
    .addColumn('last_error', 'text')
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('network_devices_org_name_uq', ['organization_id', 'name'])
    .execute();
  await db.schema.createIndex('network_devices_location_idx').on('network_devices').column('backup_location_id').execute();

  await db.schema
    .createTable('stored_backups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('network_device_id', 'text', (c) => c.notNull().references('network_devices.id').onDelete('cascade'))
    .addColumn('location_id', 'text', (c) => c.notNull().references('backup_locations.id').onDelete('cascade'))
    .addColumn('storage_ref', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('collected_at', 'text', (c) => c.notNull())
    .addColumn('stored_at', 'text', (c) => c.notNull())
    .addColumn('task_identifier', 'text', (c) => c.notNull().unique())
    .execute();
  // History pages: newest first per device, keyset on (collected_at, id).
  await db.schema.createIndex('stored_backups_device_idx').on('stored_backups').columns(['network_device_id', 'collected_at', 'id']).execute();
  await db.schema.createIndex('stored_backups_location_idx').on('stored_backups').columns(['location_id', 'storage_ref']).execute();

  await db.schema
    .createTable('backup_task_outcomes')
    .addColumn('task_identifier', 'text', (c) => c.primaryKey())
    .addColumn('network_device_id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('processed_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
