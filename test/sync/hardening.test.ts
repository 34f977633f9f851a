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

  it('counts mutation ids per (device, organization): a second organization starting at 1 is not taken for replays', async () => {
    const first = (await inject(alice, 'GET', '/api/v1/organizations')).json().organizations[0].id;
    const second = (await inject(alice, 'POST', '/api/v1/organizations', { name: 'second' })).json().id;
    const device = await SyncClient.register(t.app, alice.headers, 'per-org laptop');
    const D = device.deviceId;
    const inFirst = await new SyncClient(t.app, { ...alice.headers, 'x-organization': first }, D).push([1, 2, 3].map((n) => ({ mutation_id: n, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [D]: n }, data: { title: `first ${n}` } })));
    expect(inFirst.body.results.map((r: any) => r.status)).toEqual(['applied', 'applied', 'applied']);
    const inSecond = new SyncClient(t.app, { ...alice.headers, 'x-organization': second }, D);
    const ids = [newId(), newId()];
    const pushed = await inSecond.push(ids.map((id, i) => ({ mutation_id: i + 1, entity: 'task', op: 'upsert', id, vector_clock: { [D]: i + 1 }, data: { title: `second ${i}` } })));
    expect(pushed.body.results.map((r: any) => [r.status, r.replayed ?? false])).toEqual([
      ['applied', false],
      ['applied', false],
    ]);
    for (const id of ids) expect((await inject(alice, 'GET', `/api/v1/tasks/${id}`, undefined, { 'x-organization': second })).statusCode).toBe(200);
    // Replays are still recognised, per organization.
    const again = await inSecond.push([{ mutation_id: 2, entity: 'task', op: 'upsert', id: ids[1], vector_clock: { [D]: 2 }, data: { title: 'second 1' } }]);
    expect(again.body.results[0]).toMatchObject({ status: 'applied', replayed: true });
    const listed = (await inject(alice, 'GET', '/api/v1/devices')).json().devices.find((d: any) => d.id === D);
    expect(listed.last_mutation_id).toBe(3);
  });
});
