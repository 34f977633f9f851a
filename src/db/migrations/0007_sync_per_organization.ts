import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * Records sync, issue 12:
 * - `sync_device_state`: a device's last processed push mutation id per (device, organization). It was one
 *   counter per device (devices.last_mutation_id), so a client numbering its mutations per organization had
 *   its pushes to a second organization taken for replays and dropped. Existing counters are copied to every
 *   organization the device's user belongs to or the device has pushed to: the old counter was one sequence
 *   across organizations, so it is a safe lower bound in each (every id at or below it was processed).
 * - `sync_mutations` is keyed by (device, organization, mutation id): the same id may now occur once per
 *   organization. The table is rebuilt (SQLite cannot change a primary key), rows kept.
 * - `organizations.storage_used_bytes`: bytes of the client-written text of the organization's live records
 *   (project names; task titles, descriptions, tags and custom fields as JSON; comment bodies), which
 *   `storage_quota_bytes` limits. Kept up to date by the record writer under the organization row lock;
 *   filled here from the existing rows.
 * Append-only: never edit once released.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const pg = isPostgres(db);

  await db.schema
    .createTable('sync_device_state')
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('last_mutation_id', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('sync_device_state_pk', ['device_id', 'organization_id'])
    .execute();
  const now = new Date().toISOString();
  await sql`
    insert into sync_device_state (device_id, organization_id, last_mutation_id, updated_at)
    select d.id, m.organization_id, d.last_mutation_id, ${now}
    from devices d join organization_members m on m.user_id = d.user_id
    where d.last_mutation_id > 0
    on conflict do nothing`.execute(db);
  await sql`
    insert into sync_device_state (device_id, organization_id, last_mutation_id, updated_at)
    select d.id, p.organization_id, d.last_mutation_id, ${now}
    from devices d
    join (select device_id, organization_id from sync_log where kind = 'push' and device_id is not null
          union select device_id, organization_id from sync_mutations) p on p.device_id = d.id
    join organizations o on o.id = p.organization_id
    where d.last_mutation_id > 0
    on conflict do nothing`.execute(db);

  await db.schema
    .createTable('sync_mutations_v7')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('mutation_id', 'bigint', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('entity', 'text', (c) => c.notNull())
    .addColumn('entity_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('conflict_id', 'text')
    .addColumn('reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('sync_mutations_org_pk', ['device_id', 'organization_id', 'mutation_id'])
    .execute();
  await sql`
    insert into sync_mutations_v7 (device_id, mutation_id, organization_id, entity, entity_id, status, conflict_id, reason, created_at)
    select device_id, mutation_id, organization_id, entity, entity_id, status, conflict_id, reason, created_at from sync_mutations`.execute(db);
  await db.schema.dropTable('sync_mutations').execute();
  await db.schema.alterTable('sync_mutations_v7').renameTo('sync_mutations').execute();
  await db.schema.createIndex('sync_mutations_created_idx').on('sync_mutations').column('created_at').execute();

  await db.schema.alterTable('organizations').addColumn('storage_used_bytes', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  const bytes = (column: string) => (pg ? `octet_length(${column})` : `length(cast(${column} as blob))`);
  const used = (table: string, columns: string[]) =>
    `(select coalesce(sum(${columns.map(bytes).join(' + ')}), 0) from ${table} r where r.organization_id = organizations.id and r.deleted_at is null)`;
  await sql
    .raw(
      `update organizations set storage_used_bytes = ${used('rec_projects', ['name'])} + ${used('rec_tasks', ['title', 'description', 'tags', 'custom_fields'])} + ${used('rec_comments', ['body'])}`,
    )
    .execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
