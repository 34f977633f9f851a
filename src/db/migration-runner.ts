import { Migrator, sql, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import { isPostgres } from './database.ts';
import { migrations } from './migration-list.ts';
import type { Db } from './schema.ts';
import { MIGRATION_TABLE } from './sqlite-snapshot.ts';

// What migrateToLatest (migrator.ts) runs when the database is not at this build's migrations and could
// not be made from the snapshot (sqlite-snapshot-create.ts): PostgreSQL, an older database with pending
// migrations, a build without a snapshot. Imported only then, so the migrations' code and kysely's
// Migrator and schema builder are not loaded by every command (issue 12, CLI start-up).

/**
 * Runs the pending migrations. On SQLite they run in one transaction (BEGIN IMMEDIATE: all or nothing, and
 * a second process starting at the same moment waits, then finds nothing to do). Migrations therefore never
 * open a transaction of their own (kysely refuses one inside another on PostgreSQL already).
 */
export async function runMigrations(db: Db): Promise<{ applied: string[] }> {
  const migrator = migratorFor(db);
  // kysely's SQLite driver has one connection: the statements the Migrator runs next are inside this transaction.
  const sqlite = !isPostgres(db as Kysely<unknown>);
  // Some errors (a full disk, say) end the transaction themselves: then there is nothing left to roll back.
  const rollback = () => sql`ROLLBACK`.execute(db).catch(() => {});
  if (sqlite) await sql`BEGIN IMMEDIATE`.execute(db);
  let result: MigrationResultSet;
  try {
    result = await migrator.migrateToLatest();
  } catch (err) {
    if (sqlite) await rollback();
    throw err;
  }
  if (sqlite) await (result.error ? rollback() : sql`COMMIT`.execute(db));
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${reason}`);
  }
  return { applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/**
 * kysely's Migrator over Stormvault's migration tables, for `list` (default: every migration of this
 * build; tests pass the ones before a given number to set up an older schema).
 */
export function migratorFor(db: Db, list: Record<string, Migration> = migrations): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => list },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: 'stormvault_migrations_lock',
    // Features land in parallel with numbered migrations; an install that ran a later number first must
    // still accept an earlier one added afterwards.
    allowUnorderedMigrations: true,
  });
}
