import { sql, type Kysely } from 'kysely';
import { isPostgres } from './database.ts';
import type { Db } from './schema.ts';
import { MIGRATION_TABLE, type SqliteSnapshot } from './sqlite-snapshot.ts';

/**
 * The names of this build's migrations, embedded by scripts/build.mjs into dist/ (beside the snapshot,
 * which sqlite-snapshot-create.ts reads); not defined when the sources run (tsx, the test suite).
 */
declare const __STORMVAULT_MIGRATION_NAMES__: readonly string[] | undefined;

/** This build's migrations, by name: from the build when it embedded them, else from the list itself. */
async function knownMigrationNames(): Promise<readonly string[]> {
  if (typeof __STORMVAULT_MIGRATION_NAMES__ !== 'undefined') return __STORMVAULT_MIGRATION_NAMES__;
  return Object.keys((await import('./migration-list.ts')).migrations);
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

/**
 * Brings the schema to the latest version. Safe to call on every start (it is what `serve` does).
 *
 * Every start of a process and every CLI command calls this (issue 12, CLI start-up), so:
 * - when every migration this build knows has run (the usual case), one query answers, instead of
 *   kysely's Migrator, which reads the whole schema (every table's columns) to find its own two tables;
 * - a new SQLite database is created from the build's snapshot (src/db/sqlite-snapshot.ts), loading
 *   neither the migrations nor kysely's Migrator (sqlite-snapshot-create.ts);
 * - only otherwise are the migrations, kysely's Migrator and its schema builder loaded
 *   (migration-runner.ts); on SQLite the pending migrations run in one transaction, as kysely runs them
 *   on PostgreSQL: one commit instead of one per statement, and a failed migration leaves nothing half-done.
 */
export async function migrateToLatest(db: Db, options: MigrateOptions = {}): Promise<MigrateOutcome> {
  const known = await knownMigrationNames();
  if (await everyMigrationApplied(db, known)) return { applied: [] };
  const now = options.now ?? new Date();
  if (!isPostgres(db as Kysely<unknown>)) {
    const { createFromSnapshot } = await import('./sqlite-snapshot-create.ts');
    if (await createFromSnapshot(db, 'snapshot' in options ? (options.snapshot ?? null) : undefined, known, now)) return { applied: [...known] };
  }
  const { runMigrations } = await import('./migration-runner.ts');
  return runMigrations(db);
}

/**
 * True when the database has run exactly the migrations of this build. Anything else (no migration table
 * yet, one pending, or one this build does not know) is the Migrator's to handle and report.
 */
async function everyMigrationApplied(db: Db, known: readonly string[]): Promise<boolean> {
  let rows: Array<{ name: string }>;
  try {
    const result = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)}`.execute(db);
    rows = result.rows;
  } catch {
    return false; // a new database: no migration table yet
  }
  const applied = new Set(rows.map((r) => r.name));
  return applied.size === known.length && known.every((name) => applied.has(name));
}
