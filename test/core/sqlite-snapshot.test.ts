import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteSnapshot } from '../../scripts/build.mjs';
import { createDatabase, sqliteConnectionOf, type DatabaseHandle } from '../../src/db/database.ts';
import type { Database } from '../../src/db/schema.ts';
import { migrations } from '../../src/db/migration-list.ts';
import { migratorFor } from '../../src/db/migration-runner.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { buildSqliteSnapshot } from '../../src/db/sqlite-snapshot-build.ts';
import { captureSqliteSnapshot, sqliteState, type SqliteSnapshot } from '../../src/db/sqlite-snapshot.ts';

// A new SQLite database is created from a snapshot of the migrations' end state (issue 12, CLI start-up).
describe('SQLite schema snapshot', () => {
  let dir: string;
  const open: DatabaseHandle[] = [];
  const database = (name: string) => {
    const handle = createDatabase(path.join(dir, `${name}.db`));
    open.push(handle);
    return handle;
  };
  let snapshot: SqliteSnapshot;
  const names = Object.keys(migrations);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-snapshot-'));
    snapshot ??= await buildSqliteSnapshot();
  });
  afterEach(async () => {
    for (const handle of open.splice(0)) await handle.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates exactly what running every migration creates: schema, SQLite autoindexes and rows', async () => {
    const migrated = database('migrated');
    const fromSnapshot = database('snapshot');
    expect((await migrateToLatest(migrated.db, { snapshot: null })).applied).toEqual(names);
    const now = new Date('2026-12-01T10:00:00.000Z');
    expect((await migrateToLatest(fromSnapshot.db, { snapshot, now })).applied).toEqual(names);
    expect(await sqliteState(fromSnapshot.db)).toBe(await sqliteState(migrated.db));
    const { rows: checks } = await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(fromSnapshot.db);
    expect(checks).toEqual([{ integrity_check: 'ok' }]);
    // Recorded as run now, one millisecond apart in their order (kysely orders applied migrations by time).
    const { rows } = await sql<{ name: string; timestamp: string }>`SELECT name, timestamp FROM stormvault_migrations ORDER BY rowid`.execute(fromSnapshot.db);
    expect(rows.map((r) => r.name)).toEqual(names);
    expect(rows[1]!.timestamp).toBe('2026-12-01T10:00:00.001Z');
    // The next start finds nothing to do, and kysely's Migrator agrees nothing is pending.
    expect(await migrateToLatest(fromSnapshot.db)).toEqual({ applied: [] });
    const status = await migratorFor(fromSnapshot.db).getMigrations();
    expect(status.filter((m) => !m.executedAt)).toEqual([]);
  });

  it('applies the same way on a Kysely instance without a createDatabase connection (one query per statement)', async () => {
    const migrated = database('migrated');
    await migrateToLatest(migrated.db, { snapshot: null });
    const raw = new SqliteDatabase(path.join(dir, 'plain.db'));
    const plain = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      expect(sqliteConnectionOf(plain)).toBeUndefined();
      expect(sqliteConnectionOf(migrated.db)).toBeDefined();
      expect((await migrateToLatest(plain, { snapshot })).applied).toEqual(names);
      expect(await sqliteState(plain)).toBe(await sqliteState(migrated.db));
    } finally {
      await plain.destroy();
    }
  });

  it('is never applied to a database that already has tables: the pending migrations run instead', async () => {
    const partial = database('partial');
    const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '0007'));
    await migratorFor(partial.db, before).migrateToLatest();
    const { applied } = await migrateToLatest(partial.db, { snapshot });
    expect(applied).toEqual(names.filter((n) => n >= '0007'));
    const reference = database('reference');
    await migrateToLatest(reference.db, { snapshot: null });
    expect(await sqliteState(partial.db)).toBe(await sqliteState(reference.db));
  });

  it('is not used when it is of other migrations than this build has (a stale build): every migration runs', async () => {
    const fresh = database('fresh');
    const stale: SqliteSnapshot = { ...snapshot, migrations: snapshot.migrations.slice(0, -1), statements: ['CREATE TABLE should_not_exist (id integer)'] };
    expect((await migrateToLatest(fresh.db, { snapshot: stale })).applied).toEqual(names);
    const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE name = 'should_not_exist'`.execute(fresh.db);
    expect(rows[0]!.n).toBe(0);
  });

  it('a snapshot that fails half-way leaves an empty database, not a half-made schema', async () => {
    const fresh = database('broken');
    const broken: SqliteSnapshot = { ...snapshot, statements: [...snapshot.statements, 'CREATE TABLE users (id integer)'] };
    await expect(migrateToLatest(fresh.db, { snapshot: broken })).rejects.toThrow(/already exists/);
    const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master`.execute(fresh.db);
    expect(rows[0]!.n).toBe(0);
    // And the next start still works.
    expect((await migrateToLatest(fresh.db, { snapshot })).applied).toEqual(names);
  });

  it('capture refuses what JSON cannot carry back (a blob row), instead of a snapshot that differs', async () => {
    const migrated = database('blob');
    await migrateToLatest(migrated.db, { snapshot: null });
    await sql`CREATE TABLE extra (data blob)`.execute(migrated.db);
    await sql`INSERT INTO extra VALUES (x'00ff')`.execute(migrated.db);
    await expect(captureSqliteSnapshot(migrated.db, database('scratch').db, names)).rejects.toThrow(/extra holds a object/);
  });

  it('the build embeds one of exactly this build\'s migrations (scripts/build.mjs)', async () => {
    const { build } = await import('esbuild');
    const json = await sqliteSnapshot(build);
    expect(json).not.toBeNull();
    const built = JSON.parse(json!) as SqliteSnapshot;
    expect(built.migrations).toEqual(names);
    expect(built).toEqual(snapshot);
  });
});
