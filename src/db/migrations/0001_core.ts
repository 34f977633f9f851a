import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/** Users, API keys, the file index and share links. Append-only: never edit once released. */
export async function up(db: Kysely<any>): Promise<void> {
  const pg = isPostgres(db);

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text')
    .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('quota_bytes', 'bigint')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('key_prefix', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('api_keys_user_idx').on('api_keys').column('user_id').execute();

  let files = db.schema.createTable('stored_files');
  files = pg
    ? files.addColumn('id', 'bigserial', (c) => c.primaryKey())
    : files.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
  await files
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('parent_path', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('is_directory', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sha256', 'text')
    // Move journal: set (and committed) before a move renames on disk, cleared with the row update, so
    // a crash in between is finished or undone at the next start instead of leaving rows without files.
    .addColumn('pending_path', 'text')
    .addColumn('modified_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('stored_files_owner_path_uq', ['owner_id', 'path'])
    .execute();
  // Directory listings: WHERE owner_id = ? AND parent_path = ? ORDER BY name.
  await db.schema
    .createIndex('stored_files_parent_idx')
    .on('stored_files')
    .columns(['owner_id', 'parent_path', 'name'])
    .execute();

  await db.schema
    .createTable('share_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('file_id', 'bigint', (c) => c.notNull().references('stored_files.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('max_downloads', 'integer')
    .addColumn('download_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('share_links_owner_idx').on('share_links').column('owner_id').execute();
  await db.schema.createIndex('share_links_file_idx').on('share_links').column('file_id').execute();

  if (!pg) await sql`select 1`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
