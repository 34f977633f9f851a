import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

describe.each(testDialects())('records REST API on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  const call = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...alice.headers, ...headers }, payload: payload as object });

  beforeAll(async () => {
    t = await createTestApp({ dialect, clock });
    alice = await createUserWithKey(t.app, { password: 'correct horse battery' });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('creates, reads, patches with If-Match (412 on a stale version) and deletes tasks', async () => {
    const created = await call('POST', '/api/v1/tasks/', { title: 'Write docs', priority: 'high', tags: ['docs'], custom_fields: { estimate: 3 } });
    expect(created.statusCode).toBe(201);
    const task = created.json();
    expect(task).toMatchObject({ title: 'Write docs', status: 'todo', priority: 'high', version: 1, vector_clock: { server: 1 }, deleted_at: null });
    expect(task.checksum).toMatch(/^[0-9a-f]{64}$/);

    const patched = await call('PATCH', `/api/v1/tasks/${task.id}/`, { status: 'in_progress' }, { 'if-match': '"1"' });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ status: 'in_progress', version: 2 });
    expect(patched.headers.etag).toBe('"2"');
    const stale = await call('PATCH', `/api/v1/tasks/${task.id}`, { title: 'lost update' }, { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().error.code).toBe('precondition_failed');
    expect((await call('GET', `/api/v1/tasks/${task.id}`)).json().title).toBe('Write docs');

    const history = (await call('GET', `/api/v1/tasks/${task.id}/history/`)).json().items;
    expect(history.map((h: any) => h.op)).toEqual(['create', 'update']);
    expect(history[1]).toMatchObject({ user_id: alice.user.id, device_id: null, changes: { status: { old: 'todo', new: 'in_progress' } } });

    expect((await call('DELETE', `/api/v1/tasks/${task.id}`)).statusCode).toBe(204);
    expect((await call('GET', `/api/v1/tasks/${task.id}`)).statusCode).toBe(404);
    const withDeleted = (await call('GET', '/api/v1/tasks?include_deleted=true')).json().items;
    expect(withDeleted.find((x: any) => x.id === task.id).deleted_at).toBeTruthy();
  });

  it('enforces status transitions and validates input without writing', async () => {
    const task = (await call('POST', '/api/v1/tasks', { title: 'Ship', status: 'done' })).json();
    const bad = await call('PATCH', `/api/v1/tasks/${task.id}`, { status: 'in_progress' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/cannot change from done to in_progress/);
    expect((await call('PATCH', `/api/v1/tasks/${task.id}`, { status: 'todo' })).statusCode).toBe(200);
    for (const body of [{ title: '' }, { title: 'x', priority: 'extreme' }, { title: 'x', due_date: '2026-13-45' }, { title: 'x', tags: ['a"b'] }, { title: 'x', unknown: 1 }, { title: 'x', assignee_id: 'nobody' }]) {
      const res = await call('POST', '/api/v1/tasks', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await call('PATCH', `/api/v1/tasks/${task.id}`, { title: 'y' }, { 'if-match': 'garbage' })).statusCode).toBe(400);
    expect((await call('PATCH', `/api/v1/tasks/${task.id}`, { title: 'y' }, { 'if-match': '*' })).statusCode).toBe(200);
  });

  it('filters, orders and paginates the task list', async () => {
    const project = (await call('POST', '/api/v1/projects', { name: 'Filtering' })).json();
    const h = { 'x-organization': (await call('GET', '/api/v1/organizations')).json().organizations[0].id };
    const since = clock.now().toISOString();
    clock.advance(1000);
    const made = [];
    for (const [title, priority, tags, due] of [
      ['alpha', 'low', ['red'], '2026-04-03'],
      ['bravo', 'urgent', ['red', 'blue'], '2026-04-01'],
      ['charlie', 'medium', ['blue'], null],
      ['delta', 'high', [], '2026-04-02'],
    ] as const) {
      made.push((await call('POST', '/api/v1/tasks', { title, priority, tags, due_date: due, project_id: project.id, assignee_id: alice.user.id }, h)).json());
      clock.advance(1000);
    }
    const list = async (q: string) => (await call('GET', `/api/v1/tasks?project_id=${project.id}&${q}`)).json();
    expect((await list('tag=red&order=title')).items.map((x: any) => x.title)).toEqual(['alpha', 'bravo']);
    expect((await list('order=-priority')).items.map((x: any) => x.title)).toEqual(['bravo', 'delta', 'charlie', 'alpha']);
    expect((await list('order=due_date')).items.map((x: any) => x.title)).toEqual(['bravo', 'delta', 'alpha', 'charlie']);
    expect((await list(`assignee_id=${alice.user.id}&updated_since=${encodeURIComponent(since)}&order=created_at`)).items).toHaveLength(4);
    const page1 = await list('order=title&limit=3');
    expect(page1.items.map((x: any) => x.title)).toEqual(['alpha', 'bravo', 'charlie']);
    expect(page1.next_offset).toBe(3);
    const page2 = await list('order=title&limit=3&offset=3');
    expect(page2).toMatchObject({ next_offset: null, items: [expect.objectContaining({ title: 'delta' })] });
    expect((await call('GET', '/api/v1/tasks?status=weird')).statusCode).toBe(400);
    expect((await call('GET', '/api/v1/tasks?updated_since=yesterday')).statusCode).toBe(400);
    expect((await call('GET', '/api/v1/tasks?limit=0')).statusCode).toBe(400);
  });

  it('threads comments and marks edits', async () => {
    const task = (await call('POST', '/api/v1/tasks', { title: 'Discuss' })).json();
    const root = (await call('POST', '/api/v1/comments', { task_id: task.id, body: 'first' })).json();
    clock.advance(1000);
    const reply = await call('POST', '/api/v1/comments', { task_id: task.id, parent_id: root.id, body: 'reply' });
    expect(reply.statusCode).toBe(201);
    const other = (await call('POST', '/api/v1/tasks', { title: 'Other' })).json();
    expect((await call('POST', '/api/v1/comments', { task_id: other.id, parent_id: root.id, body: 'cross-thread' })).statusCode).toBe(400);
    expect((await call('POST', '/api/v1/comments', { task_id: 'no-such-task', body: 'orphan' })).statusCode).toBe(400);
    clock.advance(5000);
    const edited = (await call('PATCH', `/api/v1/comments/${root.id}`, { body: 'first (edited)' })).json();
    expect(edited.edited_at).toBe(clock.now().toISOString());
    expect((await call('PATCH', `/api/v1/comments/${root.id}`, { task_id: other.id })).statusCode).toBe(400);
    const thread = (await call('GET', `/api/v1/tasks/${task.id}/comments`)).json().items;
    expect(thread.map((c: any) => [c.body, c.parent_id])).toEqual([
      ['first (edited)', null],
      ['reply', root.id],
    ]);
    expect((await call('DELETE', `/api/v1/comments/${reply.json().id}`)).statusCode).toBe(204);
    expect((await call('GET', `/api/v1/comments?task_id=${task.id}`)).json().items).toHaveLength(1);
  });

  it('archives projects (admins) and hides them from the default list', async () => {
    const project = (await call('POST', '/api/v1/projects', { name: 'Old stuff' })).json();
    const archived = await call('POST', `/api/v1/projects/${project.id}/archive/`);
    expect(archived.json()).toMatchObject({ archived: true, version: 2 });
    expect((await call('GET', '/api/v1/projects')).json().items.find((p: any) => p.id === project.id)).toBeUndefined();
    expect((await call('GET', '/api/v1/projects?include_archived=true')).json().items.find((p: any) => p.id === project.id)).toBeTruthy();
  });

  it('registers a device at login and lists organizations with roles on /users/me', async () => {
    const login = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: alice.user.username, password: 'correct horse battery', device_name: 'phone' } });
    expect(login.statusCode).toBe(200);
    const { device_id, access_token } = login.json();
    expect(device_id).toMatch(/^dev_[0-9a-f]{16}$/);
    const devices = (await call('GET', '/api/v1/devices')).json().devices;
    expect(devices).toEqual([expect.objectContaining({ id: device_id, name: 'phone', retired_at: null })]);
    const plain = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: alice.user.username, password: 'correct horse battery' } });
    expect(plain.json().device_id).toBeUndefined();
    const wrong = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: alice.user.username, password: 'nope-nope-nope', device_name: 'evil' } });
    expect(wrong.statusCode).toBe(401);
    expect((await call('GET', '/api/v1/devices')).json().devices).toHaveLength(1);

    const me = await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: { authorization: `Bearer ${access_token}` } });
    expect(me.json().organizations).toEqual([expect.objectContaining({ name: alice.user.username, role: 'admin' })]);
  });
});
