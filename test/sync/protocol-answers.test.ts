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

type Clock = Record<string, number>;

/** One device of one user in one organization: each push takes the device's next counter as mutation id and clock entry. */
class Device {
  private counter = 0;
  constructor(readonly client: SyncClient) {}
  get id(): string {
    return this.client.deviceId;
  }
  /** The change as the device sends it: `seen` is the clock of the record as the device holds it. */
  change(entity: string, op: 'upsert' | 'delete', id: string, data?: Record<string, unknown>, seen: Clock = {}) {
    const n = ++this.counter;
    return { mutation_id: n, entity, op, id, vector_clock: { ...seen, [this.id]: n }, ...(data ? { data } : {}) };
  }
  async pushAll(changes: unknown[]): Promise<any[]> {
    const res = await this.client.push(changes);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.results;
  }
  async push(entity: string, op: 'upsert' | 'delete', id: string, data?: Record<string, unknown>, seen: Clock = {}): Promise<any> {
    return (await this.pushAll([this.change(entity, op, id, data, seen)]))[0];
  }
}

/**
 * docs/sync-protocol.md's two tables a client must follow to the letter (issue 12): every reason a pushed
 * change can be `rejected` with ("Every rejection reason"), and every answer of
 * `POST /api/v1/sync/conflicts/{id}/resolve` ("What a resolve can answer").
 */
describe.each(testDialects())('docs/sync-protocol.md rejection reasons and resolve answers on %s', (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let member: TestUser;
  let outsider: TestUser;
  let h: Record<string, string>;
  let laptop: Device; // the admin's
  let phone: Device; // the admin's second device
  let memberPhone: Device;

  const inject = (user: TestUser, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = h) =>
    t.app.http.inject({ method, url, headers: { ...user.headers, ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) });
  const device = async (user: TestUser, name: string) => new Device(new SyncClient(t.app, { ...user.headers, ...h }, (await SyncClient.register(t.app, user.headers, name)).deviceId));

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    admin = await createUserWithKey(t.app);
    member = await createUserWithKey(t.app);
    outsider = await createUserWithKey(t.app);
    const org = (await inject(admin, 'POST', '/api/v1/organizations', { name: 'answers' }, {})).json().id;
    h = { 'x-organization': org };
    expect((await inject(admin, 'PUT', '/api/v1/organizations/members', { username: member.user.username, role: 'member' })).statusCode).toBe(200);
    laptop = await device(admin, 'laptop');
    phone = await device(admin, 'phone');
    memberPhone = await device(member, 'member phone');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  /** A task created by the laptop; returns its id and clock. */
  async function task(data: Record<string, unknown> = {}): Promise<{ id: string; clock: Clock }> {
    const id = newId();
    const r = await laptop.push('task', 'upsert', id, { title: 'a task', ...data });
    expect(r.status).toBe('applied');
    return { id, clock: r.vector_clock };
  }
  async function comment(taskId: string, data: Record<string, unknown> = {}): Promise<{ id: string; clock: Clock }> {
    const id = newId();
    const r = await laptop.push('comment', 'upsert', id, { task_id: taskId, body: 'a comment', ...data });
    expect(r.status).toBe('applied');
    return { id, clock: r.vector_clock };
  }
  async function project(): Promise<{ id: string; clock: Clock }> {
    const id = newId();
    const r = await laptop.push('project', 'upsert', id, { name: 'a project' });
    expect(r.status).toBe('applied');
    return { id, clock: r.vector_clock };
  }
  const expectRejected = (result: any, reason: string, current: 'none' | Record<string, unknown>) => {
    expect(result, JSON.stringify(result)).toMatchObject({ status: 'rejected', reason });
    if (current === 'none') expect(result.current ?? null).toBeNull();
    else expect(result.current.data).toMatchObject(current);
  };

  describe('every rejection reason of the table', () => {
    it('delete of a record the server does not know: `<entity> <id> does not exist`, without `current`', async () => {
      for (const entity of ['project', 'task', 'comment']) {
        const id = newId();
        expectRejected(await laptop.push(entity, 'delete', id), `${entity} ${id} does not exist`, 'none');
      }
    });

    it('a create without a required field: `a new <entity> needs <fields>`, without `current`', async () => {
      const { id: taskId } = await task();
      expectRejected(await laptop.push('task', 'upsert', newId(), { description: 'no title' }), 'a new task needs title', 'none');
      expectRejected(await laptop.push('project', 'upsert', newId(), { archived: false }), 'a new project needs name', 'none');
      expectRejected(await laptop.push('comment', 'upsert', newId(), { body: 'on nothing' }), 'a new comment needs task_id', 'none');
      expectRejected(await laptop.push('comment', 'upsert', newId(), { task_id: taskId }), 'a new comment needs body', 'none');
      expectRejected(await laptop.push('comment', 'upsert', newId(), { parent_id: null }), 'a new comment needs task_id, body', 'none');
    });

    it("a comment's task_id or parent_id changed: `comment <field> cannot change`, with the version the server kept", async () => {
      const a = await task();
      const b = await task();
      const parent = await comment(a.id);
      const reply = await comment(a.id, { parent_id: parent.id, body: 'a reply' });
      expectRejected(await laptop.push('comment', 'upsert', reply.id, { task_id: b.id }, reply.clock), 'comment task_id cannot change', { task_id: a.id, parent_id: parent.id });
      const other = await comment(a.id);
      expectRejected(await laptop.push('comment', 'upsert', reply.id, { parent_id: other.id }, reply.clock), 'comment parent_id cannot change', { task_id: a.id, parent_id: parent.id });
      expectRejected(await laptop.push('comment', 'upsert', reply.id, { parent_id: null }, reply.clock), 'comment parent_id cannot change', { parent_id: parent.id });
    });

    it("a project's archive, unarchive, delete or restore by a member: `… needs the admin role`", async () => {
      const p = await project();
      expectRejected(await memberPhone.push('project', 'upsert', p.id, { archived: true }, p.clock), 'archiving or unarchiving a project needs the admin role', { archived: false });
      expectRejected(await memberPhone.push('project', 'upsert', newId(), { name: 'archived at birth', archived: true }), 'archiving or unarchiving a project needs the admin role', 'none');
      const archived = await laptop.push('project', 'upsert', p.id, { archived: true }, p.clock);
      expectRejected(await memberPhone.push('project', 'upsert', p.id, { archived: false }, archived.vector_clock), 'archiving or unarchiving a project needs the admin role', { archived: true });
      expectRejected(await memberPhone.push('project', 'delete', p.id, undefined, archived.vector_clock), 'deleting a project needs the admin role', { archived: true });
      const deleted = await laptop.push('project', 'delete', p.id, undefined, archived.vector_clock);
      expect(deleted.status).toBe('applied');
      const restore = await memberPhone.push('project', 'upsert', p.id, { name: 'back' }, deleted.vector_clock);
      expect(restore).toMatchObject({ status: 'rejected', reason: 'restoring a deleted project needs the admin role', current: { op: 'delete' } });
      // A member still creates and renames projects.
      expect((await memberPhone.push('project', 'upsert', newId(), { name: 'by a member' })).status).toBe('applied');
    });

    it("a task's project_id that is not a project of the organization: `project <id> does not exist`", async () => {
      const unknown = newId();
      expectRejected(await laptop.push('task', 'upsert', newId(), { title: 'in nothing', project_id: unknown }), `project ${unknown} does not exist`, 'none');
      const p = await project();
      const tk = await task({ project_id: p.id });
      expectRejected(await laptop.push('task', 'upsert', tk.id, { project_id: unknown }, tk.clock), `project ${unknown} does not exist`, { project_id: p.id });
      // Another organization's project is "not found" for the whole batch, as a REST read (404), not a rejection.
      const foreign = newId();
      const mine = new Device(new SyncClient(t.app, outsider.headers, (await SyncClient.register(t.app, outsider.headers, 'outsider laptop')).deviceId));
      expect((await mine.push('project', 'upsert', foreign, { name: 'elsewhere' })).status).toBe('applied');
      expect((await laptop.client.push([laptop.change('task', 'upsert', newId(), { title: 'x', project_id: foreign })])).status).toBe(404);
    });

    it("a task's assignee_id that is not a member's user id: `assignee <id> is not a member of the organization`", async () => {
      const stranger = outsider.user.id;
      expectRejected(await laptop.push('task', 'upsert', newId(), { title: 'for a stranger', assignee_id: stranger }), `assignee ${stranger} is not a member of the organization`, 'none');
      const tk = await task({ assignee_id: member.user.id });
      expectRejected(await laptop.push('task', 'upsert', tk.id, { assignee_id: stranger }, tk.clock), `assignee ${stranger} is not a member of the organization`, { assignee_id: member.user.id });
      expect((await laptop.push('task', 'upsert', tk.id, { assignee_id: null }, tk.clock)).status).toBe('applied');
    });

    it('a status change outside the transition table, checked from the stored status: `status cannot change from <a> to <b> (allowed: …)`', async () => {
      const tk = await task();
      const done = await laptop.push('task', 'upsert', tk.id, { status: 'done' }, tk.clock);
      expect(done.status).toBe('applied');
      expectRejected(await laptop.push('task', 'upsert', tk.id, { status: 'in_progress' }, done.vector_clock), 'status cannot change from done to in_progress (allowed: todo)', { status: 'done' });
      expectRejected(await laptop.push('task', 'upsert', tk.id, { status: 'cancelled' }, done.vector_clock), 'status cannot change from done to cancelled (allowed: todo)', { status: 'done' });
      // A create may start in any status.
      expect((await laptop.push('task', 'upsert', newId(), { title: 'born done', status: 'done' })).status).toBe('applied');
    });

    it('a new comment on a task the organization does not hold: `task <id> does not exist`; a comment on a task rejected in the same batch too', async () => {
      const unknown = newId();
      expectRejected(await laptop.push('comment', 'upsert', newId(), { task_id: unknown, body: 'orphan' }), `task ${unknown} does not exist`, 'none');
      const rejectedTask = newId();
      const [taskResult, commentResult] = await laptop.pushAll([
        laptop.change('task', 'upsert', rejectedTask, { description: 'no title' }),
        laptop.change('comment', 'upsert', newId(), { task_id: rejectedTask, body: 'on a rejected task' }),
      ]);
      expectRejected(taskResult, 'a new task needs title', 'none');
      expectRejected(commentResult, `task ${rejectedTask} does not exist`, 'none');
    });

    it('a reply whose parent comment is unknown, or on another task', async () => {
      const a = await task();
      const b = await task();
      const unknown = newId();
      expectRejected(await laptop.push('comment', 'upsert', newId(), { task_id: a.id, parent_id: unknown, body: 'to nobody' }), `parent comment ${unknown} does not exist`, 'none');
      const onB = await comment(b.id);
      expectRejected(await laptop.push('comment', 'upsert', newId(), { task_id: a.id, parent_id: onB.id, body: 'across tasks' }), 'a reply must be on the same task as its parent comment', 'none');
    });

    it('accepts references to tombstones (a deleted, not yet purged project, task or parent comment)', async () => {
      const p = await project();
      const tk = await task();
      const parent = await comment(tk.id);
      expect((await laptop.push('project', 'delete', p.id, undefined, p.clock)).status).toBe('applied');
      expect((await laptop.push('comment', 'delete', parent.id, undefined, parent.clock)).status).toBe('applied');
      expect((await laptop.push('task', 'upsert', newId(), { title: 'in a deleted project', project_id: p.id })).status).toBe('applied');
      expect((await laptop.push('comment', 'upsert', newId(), { task_id: tk.id, parent_id: parent.id, body: 'reply to a deleted comment' })).status).toBe('applied');
      expect((await laptop.push('task', 'delete', tk.id, undefined, tk.clock)).status).toBe('applied');
      expect((await laptop.push('comment', 'upsert', newId(), { task_id: tk.id, body: 'on a deleted task' })).status).toBe('applied');
    });
  });

  describe("resolve's answers", () => {
    const resolve = (user: TestUser, conflictId: string, body: unknown, headers = h) => inject(user, 'POST', `/api/v1/sync/conflicts/${conflictId}/resolve`, body, headers);
    const isOpen = async (conflictId: string) => (await inject(admin, 'GET', '/api/v1/sync/conflicts?status=open&limit=200')).json().items.some((c: { id: string }) => c.id === conflictId);

    /** A task the laptop created and then edited, and the phone's concurrent change of the same field(s) (a conflict). */
    async function taskConflict(phoneData: Record<string, unknown>, laptopData: Record<string, unknown> = { title: 'laptop title' }, base: Record<string, unknown> = {}) {
      const tk = await task(base);
      const edited = await laptop.push('task', 'upsert', tk.id, laptopData, tk.clock);
      expect(edited.status).toBe('applied');
      const pushed = await phone.push('task', 'upsert', tk.id, phoneData, tk.clock);
      expect(pushed.status, JSON.stringify(pushed)).toBe('conflict');
      return { taskId: tk.id, conflictId: pushed.conflict_id as string };
    }

    it('400 for a body that is not one of the three strategies', async () => {
      const { conflictId } = await taskConflict({ title: 'phone title' });
      // `data` belongs to `custom` alone: with `local` or `remote` it would be ignored, so it is refused.
      const bodies = [{}, { strategy: 'mine' }, { strategy: 'local', extra: true }, { strategy: 'custom', data: 'title' }, { strategy: 'custom', data: null }, [], { strategy: 'local', data: { title: 'x' } }, { strategy: 'remote', data: {} }];
      for (const body of bodies) {
        const res = await resolve(admin, conflictId, body);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(res.json().error.code).toBe('invalid_request');
      }
      expect(await isOpen(conflictId)).toBe(true);
    });

    it('400 when `custom` has no data, or data a push would refuse (the same checks); the conflict stays open', async () => {
      const { conflictId } = await taskConflict({ title: 'phone title' });
      const missing = await resolve(admin, conflictId, { strategy: 'custom' });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().error).toMatchObject({ code: 'invalid_request', message: 'strategy custom needs data' });
      let deep: unknown = 1;
      for (let i = 0; i < 40; i++) deep = { d: deep };
      for (const data of [{ nope: 1 }, { title: '' }, { status: 'bogus' }, { priority: 'whenever' }, { tags: 'not a list' }, { due_date: 'tomorrow' }, { custom_fields: deep }]) {
        const res = await resolve(admin, conflictId, { strategy: 'custom', data });
        expect(res.statusCode, JSON.stringify(data).slice(0, 80)).toBe(400);
        expect(res.json().error.code).toBe('invalid_request');
      }
      expect(await isOpen(conflictId)).toBe(true);
      expect((await resolve(admin, conflictId, { strategy: 'custom', data: { title: 'both' } })).statusCode).toBe(200);
    });

    it('400 with the rejection reason when the chosen version breaks a rule; the conflict stays open', async () => {
      const stranger = outsider.user.id;
      const unknownProject = newId();
      // `local`: the phone's change was a conflict (rules are not checked then), and breaks a rule.
      const a = await taskConflict({ title: 'phone title', assignee_id: stranger });
      const local = await resolve(admin, a.conflictId, { strategy: 'local' });
      expect(local.statusCode).toBe(400);
      expect(local.json().error).toMatchObject({ code: 'invalid_request', message: `assignee ${stranger} is not a member of the organization` });
      expect(await isOpen(a.conflictId)).toBe(true);
      expect((await resolve(admin, a.conflictId, { strategy: 'remote' })).statusCode).toBe(200);

      // `custom`: the given fields break a rule.
      const b = await taskConflict({ title: 'phone title' });
      const custom = await resolve(admin, b.conflictId, { strategy: 'custom', data: { project_id: unknownProject } });
      expect(custom.statusCode).toBe(400);
      expect(custom.json().error.message).toBe(`project ${unknownProject} does not exist`);
      expect(await isOpen(b.conflictId)).toBe(true);

      // A comment's task_id cannot change in a resolution either.
      const tk = await task();
      const other = await task();
      const c = await comment(tk.id);
      expect((await laptop.push('comment', 'upsert', c.id, { body: 'laptop body' }, c.clock)).status).toBe('applied');
      const conflict = await phone.push('comment', 'upsert', c.id, { body: 'phone body' }, c.clock);
      expect(conflict.status).toBe('conflict');
      const moved = await resolve(admin, conflict.conflict_id, { strategy: 'custom', data: { task_id: other.id } });
      expect(moved.statusCode).toBe(400);
      expect(moved.json().error.message).toBe('comment task_id cannot change');
      expect(await isOpen(conflict.conflict_id)).toBe(true);
    });

    it('status transitions are the exception: a resolution may set any status', async () => {
      // The laptop finished the task; the phone, which saw it open, started it: done -> in_progress is not a transition.
      const { taskId, conflictId } = await taskConflict({ status: 'in_progress' }, { status: 'done' });
      const res = await resolve(admin, conflictId, { strategy: 'local' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().record).toMatchObject({ id: taskId, status: 'in_progress' });
    });

    it('403 when the chosen version breaks a role rule (a member archiving or deleting a project)', async () => {
      // The admin renamed the project; concurrently the member renamed and archived it, or deleted it.
      for (const memberChange of [{ op: 'upsert' as const, data: { name: 'renamed by the member', archived: true } }, { op: 'delete' as const }]) {
        const p = await project();
        const renamed = await laptop.push('project', 'upsert', p.id, { name: 'renamed by the admin' }, p.clock);
        expect(renamed.status).toBe('applied');
        const pushed = await memberPhone.push('project', memberChange.op, p.id, memberChange.data, p.clock);
        expect(pushed.status, JSON.stringify(pushed)).toBe('conflict');
        const denied = await resolve(member, pushed.conflict_id, { strategy: 'local' });
        expect(denied.statusCode, memberChange.op).toBe(403);
        expect(denied.json().error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/needs the admin role/) });
        expect(await isOpen(pushed.conflict_id)).toBe(true);
        // The member may keep the admin's version; an admin may choose the member's.
        expect((await resolve(admin, pushed.conflict_id, { strategy: 'local' })).statusCode, memberChange.op).toBe(200);
      }
    });

    it("404 for an unknown conflict and for another organization's; 409 once resolved", async () => {
      const { conflictId } = await taskConflict({ title: 'phone title' });
      expect((await resolve(admin, newId(), { strategy: 'remote' })).statusCode).toBe(404);
      const foreign = await resolve(outsider, conflictId, { strategy: 'remote' }, {});
      expect(foreign.statusCode).toBe(404);
      expect(foreign.json().error.code).toBe('not_found');
      expect(await isOpen(conflictId)).toBe(true);
      expect((await resolve(admin, conflictId, { strategy: 'remote' })).statusCode).toBe(200);
      const twice = await resolve(admin, conflictId, { strategy: 'local' });
      expect(twice.statusCode).toBe(409);
      expect(twice.json().error.code).toBe('conflict');
    });

    it('413 quota_exceeded when the chosen version would take the organization over its storage quota', async () => {
      const owner = await createUserWithKey(t.app);
      const org = (await inject(owner, 'POST', '/api/v1/organizations', { name: 'tiny', storage_quota_bytes: 100 }, {})).json().id;
      const small = { 'x-organization': org };
      const one = new Device(new SyncClient(t.app, { ...owner.headers, ...small }, (await SyncClient.register(t.app, owner.headers, 'one')).deviceId));
      const two = new Device(new SyncClient(t.app, { ...owner.headers, ...small }, (await SyncClient.register(t.app, owner.headers, 'two')).deviceId));
      const id = newId();
      const created = await one.push('task', 'upsert', id, { title: 'short' });
      expect((await one.push('task', 'upsert', id, { title: 'still short' }, created.vector_clock)).status).toBe('applied');
      const pushed = await two.push('task', 'upsert', id, { title: 'two' }, created.vector_clock);
      expect(pushed.status).toBe('conflict');
      const res = await resolve(owner, pushed.conflict_id, { strategy: 'custom', data: { title: 'x'.repeat(200) } }, small);
      expect(res.statusCode).toBe(413);
      expect(res.json().error.code).toBe('quota_exceeded');
      expect((await inject(owner, 'GET', '/api/v1/sync/conflicts?status=open', undefined, small)).json().items.map((c: { id: string }) => c.id)).toEqual([pushed.conflict_id]);
    });
  });
});
