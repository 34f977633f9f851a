import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from './sync-helpers.ts';

/** Issue 12's sync/records items, each against the real HTTP surface, on SQLite and PostgreSQL. */
describe.each(testDialects())('sync and records hardening on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let laptop: SyncClient;
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const inject = (user: TestUser, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...user.headers, ...headers }, payload: payload as object });

  beforeAll(async () => {
    t = await createTestApp({ dialect, clock });
    alice = await createUserWithKey(t.app);
    laptop = await SyncClient.register(t.app, alice.headers, 'laptop');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('refuses vector-clock keys other than device ids and server, prototype names included', async () => {
    for (const key of ['constructor', 'toString', 'other']) {
      const res = await laptop.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [key]: 5, [laptop.deviceId]: 1 }, data: { title: 'x' } }]);
      expect(res.status, key).toBe(400);
      expect(res.body.error.message).toMatch(/device ids/);
    }
  });
});
