import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from './sync-helpers.ts';

/** Pushes and pulls racing each other (PostgreSQL runs them on separate connections for real). */
describe.each(testDialects())('sync under concurrent requests on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('never lets a pull cursor skip a change committed by a concurrent push', async () => {
    const writers = await Promise.all([1, 2, 3, 4].map((i) => SyncClient.register(t.app, alice.headers, `writer ${i}`)));
    const watcher = await SyncClient.register(t.app, alice.headers, 'watcher');
    const pushedIds: string[] = [];
    let done = false;
    const pushes = Promise.all(
      writers.map(async (w) => {
        for (let b = 0; b < 8; b++) {
          const changes = Array.from({ length: 15 }, (_, i) => {
            const id = newId();
            pushedIds.push(id);
            const n = b * 15 + i + 1;
            return { mutation_id: n, entity: 'task', op: 'upsert', id, vector_clock: { [w.deviceId]: n }, data: { title: `w${n}` } };
          });
          const res = await w.push(changes);
          expect(res.status).toBe(200);
        }
      }),
    ).finally(() => (done = true));
    const seen: string[] = [];
    let cursor: string | undefined;
    const pullLoop = async () => {
      while (!done) {
        // Yield a macrotask between pulls, as requests arriving over sockets do: an in-process loop of
        // injects would otherwise hog Kysely's SQLite connection mutex (it is not FIFO-fair).
        await new Promise((resolve) => setImmediate(resolve));
        const page = await watcher.pullAll(cursor);
        seen.push(...page.changes.map((c) => c.id));
        cursor = page.cursor;
      }
    };
    await Promise.all([pushes, pullLoop()]);
    seen.push(...(await watcher.pullAll(cursor)).changes.map((c) => c.id));
    expect(seen.length).toBe(pushedIds.length);
    expect(new Set(seen)).toEqual(new Set(pushedIds));
  });

  it("gives a new user's concurrent first requests one personal organization, not one each", async () => {
    const bob = await createUserWithKey(t.app);
    const answers = await Promise.all(Array.from({ length: 6 }, () => t.app.http.inject({ method: 'GET', url: '/api/v1/organizations', headers: bob.headers })));
    const ids = new Set(answers.flatMap((a) => a.json().organizations.map((o: any) => o.id)));
    expect(ids.size).toBe(1);
  });

  it('lets exactly one of two simultaneous concurrent edits of a field win; the other becomes a conflict', async () => {
    const a = await SyncClient.register(t.app, alice.headers, 'a');
    const b = await SyncClient.register(t.app, alice.headers, 'b');
    for (let round = 0; round < 5; round++) {
      const id = newId();
      await a.push([{ mutation_id: 100 + round * 10, entity: 'task', op: 'upsert', id, vector_clock: { [a.deviceId]: 100 + round * 10 }, data: { title: 'base' } }]);
      const base = { [a.deviceId]: 100 + round * 10 };
      const [ra, rb] = await Promise.all([
        a.push([{ mutation_id: 101 + round * 10, entity: 'task', op: 'upsert', id, vector_clock: { ...base, [a.deviceId]: 101 + round * 10 }, data: { title: 'from a' } }]),
        b.push([{ mutation_id: 101 + round * 10, entity: 'task', op: 'upsert', id, vector_clock: { ...base, [b.deviceId]: 1 + round } }].map((c) => ({ ...c, data: { title: 'from b' } }))),
      ]);
      const statuses = [ra.body.results[0].status, rb.body.results[0].status].sort();
      expect(statuses).toEqual(['applied', 'conflict']);
    }
  });
});
