import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordsRepository } from '../../src/modules/records/records.repository.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from './sync-helpers.ts';

/** A member of organization A can read or write nothing of organization B, through any endpoint. */
describe.each(testDialects())('organization isolation on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let aliceDevice: SyncClient;
  let bobDevice: SyncClient;
  let orgB: string;
  const b = { project: newId(), task: newId(), comment: newId() };
  let bobConflictId: string;

  const inject = (user: TestUser, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...user.headers, ...headers }, payload: payload as object });

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
    bob = await createUserWithKey(t.app);
    aliceDevice = await SyncClient.register(t.app, alice.headers, 'alice laptop');
    bobDevice = await SyncClient.register(t.app, bob.headers, 'bob laptop');
    orgB = (await inject(bob, 'GET', '/api/v1/organizations')).json().organizations[0].id;
    const B = bobDevice.deviceId;
    const pushed = await bobDevice.push([
      { mutation_id: 1, entity: 'project', op: 'upsert', id: b.project, vector_clock: { [B]: 1 }, data: { name: 'secret project' } },
      { mutation_id: 2, entity: 'task', op: 'upsert', id: b.task, vector_clock: { [B]: 2 }, data: { title: 'secret task', project_id: b.project } },
      { mutation_id: 3, entity: 'comment', op: 'upsert', id: b.comment, vector_clock: { [B]: 3 }, data: { task_id: b.task, body: 'secret comment' } },
      { mutation_id: 4, entity: 'task', op: 'upsert', id: b.task, vector_clock: { [B]: 4 }, data: { title: 'secret v2' } },
      { mutation_id: 5, entity: 'task', op: 'upsert', id: b.task, vector_clock: { [B]: 2, dev_00000000000000ff: 1 }, data: { title: 'secret conflict' } },
    ]);
    expect(pushed.body.results.map((r: any) => r.status)).toEqual(['applied', 'applied', 'applied', 'applied', 'conflict']);
    bobConflictId = pushed.body.results[4].conflict_id;
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const bobTaskUnchanged = async () => {
    const res = await inject(bob, 'GET', `/api/v1/tasks/${b.task}`);
    expect(res.json()).toMatchObject({ title: 'secret v2', version: 2, deleted_at: null });
  };

  it('answers 404 for B records by id through every REST route, changing nothing', async () => {
    const calls: Array<[string, string, unknown?]> = [
      ['GET', `/api/v1/tasks/${b.task}`],
      ['PATCH', `/api/v1/tasks/${b.task}`, { title: 'hacked' }],
      ['DELETE', `/api/v1/tasks/${b.task}`],
      ['GET', `/api/v1/tasks/${b.task}/history`],
      ['GET', `/api/v1/tasks/${b.task}/comments`],
      ['GET', `/api/v1/comments?task_id=${b.task}`],
      ['GET', `/api/v1/comments/${b.comment}`],
      ['PATCH', `/api/v1/comments/${b.comment}`, { body: 'hacked' }],
      ['DELETE', `/api/v1/comments/${b.comment}`],
      ['GET', `/api/v1/projects/${b.project}`],
      ['PATCH', `/api/v1/projects/${b.project}`, { name: 'hacked' }],
      ['POST', `/api/v1/projects/${b.project}/archive`],
      ['DELETE', `/api/v1/projects/${b.project}`],
      ['POST', `/api/v1/sync/conflicts/${bobConflictId}/resolve`, { strategy: 'local' }],
      ['DELETE', `/api/v1/devices/${bobDevice.deviceId}`],
    ];
    for (const [method, url, payload] of calls) {
      const res = await inject(alice, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    await bobTaskUnchanged();
  });

  it('resolves a conflict only within the organization named by the caller (repository guard)', async () => {
    const orgA = (await inject(alice, 'GET', '/api/v1/organizations')).json().organizations[0].id;
    const repo = new RecordsRepository(t.app.db, dialect);
    await repo.markConflictResolved(orgA, bobConflictId, 'local', alice.user.id, new Date(0).toISOString());
    const open = (await inject(bob, 'GET', '/api/v1/sync/conflicts?status=open')).json().items.map((c: any) => c.id);
    expect(open).toContain(bobConflictId);
  });

  it("never answers a replay with the stored outcome of the same device's mutation in another organization", async () => {
    const carol = await createUserWithKey(t.app);
    const device = await SyncClient.register(t.app, carol.headers, 'carol laptop');
    const D = device.deviceId;
    const task = newId();
    const pushed = await device.push([
      { mutation_id: 1, entity: 'task', op: 'upsert', id: task, vector_clock: { [D]: 1 }, data: { title: 'carol task' } },
      { mutation_id: 2, entity: 'task', op: 'upsert', id: task, vector_clock: { [D]: 2 }, data: { title: 'carol v2' } },
      { mutation_id: 3, entity: 'task', op: 'upsert', id: task, vector_clock: { [D]: 1, dev_00000000000000ff: 1 }, data: { title: 'carol private conflict' } },
    ]);
    expect(pushed.body.results[2]).toMatchObject({ status: 'conflict', conflict_id: expect.any(String) });
    const second = (await inject(carol, 'POST', '/api/v1/organizations', { name: 'carol second' })).json().id;
    const inSecond = new SyncClient(t.app, { ...carol.headers, 'x-organization': second }, D);
    // Mutation ids count per (device, organization): id 3 is fresh in the second organization, then a replay there.
    const batch = [{ mutation_id: 3, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [D]: 3 }, data: { title: 'x' } }];
    expect((await inSecond.push(batch)).body.results[0]).toMatchObject({ status: 'applied' });
    const replay = await inSecond.push(batch);
    expect(replay.status).toBe(200);
    expect(replay.body.results[0]).toMatchObject({ replayed: true });
    expect(replay.body.results[0].conflict_id).toBeUndefined();
    expect(JSON.stringify(replay.body)).not.toMatch(/conflict/);
  });

  it('lists nothing of B', async () => {
    for (const url of ['/api/v1/tasks?include_deleted=true', '/api/v1/comments', '/api/v1/projects?include_archived=true', '/api/v1/sync/conflicts']) {
      const body = (await inject(alice, 'GET', url)).json();
      expect(JSON.stringify(body), url).not.toMatch(/secret/);
      expect(body.items, url).toEqual([]);
    }
    const devices = (await inject(alice, 'GET', '/api/v1/devices')).json().devices;
    expect(devices.map((d: any) => d.id)).toEqual([aliceDevice.deviceId]);
  });

  it('refuses X-Organization of an organization the caller is not a member of', async () => {
    for (const url of ['/api/v1/tasks', `/api/v1/tasks/${b.task}`, '/api/v1/sync/conflicts', '/api/v1/organizations/members', `/api/v1/sync/pull?device_id=${aliceDevice.deviceId}`]) {
      const res = await inject(alice, 'GET', url, undefined, { 'x-organization': orgB });
      expect(res.statusCode, url).toBe(403);
    }
    const create = await inject(alice, 'POST', '/api/v1/tasks', { title: 'planted' }, { 'x-organization': orgB });
    expect(create.statusCode).toBe(403);
    const add = await inject(alice, 'PUT', '/api/v1/organizations/members', { username: alice.user.username, role: 'admin' }, { 'x-organization': orgB });
    expect(add.statusCode).toBe(403);
  });

  it('refuses pushes that name B ids, directly or as references, and writes nothing of the batch', async () => {
    const A = aliceDevice.deviceId;
    const own = newId();
    const attempts = [
      { mutation_id: 2, entity: 'task', op: 'upsert', id: b.task, vector_clock: { [A]: 1, [bobDevice.deviceId]: 99 }, data: { title: 'hacked' } },
      { mutation_id: 2, entity: 'task', op: 'delete', id: b.task, vector_clock: { [A]: 1, [bobDevice.deviceId]: 99 } },
      { mutation_id: 2, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [A]: 1 }, data: { title: 'mine', project_id: b.project } },
      { mutation_id: 2, entity: 'comment', op: 'upsert', id: newId(), vector_clock: { [A]: 1 }, data: { task_id: b.task, body: 'planted' } },
      { mutation_id: 2, entity: 'project', op: 'upsert', id: b.project, vector_clock: { [A]: 1 }, data: { name: 'stolen' } },
    ];
    for (const change of attempts) {
      const res = await aliceDevice.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id: own, vector_clock: { [A]: 1 }, data: { title: 'would be written' } }, change]);
      // 404 like a REST read of the id: nothing says the id lives in another organization (issue 12).
      expect(res.status, JSON.stringify(change)).toBe(404);
      expect(res.body.error.message).not.toMatch(/organization/);
    }
    // Neither the foreign change nor the innocent one in the same batch was written.
    expect((await inject(alice, 'GET', `/api/v1/tasks/${own}`)).statusCode).toBe(404);
    await bobTaskUnchanged();
    // A REST create reusing a B id is refused too.
    expect((await inject(alice, 'POST', '/api/v1/tasks', { id: b.task, title: 'dup' })).statusCode).toBe(404);
    await bobTaskUnchanged();
  });

  it('never pulls B changes, and refuses B devices and B cursors', async () => {
    const all = await aliceDevice.pullAll();
    expect(all.changes).toEqual([]);
    const { cursor: bCursor } = await bobDevice.pullAll();
    expect((await aliceDevice.pull(bCursor)).status).toBe(400);
    const withBobsDevice = new SyncClient(t.app, alice.headers, bobDevice.deviceId);
    expect((await withBobsDevice.push([])).status).toBe(403);
    expect((await withBobsDevice.pull()).status).toBe(403);
    const events = await inject(alice, 'GET', `/api/v1/sync/events?device_id=${bobDevice.deviceId}`);
    expect(events.statusCode).toBe(403);
  });

  it('lets a member read B once added, while members cannot manage B', async () => {
    const add = await inject(bob, 'PUT', '/api/v1/organizations/members', { username: alice.user.username, role: 'member' });
    expect(add.statusCode).toBe(200);
    const read = await inject(alice, 'GET', `/api/v1/tasks/${b.task}`, undefined, { 'x-organization': orgB });
    expect(read.json()).toMatchObject({ title: 'secret v2' });
    expect((await inject(alice, 'POST', `/api/v1/projects/${b.project}/archive`, undefined, { 'x-organization': orgB })).statusCode).toBe(403);
    // Nor through sync: archiving is an admin's call however it arrives.
    const inB = new SyncClient(t.app, { ...alice.headers, 'x-organization': orgB }, aliceDevice.deviceId);
    const archive = await inB.push([{ mutation_id: 50, entity: 'project', op: 'upsert', id: b.project, vector_clock: { [bobDevice.deviceId]: 1, [aliceDevice.deviceId]: 50 }, data: { archived: true } }]);
    expect(archive.body.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/admin/) });
    expect((await inject(alice, 'PUT', '/api/v1/organizations/members', { username: alice.user.username, role: 'admin' }, { 'x-organization': orgB })).statusCode).toBe(403);
    // Her default organization is still her own: without the header she sees none of B.
    expect((await inject(alice, 'GET', `/api/v1/tasks/${b.task}`)).statusCode).toBe(404);
    await inject(bob, 'DELETE', `/api/v1/organizations/members/${alice.user.id}`);
    expect((await inject(alice, 'GET', `/api/v1/tasks/${b.task}`, undefined, { 'x-organization': orgB })).statusCode).toBe(403);
  });
});
