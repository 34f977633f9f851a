import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Migrator } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { migrations } from '../../src/db/migration-list.ts';
import { testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';

/** Migration 0007 keeps what was there: device counters, the mutation log, and fills storage usage. */
describe.each(testDialects())('migration 0007 on %s', (dialect) => {
  it('copies each device counter to its organizations, keeps the mutation log and counts live record bytes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'stormvault-m7-'));
    const database = await freshDatabaseUrl(dialect, dir);
    const handle = createDatabase(database.url);
    const db = handle.db as any;
    try {
      const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '0006'));
      const migrator = new Migrator({ db, provider: { getMigrations: async () => before }, migrationTableName: 'stormvault_migrations', migrationLockTableName: 'stormvault_migrations_lock' });
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      const now = '2026-01-01T00:00:00.000Z';
      await db.insertInto('users').values([
        { id: 'u1', username: 'u1', password_hash: null, is_admin: 0, quota_bytes: null, created_at: now, updated_at: now },
        { id: 'u2', username: 'u2', password_hash: null, is_admin: 0, quota_bytes: null, created_at: now, updated_at: now },
      ]).execute();
      await db.insertInto('organizations').values([
        { id: 'oa', name: 'A', storage_quota_bytes: null, change_seq: 3, purged_seq: 0, created_at: now, updated_at: now },
        { id: 'ob', name: 'B', storage_quota_bytes: 1000, change_seq: 0, purged_seq: 0, created_at: now, updated_at: now },
        { id: 'oc', name: 'C', storage_quota_bytes: null, change_seq: 0, purged_seq: 0, created_at: now, updated_at: now },
      ]).execute();
      await db.insertInto('organization_members').values([
        { organization_id: 'oa', user_id: 'u1', role: 'admin', created_at: now },
        { organization_id: 'ob', user_id: 'u1', role: 'member', created_at: now },
        { organization_id: 'oc', user_id: 'u2', role: 'admin', created_at: now },
      ]).execute();
      await db.insertInto('devices').values([
        { id: 'dev_1', user_id: 'u1', name: 'laptop', last_mutation_id: 42, created_at: now, last_seen_at: now, retired_at: null },
        { id: 'dev_2', user_id: 'u2', name: 'fresh', last_mutation_id: 0, created_at: now, last_seen_at: null, retired_at: null },
        // u1's device that pushed to C before u1 left it (the log remembers).
        { id: 'dev_3', user_id: 'u1', name: 'old', last_mutation_id: 7, created_at: now, last_seen_at: now, retired_at: null },
      ]).execute();
      await db.insertInto('sync_log').values({ organization_id: 'oc', device_id: 'dev_3', kind: 'push', changes: 1, conflicts: 0, created_at: now }).execute();
      await db.insertInto('sync_mutations').values({ device_id: 'dev_1', mutation_id: 40, organization_id: 'oa', entity: 'task', entity_id: 't1', status: 'conflict', conflict_id: 'c1', reason: null, created_at: now }).execute();
      const meta = { version: 1, vector_clock: '{}', field_clocks: '{}', checksum: 'x', origin_device_id: null, created_by: 'u1', created_at: now, updated_at: now };
      await db.insertInto('rec_projects').values({ ...meta, id: 'p1', organization_id: 'oa', seq: 1, deleted_at: null, name: 'Wébsite', archived: 0 }).execute();
      await db.insertInto('rec_tasks').values([
        { ...meta, id: 't1', organization_id: 'oa', seq: 2, deleted_at: null, title: 'ab', description: 'cde', status: 'todo', priority: 'low', due_date: '2026-01-01', assignee_id: null, project_id: 'p1', tags: '["x"]', custom_fields: '{}' },
        { ...meta, id: 't2', organization_id: 'oa', seq: 3, deleted_at: now, title: 'gone', description: 'not counted', status: 'todo', priority: 'low', due_date: null, assignee_id: null, project_id: null, tags: '[]', custom_fields: '{}' },
      ]).execute();
      await db.insertInto('rec_comments').values({ ...meta, id: 'c1', organization_id: 'oa', seq: 4, deleted_at: null, task_id: 't1', parent_id: null, body: '€', edited_at: null }).execute();

      await migrateToLatest(handle.db);

      const state = await db.selectFrom('sync_device_state').select(['device_id', 'organization_id', 'last_mutation_id']).orderBy('device_id').orderBy('organization_id').execute();
      expect(state.map((r: any) => [r.device_id, r.organization_id, Number(r.last_mutation_id)])).toEqual([
        ['dev_1', 'oa', 42],
        ['dev_1', 'ob', 42],
        ['dev_3', 'oa', 7],
        ['dev_3', 'ob', 7],
        ['dev_3', 'oc', 7],
      ]);
      const log = await db.selectFrom('sync_mutations').selectAll().execute();
      expect(log).toEqual([expect.objectContaining({ device_id: 'dev_1', organization_id: 'oa', status: 'conflict', conflict_id: 'c1' })]);
      expect(Number(log[0].mutation_id)).toBe(40);
      // The same mutation id may now be logged once per organization.
      await db.insertInto('sync_mutations').values({ device_id: 'dev_1', mutation_id: 40, organization_id: 'ob', entity: 'task', entity_id: 't9', status: 'rejected', conflict_id: null, reason: 'r', created_at: now }).execute();
      const used = await db.selectFrom('organizations').select(['id', 'storage_used_bytes']).orderBy('id').execute();
      // Wébsite (8 bytes) + ab + cde + ["x"] (5) + {} (2) + € (3); the tombstone t2 does not count.
      expect(used.map((r: any) => [r.id, Number(r.storage_used_bytes)])).toEqual([
        ['oa', 8 + 2 + 3 + 5 + 2 + 3],
        ['ob', 0],
        ['oc', 0],
      ]);
    } finally {
      await handle.destroy();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
