import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KyselyPlugin } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { migrations } from '../../src/db/migration-list.ts';
import { migratorFor } from '../../src/db/migration-runner.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';

/** Counts the statements a Kysely instance sends (every query, raw SQL and introspection included). */
function counter(): { plugin: KyselyPlugin; count: () => number } {
  let n = 0;
  return {
    plugin: { transformQuery: (args) => (n++, args.node), transformResult: async (args) => args.result },
    count: () => n,
  };
}

// Every process start and every CLI command migrates first (issue 12, CLI start-up).
describe.each(testDialects())('migrateToLatest on %s', (dialect) => {
  let dir: string;
  let drop: () => Promise<void>;
  let database: DatabaseHandle;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-migrator-'));
    const fresh = await freshDatabaseUrl(dialect, dir);
    drop = fresh.drop;
    database = createDatabase(fresh.url);
  });
  afterEach(async () => {
    await database?.destroy();
    await drop?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('once every migration has run, answers with one query and changes nothing', async () => {
    expect((await migrateToLatest(database.db)).applied).toEqual(Object.keys(migrations));
    const { plugin, count } = counter();
    expect(await migrateToLatest(database.db.withPlugin(plugin))).toEqual({ applied: [] });
    // kysely's Migrator alone reads the schema (every table) to find its own tables: several queries.
    expect(count()).toBe(1);
  });

  it('a migration this build does not know still stops it, as the Migrator says', async () => {
    await migrateToLatest(database.db);
    await database.db.insertInto('stormvault_migrations' as never).values({ name: '9999_from_a_newer_build', timestamp: new Date().toISOString() } as never).execute();
    await expect(migrateToLatest(database.db)).rejects.toThrow(/9999_from_a_newer_build/);
  });

  it('runs the pending migrations all or nothing: one that fails undoes the ones before it in the same run', async () => {
    // Up to 0006; then users that 0008 refuses (they differ only in case), so 0007 runs and 0008 fails.
    const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '0007'));
    const first = await migratorFor(database.db, before).migrateToLatest();
    expect(first.error).toBeUndefined();
    const user = (id: string, username: string) => ({ id, username, password_hash: null, is_admin: 0, quota_bytes: null, created_at: 'x', updated_at: 'x' });
    await database.db.insertInto('users').values([user('1', 'Bob'), user('2', 'bob')]).execute();

    await expect(migrateToLatest(database.db)).rejects.toThrow(/0008/);
    const ran = (await database.db.selectFrom('stormvault_migrations' as never).select('name' as never).execute()) as Array<{ name: string }>;
    expect(ran.map((r) => r.name).sort()).toEqual(Object.keys(before).sort());

    // Fixed, the next start runs them all.
    await database.db.updateTable('users').set({ username: 'bob2' }).where('id', '=', '2').execute();
    expect((await migrateToLatest(database.db)).applied).toEqual(Object.keys(migrations).filter((name) => name >= '0007'));
  });
});
