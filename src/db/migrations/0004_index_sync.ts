import type { Kysely } from 'kysely';

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
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
