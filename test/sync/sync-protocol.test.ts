import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from './sync-helpers.ts';

describe.each(testDialects())('sync protocol on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let laptop: SyncClient;
  let phone: SyncClient;
  const clock = new ManualClock(Date.UTC(2026, 0, 1));

  beforeAll(async () => {
    t = await createTestApp({ dialect, clock, env: { STORMVAULT_SYNC_MAX_BATCH: '20', STORMVAULT_SYNC_MAX_PAYLOAD_BYTES: '20000' } });
    alice = await createUserWithKey(t.app);
    laptop = await SyncClient.register(t.app, alice.headers, 'laptop');
    phone = await SyncClient.register(t.app, alice.headers, 'phone');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('applies a create, and another device pulls it while the author does not', async () => {
    const id = newId();
    const { cursor: start } = await phone.pullAll();
    const pushed = await laptop.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 1 }, data: { title: 'Buy milk', tags: ['home'] } }]);
    expect(pushed.status).toBe(200);
    expect(pushed.body.results[0]).toMatchObject({ mutation_id: 1, status: 'applied', version: 1, vector_clock: { [laptop.deviceId]: 1 } });

    const onPhone = await phone.pullAll(start);
    expect(onPhone.changes).toEqual([
      expect.objectContaining({ entity: 'task', id, op: 'upsert', version: 1, data: expect.objectContaining({ title: 'Buy milk', status: 'todo', priority: 'medium', tags: ['home'] }) }),
    ]);
    const onLaptop = await laptop.pullAll(start);
    expect(onLaptop.changes.find((c) => c.id === id)).toBeUndefined();

    const rest = await t.app.http.inject({ method: 'GET', url: `/api/v1/tasks/${id}`, headers: alice.headers });
    expect(rest.json()).toMatchObject({ id, title: 'Buy milk', version: 1 });
    expect(rest.headers.etag).toBe('"1"');
  });

  it('answers a retried push with the same outcome and applies it once', async () => {
    const id = newId();
    const batch = [
      { mutation_id: 10, entity: 'task', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 10 }, data: { title: 'once' } },
      { mutation_id: 11, entity: 'task', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 11 }, data: { title: 'twice' } },
    ];
    const first = await laptop.push(batch);
    const again = await laptop.push(batch);
    expect(first.body.results.map((r: any) => r.status)).toEqual(['applied', 'applied']);
    expect(again.body.results.map((r: any) => [r.status, r.replayed])).toEqual([
      ['applied', true],
      ['applied', true],
    ]);
    const history = await t.app.http.inject({ method: 'GET', url: `/api/v1/tasks/${id}/history`, headers: alice.headers });
    expect(history.json().items.map((h: any) => h.op)).toEqual(['create', 'update']);
    expect(history.json().items[1]).toMatchObject({ device_id: laptop.deviceId, changes: { title: { old: 'once', new: 'twice' } }, version: 2 });
  });

  it('ignores stale changes, merges non-overlapping concurrent edits and records overlapping ones as conflicts', async () => {
    const id = newId();
    const L = laptop.deviceId;
    const P = phone.deviceId;
    await laptop.push([{ mutation_id: 20, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 20 }, data: { title: 'base', priority: 'low' } }]);
    // Stale: the same clock again (from another mutation id) changes nothing.
    const stale = await laptop.push([{ mutation_id: 21, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 20 }, data: { title: 'old news' } }]);
    expect(stale.body.results[0]).toMatchObject({ status: 'stale', current: { data: expect.objectContaining({ title: 'base' }) } });

    // Both edit from {L:20}: laptop the title, phone the priority → merged.
    await laptop.push([{ mutation_id: 22, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 22 }, data: { title: 'laptop title' } }]);
    const merged = await phone.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 20, [P]: 1 }, data: { priority: 'urgent' } }]);
    expect(merged.body.results[0]).toMatchObject({ status: 'merged', current: { vector_clock: { [L]: 22, [P]: 1 }, data: expect.objectContaining({ title: 'laptop title', priority: 'urgent' }) } });

    // Phone edits the title without having seen the laptop's title: overlap → conflict, nothing overwritten.
    const conflict = await phone.push([{ mutation_id: 2, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 20, [P]: 2 }, data: { title: 'phone title' } }]);
    expect(conflict.body.results[0]).toMatchObject({ status: 'conflict', conflict_id: expect.any(String) });
    const task = (await t.app.http.inject({ method: 'GET', url: `/api/v1/tasks/${id}`, headers: alice.headers })).json();
    expect(task).toMatchObject({ title: 'laptop title', priority: 'urgent' });

    const list = (await t.app.http.inject({ method: 'GET', url: '/api/v1/sync/conflicts?status=open', headers: alice.headers })).json();
    const c = list.items.find((x: any) => x.id === conflict.body.results[0].conflict_id);
    expect(c).toMatchObject({ entity: 'task', entity_id: id, fields: ['title'], local: { data: { title: 'phone title' }, device_id: P }, remote: { data: expect.objectContaining({ title: 'laptop title' }) } });

    // Resolve with the phone's side: a new version dominating both clocks, pulled by both devices.
    const { cursor: before } = await laptop.pullAll();
    const resolved = await t.app.http.inject({ method: 'POST', url: `/api/v1/sync/conflicts/${c.id}/resolve`, headers: alice.headers, payload: { strategy: 'local' } });
    expect(resolved.statusCode).toBe(200);
    expect(resolved.json().record).toMatchObject({ title: 'phone title', priority: 'urgent' });
    const clockAfter = resolved.json().record.vector_clock;
    expect(clockAfter[L]).toBe(22);
    expect(clockAfter[P]).toBe(2);
    expect(clockAfter.server).toBe(1);
    const pulled = await laptop.pullAll(before);
    expect(pulled.changes).toEqual([expect.objectContaining({ id, data: expect.objectContaining({ title: 'phone title' }) })]);
    const again = await t.app.http.inject({ method: 'POST', url: `/api/v1/sync/conflicts/${c.id}/resolve`, headers: alice.headers, payload: { strategy: 'remote' } });
    expect(again.statusCode).toBe(409);
  });

  it('records a delete concurrent with an edit as a conflict, and resolves it with custom data', async () => {
    const id = newId();
    const L = laptop.deviceId;
    const P = phone.deviceId;
    await laptop.push([{ mutation_id: 30, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 30 }, data: { title: 'to delete' } }]);
    await laptop.push([{ mutation_id: 31, entity: 'task', op: 'delete', id, vector_clock: { [L]: 31 } }]);
    const edit = await phone.push([{ mutation_id: 3, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 30, [P]: 3 }, data: { description: 'edited offline' } }]);
    expect(edit.body.results[0]).toMatchObject({ status: 'conflict', current: { op: 'delete' } });
    const resolved = await t.app.http.inject({
      method: 'POST',
      url: `/api/v1/sync/conflicts/${edit.body.results[0].conflict_id}/resolve`,
      headers: alice.headers,
      payload: { strategy: 'custom', data: { title: 'kept after all', description: 'edited offline' } },
    });
    expect(resolved.json().record).toMatchObject({ title: 'kept after all', deleted_at: null });
  });

  it('rejects bad batches whole: 400 for malformed, 413 with the limit for too many changes or bytes, 403 for a foreign device', async () => {
    const bad = await laptop.push([{ mutation_id: 40, entity: 'task', op: 'upsert', id: newId(), vector_clock: { x: -1 }, data: { title: 'x' } }]);
    expect(bad.status).toBe(400);
    const badData = await laptop.push([{ mutation_id: 40, entity: 'task', op: 'upsert', id: newId(), vector_clock: {}, data: { status: 'nope' } }]);
    expect(badData.status).toBe(400);
    const unordered = await laptop.push([
      { mutation_id: 41, entity: 'task', op: 'upsert', id: newId(), vector_clock: {}, data: { title: 'a' } },
      { mutation_id: 41, entity: 'task', op: 'upsert', id: newId(), vector_clock: {}, data: { title: 'b' } },
    ]);
    expect(unordered.status).toBe(400);
    const many = Array.from({ length: 21 }, (_, i) => ({ mutation_id: 100 + i, entity: 'task', op: 'upsert', id: newId(), vector_clock: {}, data: { title: 't' } }));
    const tooMany = await laptop.push(many);
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error).toMatchObject({ code: 'payload_too_large', limit: 20 });
    const big = await laptop.push([{ mutation_id: 200, entity: 'task', op: 'upsert', id: newId(), vector_clock: {}, data: { title: 't', description: 'x'.repeat(19_990) } }]);
    expect(big.status).toBe(413);
    expect(big.body.error.limit_bytes).toBe(20000);

    const bob = await createUserWithKey(t.app);
    const stolen = new SyncClient(t.app, bob.headers, laptop.deviceId);
    expect((await stolen.push([])).status).toBe(403);
    expect((await stolen.pull()).status).toBe(403);
    // Nothing of the refused batches was written: the laptop's mutation id did not move.
    const devices = (await t.app.http.inject({ method: 'GET', url: '/api/v1/devices', headers: alice.headers })).json().devices;
    expect(devices.find((d: any) => d.id === laptop.deviceId).last_mutation_id).toBe(31);
  });

  it('pages pulls with an opaque monotonic cursor', async () => {
    const { cursor: start } = await phone.pullAll();
    const ids = Array.from({ length: 7 }, () => newId());
    await laptop.push(ids.map((id, i) => ({ mutation_id: 300 + i, entity: 'project', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 300 + i }, data: { name: `p${i}` } })));
    const seen: string[] = [];
    let cursor = start;
    let pages = 0;
    for (;;) {
      const { body } = await phone.pull(cursor, 3);
      pages++;
      seen.push(...body.changes.map((c: any) => c.id));
      expect(body.cursor).not.toBe(cursor);
      cursor = body.cursor;
      if (!body.has_more) break;
    }
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
    const nothing = await phone.pull(cursor);
    expect(nothing.body).toMatchObject({ changes: [], has_more: false, cursor });
    expect((await phone.pull('not-a-cursor')).status).toBe(400);
  });

  it('retires devices: a retired device can no longer push or pull, and ids are never reused', async () => {
    const tablet = await SyncClient.register(t.app, alice.headers, 'tablet');
    const del = await t.app.http.inject({ method: 'DELETE', url: `/api/v1/devices/${tablet.deviceId}`, headers: alice.headers });
    expect(del.json().retired_at).toBeTruthy();
    expect((await tablet.pull()).status).toBe(403);
    const next = await SyncClient.register(t.app, alice.headers, 'tablet');
    expect(next.deviceId).not.toBe(tablet.deviceId);
  });

  it('records daily metrics of pushes, pulls and conflicts per organization', async () => {
    const day = clock.now().toISOString().slice(0, 10);
    const rows = await t.app.sync.recordDailyMetrics(day);
    expect(rows).toHaveLength(1);
    const res = await t.app.http.inject({ method: 'GET', url: '/api/v1/sync/metrics', headers: alice.headers });
    const [today] = res.json().days;
    expect(today).toMatchObject({ day, conflicts: 2 });
    expect(today.pushes).toBeGreaterThanOrEqual(10);
    expect(today.pulls).toBeGreaterThanOrEqual(5);
    expect(today.changes_pulled).toBeGreaterThan(0);
    // Recording the same day again replaces the row instead of adding to it.
    await t.app.sync.recordDailyMetrics(day);
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/sync/metrics', headers: alice.headers })).json().days).toEqual([today]);
  });

  it('purges tombstones past the horizon and then answers old cursors with 410 resync_required', async () => {
    const { cursor: old } = await phone.pullAll();
    const id = newId();
    await laptop.push([{ mutation_id: 500, entity: 'comment', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 500 }, data: { task_id: (await firstTaskId()), body: 'hi' } }]);
    await laptop.push([{ mutation_id: 501, entity: 'comment', op: 'delete', id, vector_clock: { [laptop.deviceId]: 501 } }]);
    clock.advance(91 * 24 * 3600 * 1000);
    const dry = await t.app.sync.cleanup({ dryRun: true });
    expect(dry.tombstones.comment).toBeGreaterThanOrEqual(1);
    expect((await phone.pull(old)).status).toBe(200);
    const done = await t.app.sync.cleanup({ dryRun: false });
    expect(done.tombstones).toEqual(dry.tombstones);
    const gone = await phone.pull(old);
    expect(gone.status).toBe(410);
    expect(gone.body.error.code).toBe('resync_required');
    // A push naming that stale cursor is refused too, so an offline edit cannot resurrect the purged comment.
    const revive = await t.app.http.inject({
      method: 'POST',
      url: '/api/v1/sync/push',
      headers: alice.headers,
      payload: { device_id: phone.deviceId, cursor: old, changes: [{ mutation_id: 900, entity: 'comment', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 500, [phone.deviceId]: 900 }, data: { task_id: await firstTaskId(), body: 'edited offline' } }] },
    });
    expect(revive.statusCode).toBe(410);
    expect((await t.app.http.inject({ method: 'GET', url: `/api/v1/comments/${id}`, headers: alice.headers })).statusCode).toBe(404);
    const full = await phone.pullAll();
    expect(full.changes.find((c) => c.id === id)).toBeUndefined();
    expect((await t.app.sync.cleanup({ dryRun: false })).tombstones).toEqual({ project: 0, task: 0, comment: 0 });
  });

  async function firstTaskId(): Promise<string> {
    const res = await t.app.http.inject({ method: 'GET', url: '/api/v1/tasks?limit=1', headers: alice.headers });
    return res.json().items[0].id;
  }
});
