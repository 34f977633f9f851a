import type { CreateTableBuilder, Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * Records sync (issue 5): organizations and memberships, devices, projects / tasks / comments with their
 * sync metadata, task history, the conflict list, the per-device mutation log (idempotent pushes), the
 * request log and daily metrics. Record tables are prefixed `rec_` so they never clash with the task
 * framework's tables. Append-only: never edit once released.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const pg = isPostgres(db);
  const autoId = <T extends string>(t: CreateTableBuilder<T, never>) =>
    pg ? t.addColumn('id', 'bigserial', (c) => c.primaryKey()) : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  await db.schema
    .createTable('organizations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('storage_quota_bytes', 'bigint')
    // Last sync sequence number handed out in this organization. Writers bump it under a row lock, so
    // changes commit in sequence order and a pull cursor never skips a change.
    .addColumn('change_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    // Highest sequence number of a purged tombstone: cursors at or below it answer 410 resync_required.
    .addColumn('purged_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('organization_members')
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('organization_members_pk', ['organization_id', 'user_id'])
    .execute();
  await db.schema.createIndex('organization_members_user_idx').on('organization_members').column('user_id').execute();

  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('last_mutation_id', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text')
    .addColumn('retired_at', 'text')
    .execute();
  await db.schema.createIndex('devices_user_idx').on('devices').column('user_id').execute();

  const withSyncColumns = <T extends string>(t: CreateTableBuilder<T, never>) =>
    t
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('vector_clock', 'text', (c) => c.notNull())
      .addColumn('field_clocks', 'text', (c) => c.notNull())
      .addColumn('checksum', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('origin_device_id', 'text')
      .addColumn('created_by', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text');

  await withSyncColumns(
    db.schema
      .createTable('rec_projects')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('archived', 'integer', (c) => c.notNull().defaultTo(0)),
  ).execute();

  await withSyncColumns(
    db.schema
      .createTable('rec_tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
      .addColumn('title', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('due_date', 'text')
      .addColumn('assignee_id', 'text')
      .addColumn('project_id', 'text')
      .addColumn('tags', 'text', (c) => c.notNull())
      .addColumn('custom_fields', 'text', (c) => c.notNull()),
  ).execute();

  await withSyncColumns(
    db.schema
      .createTable('rec_comments')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('parent_id', 'text')
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('edited_at', 'text'),
  ).execute();

  for (const table of ['rec_projects', 'rec_tasks', 'rec_comments']) {
    // Pull: WHERE organization_id = ? AND seq > ? ORDER BY seq.
    await db.schema.createIndex(`${table}_seq_idx`).on(table).columns(['organization_id', 'seq']).execute();
    // Tombstone purge: WHERE deleted_at < ?. Partial, so inserting live records does not pay for it.
    await db.schema.createIndex(`${table}_deleted_idx`).on(table).column('deleted_at').where('deleted_at', 'is not', null).execute();
  }
  await db.schema.createIndex('rec_tasks_updated_idx').on('rec_tasks').columns(['organization_id', 'updated_at']).execute();
  await db.schema.createIndex('rec_tasks_project_idx').on('rec_tasks').columns(['organization_id', 'project_id']).execute();
  await db.schema.createIndex('rec_comments_task_idx').on('rec_comments').columns(['organization_id', 'task_id']).execute();

  await autoId(db.schema.createTable('rec_task_history'))
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('task_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('device_id', 'text')
    .addColumn('op', 'text', (c) => c.notNull())
    .addColumn('changes', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rec_task_history_task_idx').on('rec_task_history').columns(['task_id', 'id']).execute();

  await db.schema
    .createTable('sync_conflicts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('entity', 'text', (c) => c.notNull())
    .addColumn('entity_id', 'text', (c) => c.notNull())
    .addColumn('op', 'text', (c) => c.notNull())
    .addColumn('fields', 'text', (c) => c.notNull())
    .addColumn('local_data', 'text')
    .addColumn('local_clock', 'text', (c) => c.notNull())
    .addColumn('local_device_id', 'text')
    .addColumn('remote_data', 'text')
    .addColumn('remote_clock', 'text', (c) => c.notNull())
    .addColumn('remote_deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('resolution', 'text')
    .addColumn('resolved_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('resolved_at', 'text')
    .execute();
  await db.schema.createIndex('sync_conflicts_org_idx').on('sync_conflicts').columns(['organization_id', 'status', 'created_at']).execute();

  await db.schema
    .createTable('sync_mutations')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('mutation_id', 'bigint', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('entity', 'text', (c) => c.notNull())
    .addColumn('entity_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('conflict_id', 'text')
    .addColumn('reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('sync_mutations_pk', ['device_id', 'mutation_id'])
    .execute();
  await db.schema.createIndex('sync_mutations_created_idx').on('sync_mutations').column('created_at').execute();

  await autoId(db.schema.createTable('sync_log'))
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('device_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('changes', 'integer', (c) => c.notNull())
    .addColumn('conflicts', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sync_log_created_idx').on('sync_log').column('created_at').execute();

  await db.schema
    .createTable('sync_metrics')
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('pushes', 'integer', (c) => c.notNull())
    .addColumn('pulls', 'integer', (c) => c.notNull())
    .addColumn('changes_pushed', 'integer', (c) => c.notNull())
    .addColumn('changes_pulled', 'integer', (c) => c.notNull())
    .addColumn('conflicts', 'integer', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('sync_metrics_pk', ['organization_id', 'day'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
