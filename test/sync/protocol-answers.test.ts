import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from './sync-helpers.ts';

/**
 * The answers docs/sync-protocol.md gives where an independent client had to guess (issue 12), each
 * checked against the real HTTP surface on SQLite and PostgreSQL: "Reading push results precisely",
 * "Comments on a deleted task" and "Edit against delete". If one of these tests fails, the code or the
 * document is wrong.
 */
describe.each(testDialects())('docs/sync-protocol.md answers on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let laptop: SyncClient;
  let phone: SyncClient;
  const get = (url: string) => t.app.http.inject({ method: 'GET', url, headers: alice.headers });

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
    laptop = await SyncClient.register(t.app, alice.headers, 'laptop');
    phone = await SyncClient.register(t.app, alice.headers, 'phone');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('`current` of a fresh result is the record right after that change; of a replay, the record as it is now', async () => {
    const L = laptop.deviceId;
    const P = phone.deviceId;
    const id = newId();
    await laptop.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 1 }, data: { title: 'base' } }]);
    await laptop.push([{ mutation_id: 2, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2 }, data: { description: 'from the laptop' } }]);
    // The phone saw only the first version: its title edit is concurrent with the laptop's description
    // (merged); its second change follows the merge within the same batch.
    const batch = [
      { mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 1, [P]: 1 }, data: { title: 'phone one' } },
      { mutation_id: 2, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2, [P]: 2 }, data: { title: 'phone two' } },
    ];
    const fresh = await phone.push(batch);
    expect(fresh.status).toBe(200);
    expect(fresh.body.results[0]).toMatchObject({ status: 'merged', current: { data: { title: 'phone one', description: 'from the laptop' } } });
    expect(fresh.body.results[1].status).toBe('applied');
    // Replayed, both answer the record as it is now, after the whole batch.
    const replay = await phone.push(batch);
    expect(replay.body.results.map((r: any) => [r.replayed, r.current?.data?.title])).toEqual([
      [true, 'phone two'],
      [true, 'phone two'],
    ]);
  });

  it('a rejected create comes back without `current` (the client removes it), with the documented reason', async () => {
    const L = laptop.deviceId;
    const unknownTask = newId();
    const res = await laptop.push([{ mutation_id: 10, entity: 'comment', op: 'upsert', id: newId(), vector_clock: { [L]: 10 }, data: { task_id: unknownTask, body: 'orphan' } }]);
    expect(res.status).toBe(200);
    const [result] = res.body.results;
    expect(result.status).toBe('rejected');
    expect(result.current ?? null).toBeNull();
    expect(result.reason).toBe(`task ${unknownTask} does not exist`);
  });

  it('a rejected change of a known record comes back with the version the server kept (the client resets to it)', async () => {
    const L = laptop.deviceId;
    const task = newId();
    const comment = newId();
    await laptop.push([
      { mutation_id: 20, entity: 'task', op: 'upsert', id: task, vector_clock: { [L]: 20 }, data: { title: 'host' } },
      { mutation_id: 21, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [L]: 21 }, data: { task_id: task, body: 'kept' } },
    ]);
    const res = await laptop.push([{ mutation_id: 22, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [L]: 22 }, data: { task_id: newId(), body: 'moved' } }]);
    const [result] = res.body.results;
    expect(result.status).toBe('rejected');
    expect(result.reason).toBe('comment task_id cannot change');
    expect(result.current.data).toMatchObject({ task_id: task, body: 'kept' });
  });

  it('order of checks: a concurrent change that overlaps and also breaks a rule is a conflict, not a rejection', async () => {
    const L = laptop.deviceId;
    const P = phone.deviceId;
    const task = newId();
    const comment = newId();
    await laptop.push([
      { mutation_id: 25, entity: 'task', op: 'upsert', id: task, vector_clock: { [L]: 1 }, data: { title: 'host' } },
      { mutation_id: 26, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [L]: 1 }, data: { task_id: task, body: 'v1' } },
    ]);
    await laptop.push([{ mutation_id: 27, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [L]: 2 }, data: { body: 'laptop v2' } }]);
    // Alone, moving a comment to another task is rejected ("comment task_id cannot change"); here the body overlaps first.
    const res = await phone.push([{ mutation_id: 5, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [L]: 1, [P]: 1 }, data: { body: 'phone v2', task_id: newId() } }]);
    expect(res.body.results[0]).toMatchObject({ status: 'conflict', current: { data: { body: 'laptop v2', task_id: task } } });
  });

  it('a comment pushed for a task deleted meanwhile is applied and stays live under the tombstone; restoring the task shows it again', async () => {
    const L = laptop.deviceId;
    const P = phone.deviceId;
    const task = newId();
    const comment = newId();
    await laptop.push([{ mutation_id: 30, entity: 'task', op: 'upsert', id: task, vector_clock: { [L]: 30 }, data: { title: 'soon deleted' } }]);
    const { cursor } = await phone.pullAll();
    await laptop.push([{ mutation_id: 31, entity: 'task', op: 'delete', id: task, vector_clock: { [L]: 31 } }]);
    // The phone has not heard of the delete: it comments on the task it still shows.
    const pushed = await phone.push([{ mutation_id: 6, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [P]: 3 }, data: { task_id: task, body: 'written offline' } }]);
    expect(pushed.body.results[0]).toMatchObject({ status: 'applied' });
    // Live under the tombstone: in pulls and in the comment list, not under the deleted task.
    const pulled = (await laptop.pullAll()).changes.find((c) => c.id === comment);
    expect(pulled).toMatchObject({ op: 'upsert', data: { task_id: task, body: 'written offline' } });
    expect((await get(`/api/v1/comments/${comment}`)).statusCode).toBe(200);
    expect((await get(`/api/v1/tasks/${task}/comments`)).statusCode).toBe(404);
    expect((await phone.pullAll(cursor)).changes.find((c) => c.id === task)).toMatchObject({ op: 'delete' });

    // Edit against delete: the phone also edited the task offline; `local` restores it, comment and all.
    const edit = await phone.push([{ mutation_id: 7, entity: 'task', op: 'upsert', id: task, vector_clock: { [L]: 30, [P]: 4 }, data: { description: 'edited offline' } }]);
    expect(edit.body.results[0]).toMatchObject({ status: 'conflict', current: { op: 'delete' } });
    const resolved = await t.app.http.inject({
      method: 'POST',
      url: `/api/v1/sync/conflicts/${edit.body.results[0].conflict_id}/resolve`,
      headers: alice.headers,
      payload: { strategy: 'local' },
    });
    expect(resolved.statusCode).toBe(200);
    expect(resolved.json().record).toMatchObject({ title: 'soon deleted', description: 'edited offline', deleted_at: null });
    const under = await get(`/api/v1/tasks/${task}/comments`);
    expect(under.statusCode).toBe(200);
    expect(under.json().items.map((c: { id: string }) => c.id)).toEqual([comment]);
  });

  it('a delete against an edit resolved with `remote` keeps the edit; with `local` it deletes', async () => {
    const L = laptop.deviceId;
    const P = phone.deviceId;
    for (const [strategy, deleted] of [
      ['remote', false],
      ['local', true],
    ] as const) {
      const id = newId();
      await laptop.push([{ mutation_id: 40 + (deleted ? 5 : 0), entity: 'task', op: 'upsert', id, vector_clock: { [L]: 1 }, data: { title: 'edited twice' } }]);
      await laptop.push([{ mutation_id: 41 + (deleted ? 5 : 0), entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2 }, data: { title: 'edited on the laptop' } }]);
      const del = await phone.push([{ mutation_id: 10 + (deleted ? 5 : 0), entity: 'task', op: 'delete', id, vector_clock: { [L]: 1, [P]: 1 } }]);
      expect(del.body.results[0]).toMatchObject({ status: 'conflict' });
      const resolved = await t.app.http.inject({
        method: 'POST',
        url: `/api/v1/sync/conflicts/${del.body.results[0].conflict_id}/resolve`,
        headers: alice.headers,
        payload: { strategy },
      });
      expect(resolved.statusCode, strategy).toBe(200);
      expect((await get(`/api/v1/tasks/${id}`)).statusCode, strategy).toBe(deleted ? 404 : 200);
    }
  });
});
