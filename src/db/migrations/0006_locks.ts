import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * The lease lock of index reconciliation becomes the project's general cross-process lock (issue 8:
 * "rename index_sync_locks to a general lock"): reconciliation of every scope, the per-user write lock and
 * other cross-process locks (issue 12) share one table and one implementation (src/locks/). Rows are
 * keyed by lock name, so existing users of the table keep working; a rename keeps a lock held during the
 * upgrade (an old process still renewing it fails its renewal and stops, as a lost lease should).
 * Also the indexes of the reconciliation engine's scans and its record of finished runs (below).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('index_sync_locks').renameTo('locks').execute();

  // The reconciliation engine merges scans sorted by full key, so the index is streamed ORDER BY path.
  // SQLite's unique (owner_id, path) index is in BINARY (byte) order already; PostgreSQL needs one in
  // COLLATE "C". The (parent_path, name) order index of 0004 has no reader left: dropping it saves a
  // b-tree insert per row on every upload and sync.
  if (isPostgres(db)) {
    await sql`CREATE INDEX stored_files_key_order_idx ON stored_files (owner_id, path COLLATE "C")`.execute(db);
    await sql`DROP INDEX IF EXISTS stored_files_sync_order_idx`.execute(db);
  }
  // "Is a row moving to this path?" (the files API's move journal) is asked for every batch of paths a
  // sync adds; without an index it read all of the owner's rows each time (quadratic in one user's files,
  // issue 8). Partial: pending_path is NULL except while a move is in flight.
  await sql`CREATE INDEX stored_files_pending_idx ON stored_files (owner_id, pending_path) WHERE pending_path IS NOT NULL`.execute(db);

  // The last finished reconciliation per scope and mode, whichever process ran it (issue 12: the index
  // audit's state must hold across several serve/worker processes; /metrics of any process reads it).
  await db.schema
    .createTable('reconcile_runs')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('dry_run', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('stats', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('reconcile_runs_pk', ['scope', 'mode'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
