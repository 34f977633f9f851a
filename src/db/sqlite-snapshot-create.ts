import { sql } from 'kysely';
import type { Db } from './schema.ts';
import { applySqliteSnapshot, snapshotMatches, sqliteIsEmpty, type SqliteSnapshot } from './sqlite-snapshot.ts';

// A new SQLite database made from this build's snapshot (src/db/sqlite-snapshot.ts). Imported by the
// migrator only when a SQLite database is not at this build's migrations, and on its own, without the
// migrations' code or kysely's Migrator (migration-runner.ts): a new data dir's first command loads
// neither (issue 12, CLI start-up).

/**
 * The snapshot of this build's migrations, embedded by scripts/build.mjs into dist/ as a JSON string:
 * here, in the chunk loaded only for a database that is not up to date, so an up-to-date database's start
 * never even parses the literal. Not defined when the sources run (tsx, the test suite).
 */
declare const __STORMVAULT_SQLITE_SNAPSHOT__: string | undefined;

function builtSnapshot(): SqliteSnapshot | null {
  return typeof __STORMVAULT_SQLITE_SNAPSHOT__ === 'string' ? (JSON.parse(__STORMVAULT_SQLITE_SNAPSHOT__) as SqliteSnapshot) : null;
}

/**
 * Creates the schema of an empty SQLite database from the snapshot (`given`; undefined: the build's, if
 * it embedded one; null: none), when it is of exactly `migrationNames`. True when it did; false when there
 * is no such snapshot or the database is not empty, and then nothing changed and the migrations must run.
 * In one transaction (BEGIN IMMEDIATE: all or nothing, and a second process starting at the same moment
 * waits, then finds the tables and nothing to do).
 */
export async function createFromSnapshot(db: Db, given: SqliteSnapshot | null | undefined, migrationNames: readonly string[], now: Date): Promise<boolean> {
  const snapshot = given === undefined ? builtSnapshot() : given;
  if (!snapshot || !snapshotMatches(snapshot, migrationNames)) return false;
  // Some errors (a full disk, say) end the transaction themselves: then there is nothing left to roll back.
  const rollback = () => sql`ROLLBACK`.execute(db).catch(() => {});
  await sql`BEGIN IMMEDIATE`.execute(db);
  try {
    if (!(await sqliteIsEmpty(db))) {
      await rollback();
      return false;
    }
    await applySqliteSnapshot(db, snapshot, now);
    await sql`COMMIT`.execute(db);
    return true;
  } catch (err) {
    await rollback();
    throw err;
  }
}
