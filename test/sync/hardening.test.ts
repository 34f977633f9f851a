import { createHash } from 'node:crypto';
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

  it("answers a replay in one organization without the record of that id in another", async () => {
    const bob = await createUserWithKey(t.app);
    const bobs = await SyncClient.register(t.app, bob.headers, 'bob laptop');
    const id = newId();
    await bobs.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [bobs.deviceId]: 1 }, data: { title: 'bob private' } }]);
    const device = await SyncClient.register(t.app, alice.headers, 'replayer');
    await device.push([{ mutation_id: 5, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [device.deviceId]: 5 }, data: { title: 'mine' } }]);
    // A replayed id (<= 5) naming bob's record: changes nothing and reads nothing of bob's organization.
    const replay = await device.push([{ mutation_id: 4, entity: 'task', op: 'upsert', id, vector_clock: { [device.deviceId]: 4 }, data: { title: 'x' } }]);
    expect(replay.status).toBe(200);
    expect(replay.body.results[0]).toMatchObject({ replayed: true });
    expect(replay.body.results[0].current).toBeUndefined();
    expect(JSON.stringify(replay.body)).not.toMatch(/bob private/);
  });

  it('answers 400 for out-of-range limits and offsets instead of a silent default, on every list route', async () => {
    const max = t.app.config.sync.maxPullLimit;
    const bad: string[] = [
      `/api/v1/sync/pull?device_id=${laptop.deviceId}&limit=0`,
      `/api/v1/sync/pull?device_id=${laptop.deviceId}&limit=${max + 1}`,
      `/api/v1/sync/pull?device_id=${laptop.deviceId}&limit=-1`,
      '/api/v1/sync/conflicts?limit=0',
      '/api/v1/sync/conflicts?limit=201',
      '/api/v1/sync/conflicts?offset=-1',
      '/api/v1/sync/metrics?limit=0',
      '/api/v1/sync/metrics?limit=367',
    ];
    for (const base of ['/api/v1/tasks', '/api/v1/comments', '/api/v1/projects']) bad.push(`${base}?limit=0`, `${base}?limit=201`, `${base}?limit=1.5`, `${base}?offset=x`);
    for (const url of bad) {
      const res = await inject(alice, 'GET', url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe('invalid_request');
    }
    for (const url of [`/api/v1/sync/pull?device_id=${laptop.deviceId}&limit=${max}`, '/api/v1/sync/conflicts?limit=200', '/api/v1/sync/metrics?limit=366', '/api/v1/tasks?limit=200&offset=0']) {
      expect((await inject(alice, 'GET', url)).statusCode, url).toBe(200);
    }
    expect((await inject(alice, 'GET', '/api/v1/sync/conflicts?limit=1')).json().limit).toBe(1);
  });

  it("hands the server-set edited_at of a comment edit to the device that made the edit", async () => {
    const D = laptop.deviceId;
    const task = newId();
    const comment = newId();
    const created = await laptop.push([
      { mutation_id: 100, entity: 'task', op: 'upsert', id: task, vector_clock: { [D]: 100 }, data: { title: 'commented' } },
      { mutation_id: 101, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [D]: 101 }, data: { task_id: task, body: 'first' } },
    ]);
    expect(created.body.results[1]).toMatchObject({ status: 'applied', edited_at: null });
    clock.advance(60_000);
    const edited = await laptop.push([{ mutation_id: 102, entity: 'comment', op: 'upsert', id: comment, vector_clock: { [D]: 102 }, data: { body: 'second' } }]);
    const server = (await inject(alice, 'GET', `/api/v1/comments/${comment}`)).json();
    expect(server.edited_at).toBe(clock.now().toISOString());
    expect(edited.body.results[0]).toMatchObject({ status: 'applied', edited_at: server.edited_at, updated_at: server.updated_at, version: server.version });
    // The device's own version is still not pulled back; the push answer is where it learns the value.
    expect((await laptop.pullAll(created.body.cursor)).changes.find((c) => c.id === comment)).toBeUndefined();
  });

  it('recovers from 410 as documented without losing the device its own records (end to end)', async () => {
    const carol = await createUserWithKey(t.app);
    const d1 = await SyncClient.register(t.app, carol.headers, 'D1');
    const d2 = await SyncClient.register(t.app, carol.headers, 'D2');
    const { cursor: empty } = await d1.pullAll(); // a cursor of the organization before any write (seq 0)
    const D = d1.deviceId;
    const E = d2.deviceId;
    const doomed = newId();
    const pushed = await d1.push([
      { mutation_id: 1, entity: 'task', op: 'upsert', id: 'keep-410', vector_clock: { [D]: 1 }, data: { title: 'keep me' } },
      { mutation_id: 2, entity: 'task', op: 'upsert', id: doomed, vector_clock: { [D]: 2 }, data: { title: 'doomed' } },
    ]);
    expect(pushed.body.results.map((r: any) => r.status)).toEqual(['applied', 'applied']);
    const old = pushed.body.cursor;
    // D2 deletes the other task; its tombstone ages past the horizon and is purged.
    await d2.pullAll();
    expect((await d2.push([{ mutation_id: 1, entity: 'task', op: 'delete', id: doomed, vector_clock: { [D]: 2, [E]: 1 } }])).body.results[0].status).toBe('applied');
    clock.advance((t.app.config.sync.tombstoneDays + 1) * 24 * 3600 * 1000);
    expect((await t.app.sync.cleanup({ dryRun: false })).tombstones.task).toBeGreaterThanOrEqual(1);

    // D1's old cursor gets 410 on pull and on push; so does the cursor from before any write (pull and push agree).
    for (const cursor of [old, empty]) {
      expect((await d1.pull(cursor)).status).toBe(410);
      const push = await t.app.http.inject({ method: 'POST', url: '/api/v1/sync/push', headers: carol.headers, payload: { device_id: D, cursor, changes: [] } });
      expect(push.statusCode).toBe(410);
      expect(push.json().error.code).toBe('resync_required');
    }

    // A tombstone newer than the horizon (a REST delete after the purge) is part of the full pull too.
    const recent = (await inject(carol, 'POST', '/api/v1/tasks', { title: 'deleted recently' })).json().id;
    expect((await inject(carol, 'DELETE', `/api/v1/tasks/${recent}`)).statusCode).toBe(204);

    // Recovery: a full pull (no since, paged) returns every live record, D1's own keep-410 included.
    const pages: any[] = [];
    let since: string | undefined;
    for (;;) {
      const { status, body } = await d1.pull(since, 1);
      expect(status).toBe(200);
      pages.push(...body.changes);
      since = body.cursor;
      if (!body.has_more) break;
    }
    expect(pages.map((c) => c.id)).toContain('keep-410');
    expect(pages.find((c) => c.id === 'keep-410')).toMatchObject({ op: 'upsert', data: expect.objectContaining({ title: 'keep me' }) });
    expect(pages.find((c) => c.id === doomed)).toBeUndefined();
    expect(pages.find((c) => c.id === recent)).toMatchObject({ op: 'delete', data: null });
    // ... and the device pushes again with its new cursor, editing the record it kept.
    const again = await t.app.http.inject({
      method: 'POST',
      url: '/api/v1/sync/push',
      headers: carol.headers,
      payload: { device_id: D, cursor: since, changes: [{ mutation_id: 3, entity: 'task', op: 'upsert', id: 'keep-410', vector_clock: { [D]: 3 }, data: { status: 'done' } }] },
    });
    expect(again.statusCode).toBe(200);
    expect(again.json().results[0].status).toBe('applied');
    // After the full pull, its cursor leaves out D1's own versions again.
    expect((await d1.pullAll(since)).changes.find((c) => c.id === 'keep-410')).toBeUndefined();
  });

  it('enforces the organization storage quota on pushes and REST writes, and frees bytes on delete', async () => {
    const dave = await createUserWithKey(t.app);
    const org = (await inject(dave, 'POST', '/api/v1/organizations', { name: 'small', storage_quota_bytes: 100 })).json();
    expect(org).toMatchObject({ storage_quota_bytes: 100, storage_used_bytes: 0 });
    const h = { 'x-organization': org.id };
    const device = new SyncClient(t.app, { ...dave.headers, ...h }, (await SyncClient.register(t.app, dave.headers, 'quota laptop')).deviceId);
    const D = device.deviceId;
    const first = newId();
    // title 50 bytes + description 0 + tags "[]" 2 + custom_fields "{}" 2 = 54 bytes.
    const ok = await device.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id: first, vector_clock: { [D]: 1 }, data: { title: 'a'.repeat(50) } }]);
    expect(ok.body.results[0].status).toBe('applied');
    const usage = async () => (await inject(dave, 'GET', '/api/v1/organizations')).json().organizations.find((o: any) => o.id === org.id).storage_used_bytes;
    expect(await usage()).toBe(54);

    const second = newId();
    const over = await device.push([
      { mutation_id: 2, entity: 'project', op: 'upsert', id: newId(), vector_clock: { [D]: 2 }, data: { name: 'p' } },
      { mutation_id: 3, entity: 'task', op: 'upsert', id: second, vector_clock: { [D]: 3 }, data: { title: 'b'.repeat(50) } },
    ]);
    expect(over.status).toBe(413);
    expect(over.body.error).toMatchObject({ code: 'quota_exceeded', quota_bytes: 100, used_bytes: 54, needed_bytes: 55 });
    // Refused whole: nothing of the batch was written, and the mutation ids were not used up.
    expect((await inject(dave, 'GET', `/api/v1/tasks/${second}`, undefined, h)).statusCode).toBe(404);
    expect((await inject(dave, 'GET', '/api/v1/projects', undefined, h)).json().items).toEqual([]);
    expect((await inject(dave, 'POST', '/api/v1/tasks', { title: 'c'.repeat(50) }, h)).statusCode).toBe(413);
    expect((await inject(dave, 'PATCH', `/api/v1/tasks/${first}`, { description: 'd'.repeat(47) }, h)).statusCode).toBe(413);
    expect(await usage()).toBe(54);

    // Shrinking is always allowed; a delete frees the record's bytes, and then the batch fits.
    expect((await device.push([{ mutation_id: 2, entity: 'task', op: 'delete', id: first, vector_clock: { [D]: 2 } }])).body.results[0].status).toBe('applied');
    expect(await usage()).toBe(0);
    const retry = await device.push([{ mutation_id: 3, entity: 'task', op: 'upsert', id: second, vector_clock: { [D]: 3 }, data: { title: 'b'.repeat(50), description: 'é'.repeat(20) } }]);
    expect(retry.body.results[0].status).toBe('applied');
    expect(await usage()).toBe(50 + 40 + 4);
    // Restoring the deleted task brings its bytes back, over the quota: refused.
    expect((await device.push([{ mutation_id: 4, entity: 'task', op: 'upsert', id: first, vector_clock: { [D]: 4 }, data: { title: 'back' } }])).status).toBe(413);
  });

  it('purges the comments and resolved conflicts of a purged task with it, keeping open conflicts', async () => {
    const erin = await createUserWithKey(t.app);
    const a = await SyncClient.register(t.app, erin.headers, 'erin a');
    const b = await SyncClient.register(t.app, erin.headers, 'erin b');
    const A = a.deviceId;
    const B = b.deviceId;
    const task = newId();
    const live = newId();
    const keptTask = newId();
    await a.push([
      { mutation_id: 1, entity: 'task', op: 'upsert', id: task, vector_clock: { [A]: 1 }, data: { title: 'doomed' } },
      { mutation_id: 2, entity: 'comment', op: 'upsert', id: live, vector_clock: { [A]: 2 }, data: { task_id: task, body: 'on a doomed task' } },
      { mutation_id: 3, entity: 'task', op: 'upsert', id: keptTask, vector_clock: { [A]: 3 }, data: { title: 'kept' } },
      { mutation_id: 4, entity: 'task', op: 'upsert', id: task, vector_clock: { [A]: 4 }, data: { title: 'a1' } },
      { mutation_id: 5, entity: 'task', op: 'upsert', id: keptTask, vector_clock: { [A]: 5 }, data: { title: 'a2' } },
    ]);
    const conflicts = await b.push([
      { mutation_id: 1, entity: 'task', op: 'upsert', id: task, vector_clock: { [A]: 1, [B]: 1 }, data: { title: 'b1' } },
      { mutation_id: 2, entity: 'task', op: 'upsert', id: task, vector_clock: { [A]: 1, [B]: 2 }, data: { title: 'b2' } },
      { mutation_id: 3, entity: 'task', op: 'upsert', id: keptTask, vector_clock: { [A]: 3, [B]: 3 }, data: { title: 'b3' } },
    ]);
    const [resolvedId, openId, keptConflict] = conflicts.body.results.map((r: any) => r.conflict_id);
    expect([resolvedId, openId, keptConflict].every(Boolean)).toBe(true);
    for (const id of [resolvedId, keptConflict]) expect((await inject(erin, 'POST', `/api/v1/sync/conflicts/${id}/resolve`, { strategy: 'remote' })).statusCode).toBe(200);
    // A comment pushed later by a device that had not seen the delete stays live under the tombstone.
    expect((await inject(erin, 'DELETE', `/api/v1/tasks/${task}`)).statusCode).toBe(204);
    const late = newId();
    expect((await b.push([{ mutation_id: 4, entity: 'comment', op: 'upsert', id: late, vector_clock: { [B]: 4 }, data: { task_id: task, body: 'late' } }])).body.results[0].status).toBe('applied');

    clock.advance((t.app.config.sync.tombstoneDays + 1) * 24 * 3600 * 1000);
    const dry = await t.app.sync.cleanup({ dryRun: true });
    expect(dry.commentsOfPurgedTasks).toBe(2);
    expect(dry.conflicts).toBe(1);
    await t.app.sync.cleanup({ dryRun: false });
    const db = t.app.db as any;
    expect(await db.selectFrom('rec_comments').select('id').where('id', 'in', [live, late]).execute()).toEqual([]);
    const left = (await db.selectFrom('sync_conflicts').select('id').where('id', 'in', [resolvedId, openId, keptConflict]).execute()).map((r: any) => r.id).sort();
    expect(left).toEqual([openId, keptConflict].sort());
    expect((await inject(erin, 'GET', `/api/v1/tasks/${keptTask}`)).statusCode).toBe(200);
    const again = await t.app.sync.cleanup({ dryRun: true });
    expect([again.commentsOfPurgedTasks, again.conflicts]).toEqual([0, 0]);
  });

  it('answers 400 invalid_request, never a 500, for deeply nested custom_fields over REST and push', async () => {
    for (const depth of [10_000, 100_000]) {
      const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      const rest = await t.app.http.inject({ method: 'POST', url: '/api/v1/tasks', headers: { ...alice.headers, 'content-type': 'application/json' }, payload: `{"title":"deep","custom_fields":${deep}}` });
      expect(rest.statusCode, `REST ${depth}`).toBe(400);
      expect(rest.json().error.code).toBe('invalid_request');
      const change = `{"mutation_id":900,"entity":"task","op":"upsert","id":"${newId()}","vector_clock":{},"data":{"title":"deep","custom_fields":${deep}}}`;
      const push = await t.app.http.inject({ method: 'POST', url: '/api/v1/sync/push', headers: { ...alice.headers, 'content-type': 'application/json' }, payload: `{"device_id":"${laptop.deviceId}","changes":[${change}]}` });
      expect(push.statusCode, `push ${depth}`).toBe(400);
      expect(push.json().error.code).toBe('invalid_request');
    }
    // Reasonable nesting still works.
    const ok = await inject(alice, 'POST', '/api/v1/tasks', { title: 'nested', custom_fields: { a: { b: { c: [1, { d: true }] } } } });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().custom_fields).toEqual({ a: { b: { c: [1, { d: true }] } } });
  });

  it("gives a project's lifecycle (archive, delete, restore) to admins alone, over REST and push alike", async () => {
    const admin = await createUserWithKey(t.app);
    const member = await createUserWithKey(t.app);
    const org = (await inject(admin, 'POST', '/api/v1/organizations', { name: 'roles' })).json().id;
    const h = { 'x-organization': org };
    expect((await inject(admin, 'PUT', '/api/v1/organizations/members', { username: member.user.username, role: 'member' }, h)).statusCode).toBe(200);
    // Members create, rename and use projects...
    const project = (await inject(member, 'POST', '/api/v1/projects', { name: 'made by a member' }, h)).json();
    expect((await inject(member, 'PATCH', `/api/v1/projects/${project.id}`, { name: 'renamed' }, h)).statusCode).toBe(200);
    // ... but neither archive nor delete them, however the change arrives.
    expect((await inject(member, 'POST', `/api/v1/projects/${project.id}/archive`, undefined, h)).statusCode).toBe(403);
    const del = await inject(member, 'DELETE', `/api/v1/projects/${project.id}`, undefined, h);
    expect(del.statusCode).toBe(403);
    expect(del.json().error.message).toMatch(/admin/);
    const phone = new SyncClient(t.app, { ...member.headers, ...h }, (await SyncClient.register(t.app, member.headers, 'member phone')).deviceId);
    const { changes } = await phone.pullAll();
    const clock0 = changes.find((c) => c.id === project.id).vector_clock;
    const pushed = await phone.push([{ mutation_id: 1, entity: 'project', op: 'delete', id: project.id, vector_clock: { ...clock0, [phone.deviceId]: 1 } }]);
    expect(pushed.body.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/admin/), current: { op: 'upsert' } });
    expect((await inject(member, 'GET', `/api/v1/projects/${project.id}`, undefined, h)).json()).toMatchObject({ name: 'renamed', deleted_at: null });
    // The admin may; a member's restore of the deleted project is refused too.
    expect((await inject(admin, 'DELETE', `/api/v1/projects/${project.id}`, undefined, h)).statusCode).toBe(204);
    const { changes: after } = await phone.pullAll();
    const tomb = after.find((c) => c.id === project.id);
    const restore = await phone.push([{ mutation_id: 2, entity: 'project', op: 'upsert', id: project.id, vector_clock: { ...tomb.vector_clock, [phone.deviceId]: 2 }, data: { name: 'back' } }]);
    expect(restore.body.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/admin/) });
  });

  it('computes checksums exactly as docs/sync-protocol.md describes (independent implementation)', async () => {
    // Written from the doc alone: sorted keys at every depth, no whitespace, JSON.stringify for scalars.
    const canon = (v: unknown): string =>
      Array.isArray(v) ? `[${v.map(canon).join(',')}]` : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon((v as any)[k])}`).join(',')}}` : JSON.stringify(v);
    const fields = ['title', 'description', 'status', 'priority', 'due_date', 'assignee_id', 'project_id', 'tags', 'custom_fields'];
    const id = newId();
    const data = { title: 'Buy milk', tags: ['home'], custom_fields: { zeta: 1, alpha: { b: true, a: 'é' } } };
    const pushed = await laptop.push([{ mutation_id: 1000, entity: 'task', op: 'upsert', id, vector_clock: { [laptop.deviceId]: 1000 }, data }]);
    const server = (await inject(alice, 'GET', `/api/v1/tasks/${id}`)).json();
    const d = Object.fromEntries(fields.map((f) => [f, server[f]]));
    const mine = createHash('sha256').update(canon({ d, e: 'task', x: false }), 'utf8').digest('hex');
    expect(pushed.body.results[0].checksum).toBe(mine);
    expect(mine).toBe('28e7bff75e30aaf8f8288276a357d20a614f9d67117c7f08546ba53ed3e7f0a7'); // the doc's example
  });

  it("does not move a field's clock on a write that keeps its value (as documented)", async () => {
    const phone = await SyncClient.register(t.app, alice.headers, 'same-value phone');
    const L = laptop.deviceId;
    const P = phone.deviceId;
    const id = newId();
    await laptop.push([{ mutation_id: 2000, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2000 }, data: { title: 'same' } }]);
    // The laptop writes the title it already has (and a new priority): a new version, but title's clock stays.
    const same = await laptop.push([{ mutation_id: 2001, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2001 }, data: { title: 'same', priority: 'high' } }]);
    expect(same.body.results[0]).toMatchObject({ status: 'applied', version: 2 });
    // The phone, which saw only the first version, renames: not an overlap with the same-value write.
    const rename = await phone.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2000, [P]: 1 }, data: { title: 'renamed' } }]);
    expect(rename.body.results[0]).toMatchObject({ status: 'merged', current: { data: expect.objectContaining({ title: 'renamed', priority: 'high' }) } });
  });
});
