import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * The cross-process lock of index reconciliation (issue 4: "only one reconciliation runs at a time").
 * It lives in the database because the database is what two reconciliations would corrupt together, and
 * every process that could run one (serve, worker, CLI) shares it. A lease (`expires_at`, renewed by a
 * heartbeat) lets a crashed holder's lock expire instead of blocking reconciliation forever.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('index_sync_locks')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('acquired_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();

  // Reconciliation streams a user's rows ordered by (parent_path, name) in byte order, the order it walks
  // the disk in. SQLite's BINARY collation is byte order, so stored_files_parent_idx already serves it.
  // PostgreSQL compares text by the database collation unless told COLLATE "C"; without an index in that
  // collation every page of the stream would sort all of the user's rows again.
  if (isPostgres(db)) {
    await sql`CREATE INDEX stored_files_sync_order_idx ON stored_files (owner_id, parent_path COLLATE "C", name COLLATE "C")`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
