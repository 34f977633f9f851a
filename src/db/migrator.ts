import { Migrator, sql, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import { isPostgres } from './database.ts';
import { migrations } from './migration-list.ts';
import type { Db } from './schema.ts';
import { applySqliteSnapshot, snapshotMatches, sqliteIsEmpty, type SqliteSnapshot } from './sqlite-snapshot.ts';

/**
 * The snapshot of this build's migrations (src/db/sqlite-snapshot.ts), embedded by scripts/build.mjs into
 * dist/ as a JSON string; not defined when the sources run (tsx, the test suite).
 */
declare const __STORMVAULT_SQLITE_SNAPSHOT__: string | undefined;

function builtSnapshot(): SqliteSnapshot | null {
  // Parsed only when a new database is about to be created: every other start never reads it.
  return typeof __STORMVAULT_SQLITE_SNAPSHOT__ === 'string' ? (JSON.parse(__STORMVAULT_SQLITE_SNAPSHOT__) as SqliteSnapshot) : null;
}

export interface MigrateOptions {
  /**
   * The end state of every migration on an empty SQLite database, applied to an empty database instead
   * of running them (default: the one the build embedded, if any; null: always run the migrations).
   */
  snapshot?: SqliteSnapshot | null;
  now?: Date;
}

export interface MigrateOutcome {
  applied: string[];
}

const MIGRATION_TABLE = 'stormvault_migrations';

/**
 * Brings the schema to the latest version. Safe to call on every start (it is what `serve` does).
 *
 * Every start of a process and every CLI command calls this (issue 12, CLI start-up), so:
 * - when every migration this build knows has run (the usual case), one query answers, instead of
 *   kysely's Migrator, which reads the whole schema (every table's columns) to find its own two tables;
 * - on SQLite the pending migrations run in one transaction, as kysely runs them on PostgreSQL: one
 *   commit instead of one per statement (an empty data dir's first command: ~90 statements), and a
 *   failed migration leaves nothing half-done. BEGIN IMMEDIATE also makes a second process starting at
 *   the same moment wait for the first one's migrations, then find nothing to do.
 * Migrations therefore never open a transaction of their own (kysely refuses one inside another on
 *   PostgreSQL already).
 */
export async function migrateToLatest(db: Db, options: MigrateOptions = {}): Promise<MigrateOutcome> {
  if (await everyMigrationApplied(db)) return { applied: [] };
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
    const snapshot = sqlite ? ('snapshot' in options ? options.snapshot : builtSnapshot()) : null;
    const names = Object.keys(migrations);
    if (snapshot && snapshotMatches(snapshot, names) && (await sqliteIsEmpty(db))) {
      await applySqliteSnapshot(db, snapshot, options.now ?? new Date());
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

/**
 * True when the database has run exactly the migrations of this build. Anything else (no migration table
 * yet, one pending, or one this build does not know) is the Migrator's to handle and report.
 */
async function everyMigrationApplied(db: Db): Promise<boolean> {
  let rows: Array<{ name: string }>;
  try {
    const result = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)}`.execute(db);
    rows = result.rows;
  } catch {
    return false; // a new database: no migration table yet
  }
  const known = Object.keys(migrations);
  const applied = new Set(rows.map((r) => r.name));
  return applied.size === known.length && known.every((name) => applied.has(name));
}
