import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { IndexSyncRepository, type NewIndexRow } from '../../src/modules/index-sync/index-sync.repository.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

describe.each(testDialects())(`${IndexSyncRepository.name} on %s`, (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  // Issue 8: with statistics of an almost empty table, PostgreSQL answered each page of a big user's
  // sorted scan with a bitmap scan of all the user's remaining rows and a sort (a quadratic re-audit).
  it('refreshes the planner statistics after a bulk load (PostgreSQL), so pages of the sorted scan walk the index', async () => {
    const sut = new IndexSyncRepository(t.app.db);
    const owner = (await createUserWithKey(t.app)).user.id;
    const now = new Date().toISOString();
    const rows: NewIndexRow[] = Array.from({ length: 20_000 }, (_, i) => ({
      ownerId: owner,
      path: `f${String(i).padStart(6, '0')}.txt`,
      name: `f${String(i).padStart(6, '0')}.txt`,
      parentPath: '',
      size: 1,
      contentType: 'text/plain; charset=utf-8',
      isDirectory: false,
      modifiedAt: now,
    }));
    expect(await sut.insertRows(rows, now)).toBe(20_000);
    if (dialect !== 'postgres') {
      expect(await sut.refreshStatsIfStale()).toBe(false);
      return;
    }
    expect(await sut.refreshStatsIfStale()).toBe(true);
    expect(await sut.refreshStatsIfStale()).toBe(false);
    const plan = await sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT id, path FROM stored_files WHERE owner_id = ${owner} AND path COLLATE "C" > ${'f001000.txt'} ORDER BY path COLLATE "C" LIMIT 5000`.execute(t.app.db);
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).toMatch(/Index Scan using stored_files_key_order_idx/);
    expect(text).not.toMatch(/Sort/);
  });
});
