import { sql, type Kysely } from 'kysely';
import { sqliteConnectionOf } from './database.ts';
import type { Db } from './schema.ts';

// A new SQLite database in one step instead of running every migration (issue 12, CLI start-up).
//
// The first command on an empty data dir used to run all the migrations: ~110 statements, ten of them
// ALTER TABLE or DROP TABLE, each of which makes SQLite re-read the whole schema, plus kysely's Migrator
// and every migration's code: ~45-60 ms of a ~250 ms command. A snapshot is the end state of those
// migrations on an empty SQLite database: the CREATE statements of sqlite_master (in creation order, with
// every later ALTER already folded in by SQLite itself) and the rows the migrations inserted. Applying it
// takes ~4-8 ms.
//
// The migrations stay the only source of truth: a snapshot is never written by hand or committed. The
// build (scripts/build.mjs) captures one from this build's migrations into dist/, and capture() refuses
// to return one that does not reproduce the migrated database exactly (schema and rows). The migrator
// applies it only to a database with nothing in it, on SQLite, when the snapshot names exactly this
// build's migrations; otherwise (PostgreSQL, an existing database, a missing or older snapshot) the
// migrations run as before. Running the sources (tsx, the test suite) has no snapshot, so the suite
// keeps running every migration.

/** The migrated state of an empty SQLite database. JSON, so the build can embed it. */
export interface SqliteSnapshot {
  format: 1;
  /** The migrations it is the end state of: exactly the names in the migrator's list. */
  migrations: string[];
  /** CREATE statements of sqlite_master, in creation order. */
  statements: string[];
  /** Rows the migrations inserted, per table (the migration table's timestamps are set when applied). */
  rows: Array<{ table: string; columns: string[]; values: unknown[][] }>;
}

/** kysely's table of applied migrations (src/db/migrator.ts); its `timestamp` column records when each one ran. */
export const MIGRATION_TABLE = 'stormvault_migrations';

interface SchemaObject {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

async function schemaObjects(db: Kysely<unknown>): Promise<SchemaObject[]> {
  // sqlite_* objects (autoindexes, sqlite_sequence) are SQLite's own: it makes them again from the CREATEs.
  const { rows } = await sql<SchemaObject>`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE substr(name, 1, 7) <> 'sqlite_' ORDER BY rowid`.execute(db);
  return rows;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function tableRows(db: Kysely<unknown>, table: string): Promise<{ columns: string[]; values: unknown[][] }> {
  const { rows: info } = await sql<{ name: string }>`SELECT name FROM pragma_table_info(${table}) ORDER BY cid`.execute(db);
  const columns = info.map((c) => c.name);
  const { rows } = await sql<Record<string, unknown>>`SELECT * FROM ${sql.raw(quoteIdent(table))} ORDER BY rowid`.execute(db);
  for (const row of rows) for (const value of Object.values(row)) {
    // JSON carries strings, numbers and null; a blob or a bigint would come back as something else.
    if (value !== null && typeof value !== 'string' && typeof value !== 'number') throw new Error(`sqlite snapshot: ${table} holds a ${typeof value} value`);
  }
  return { columns, values: rows.map((row) => columns.map((c) => row[c] ?? null)) };
}

/** Everything a snapshot must reproduce, as one comparable value (the migration timestamps left out). */
export async function sqliteState(database: Db): Promise<string> {
  const db = database as unknown as Kysely<unknown>;
  const objects = await schemaObjects(db);
  const tables = objects.filter((o) => o.type === 'table').map((o) => o.name);
  const data: Record<string, unknown> = {};
  for (const table of tables) {
    const { columns, values } = await tableRows(db, table);
    const timestamp = table === MIGRATION_TABLE ? columns.indexOf('timestamp') : -1;
    data[table] = { columns, values: timestamp < 0 ? values : values.map((v) => v.filter((_, i) => i !== timestamp)) };
  }
  const { rows: indexed } = await sql<SchemaObject>`SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name`.execute(db);
  return JSON.stringify({ schema: indexed, data });
}

/**
 * Reads the snapshot of a database that has just been migrated from empty, then proves it: applies it to
 * `scratch` (another empty SQLite database) and compares everything (schema including SQLite's own
 * autoindexes, and every row but the migration timestamps). Throws when they differ.
 */
export async function captureSqliteSnapshot(migrated: Db, scratch: Db, migrationNames: readonly string[]): Promise<SqliteSnapshot> {
  const db = migrated as unknown as Kysely<unknown>;
  const objects = await schemaObjects(db);
  const statements: string[] = [];
  for (const o of objects) {
    if (o.sql === null) throw new Error(`sqlite snapshot: ${o.type} ${o.name} has no SQL`);
    statements.push(o.sql);
  }
  const rows: SqliteSnapshot['rows'] = [];
  for (const o of objects) {
    if (o.type !== 'table') continue;
    const { columns, values } = await tableRows(db, o.name);
    // When the migrations ran is set when the snapshot is applied, not when it was captured.
    const timestamp = o.name === MIGRATION_TABLE ? columns.indexOf('timestamp') : -1;
    if (values.length > 0) rows.push({ table: o.name, columns, values: values.map((row) => row.map((v, i) => (i === timestamp ? null : v))) });
  }
  const snapshot: SqliteSnapshot = { format: 1, migrations: [...migrationNames], statements, rows };
  await sql`BEGIN IMMEDIATE`.execute(scratch);
  await applySqliteSnapshot(scratch, snapshot, new Date());
  await sql`COMMIT`.execute(scratch);
  const [want, got] = [await sqliteState(migrated), await sqliteState(scratch)];
  if (want !== got) throw new Error('sqlite snapshot: applying it does not reproduce the migrated database');
  return snapshot;
}

/** True when the database holds no table, index, view or trigger at all (a new file). */
export async function sqliteIsEmpty(db: Db): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master`.execute(db);
  return Number(rows[0]!.n) === 0;
}

/**
 * Creates the snapshot's schema and rows. The caller holds the transaction (the migrator's BEGIN
 * IMMEDIATE) and has checked that the database is empty. `now` is the migrations' recorded run time.
 * On a connection of createDatabase's the statements run in one `exec` and each table's rows through one
 * prepared INSERT, on the connection kysely's transaction is open on (~110 statements: ~15 ms of kysely
 * round trips before, issue 12); otherwise one kysely query each.
 */
export async function applySqliteSnapshot(db: Db, snapshot: SqliteSnapshot, now: Date): Promise<void> {
  const connection = sqliteConnectionOf(db);
  if (connection) {
    // exec runs every statement of the string, in order, and stops at the first that fails.
    if (snapshot.statements.length > 0) connection.exec(snapshot.statements.map((s) => `${s};`).join('\n'));
  } else {
    for (const statement of snapshot.statements) await sql.raw(statement).execute(db);
  }
  for (const { table, columns, values } of snapshot.rows) {
    const timestamp = table === MIGRATION_TABLE ? columns.indexOf('timestamp') : -1;
    const head = `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) VALUES `;
    const insert = connection?.prepare(`${head}(${columns.map(() => '?').join(', ')})`);
    for (const [n, row] of values.entries()) {
      // One millisecond apart, in the order they ran: kysely orders applied migrations by timestamp.
      const cells = row.map((v, i) => (i === timestamp ? new Date(now.getTime() + n).toISOString() : v));
      if (insert) insert.run(cells);
      else await sql`${sql.raw(head)}(${sql.join(cells)})`.execute(db);
    }
  }
}

/** Whether a snapshot is the end state of exactly `migrationNames` (same names, same order). */
export function snapshotMatches(snapshot: SqliteSnapshot, migrationNames: readonly string[]): boolean {
  return snapshot.format === 1 && snapshot.migrations.length === migrationNames.length && snapshot.migrations.every((n, i) => n === migrationNames[i]);
}
