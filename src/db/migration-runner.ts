import { Migrator, sql, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import { isPostgres } from './database.ts';
import { migrations } from './migration-list.ts';
import type { Db } from './schema.ts';
import { applySqliteSnapshot, MIGRATION_TABLE, snapshotMatches, sqliteIsEmpty, type SqliteSnapshot } from './sqlite-snapshot.ts';

// What migrateToLatest (migrator.ts) runs when the database is not at this build's migrations: a new
// database, or pending migrations. Imported only then, so the migrations' code and kysely's Migrator and
// schema builder are not loaded by every command on an up-to-date database (issue 12, CLI start-up).

/**
 * The snapshot of this build's migrations (src/db/sqlite-snapshot.ts), embedded by scripts/build.mjs into
 * dist/ as a JSON string: here, in the chunk loaded only when something must be migrated, so an
 * up-to-date database's start never even parses the literal. Not defined when the sources run.
 */
declare const __STORMVAULT_SQLITE_SNAPSHOT__: string | undefined;

function builtSnapshot(): SqliteSnapshot | null {
  return typeof __STORMVAULT_SQLITE_SNAPSHOT__ === 'string' ? (JSON.parse(__STORMVAULT_SQLITE_SNAPSHOT__) as SqliteSnapshot) : null;
}

/**
 * Runs the pending migrations. On SQLite they run in one transaction (BEGIN IMMEDIATE: all or nothing, and
 * a second process starting at the same moment waits, then finds nothing to do); a new SQLite database
 * gets the snapshot instead when it is of exactly this build's migrations. Migrations therefore never open
 * a transaction of their own (kysely refuses one inside another on PostgreSQL already).
 */
export async function runMigrations(db: Db, given: SqliteSnapshot | null | undefined, now: Date): Promise<{ applied: string[] }> {
  // undefined: the build's snapshot, if it embedded one; null: always run the migrations.
  const snapshot = given === undefined ? builtSnapshot() : given;
  const migrator = migratorFor(db);
  // kysely's SQLite driver has one connection: the statements the Migrator runs next are inside this transaction.
  const sqlite = !isPostgres(db as Kysely<unknown>);
  // Some errors (a full disk, say) end the transaction themselves: then there is nothing left to roll back.
  const rollback = () => sql`ROLLBACK`.execute(db).catch(() => {});
  if (sqlite) await sql`BEGIN IMMEDIATE`.execute(db);
  let result: MigrationResultSet;
  try {
    // A new SQLite database gets this build's snapshot in one step (checked inside the transaction, so a
    // second process starting at the same moment waits, then finds the tables and nothing to do).
    const names = Object.keys(migrations);
    if (sqlite && snapshot && snapshotMatches(snapshot, names) && (await sqliteIsEmpty(db))) {
      await applySqliteSnapshot(db, snapshot, now);
      await sql`COMMIT`.execute(db);
      return { applied: names };
    }
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
