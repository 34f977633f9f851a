import type { Kysely } from 'kysely';

/**
 * The lease lock of index reconciliation becomes the project's general cross-process lock (issue 8:
 * "rename index_sync_locks to a general lock"): reconciliation of every scope, the per-user write lock and
 * other cross-process locks (issue 12) share one table and one implementation (src/locks/). Rows are
 * keyed by lock name, so existing users of the table keep working; a rename keeps a lock held during the
 * upgrade (an old process still renewing it fails its renewal and stops, as a lost lease should).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('index_sync_locks').renameTo('locks').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
