import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskDefinition } from '../../src/tasks/framework.ts';
import type { TaskWorker } from '../../src/tasks/framework.ts';
import { runCliCaptured } from '../helpers/cli.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/** The admin HTTP API (/api/v1/admin/tasks) and `stormvault tasks …` over the database backend. */
describe.each(testDialects())('background task admin surfaces on %s', (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;
  let fails: TaskDefinition<{ n: number }, null>;
  let idle: TaskDefinition<null, string>;
  let worker: TaskWorker;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    t = await createTestApp({ dialect, env: { STORMVAULT_TASKS_BACKEND: 'database' } });
    admin = await createUserWithKey(t.app, { admin: true });
    user = await createUserWithKey(t.app);
    fails = t.app.tasks.define({ name: 'admin.fails', queue: 'admin-a', maxAttempts: 1 }, async () => {
      throw new Error('boom');
    });
    idle = t.app.tasks.define({ name: 'admin.idle', queue: 'admin-b' }, async () => 'ok');
    worker = t.app.tasks.createWorker({ queues: ['admin-a'] });
    cliEnv = { STORMVAULT_DATA_DIR: t.config.dataDir, STORMVAULT_DATABASE_URL: t.config.database.url, STORMVAULT_TASKS_BACKEND: 'database' };
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const get = (url: string, who: TestUser | null = admin) => t.app.http.inject({ method: 'GET', url, headers: who?.headers });
  const post = (url: string, who: TestUser | null = admin) => t.app.http.inject({ method: 'POST', url, headers: who?.headers });

  it('is for administrators only', async () => {
    const failed = await fails.enqueue({ n: 1 });
    for (const res of [
      await get('/api/v1/admin/tasks', user),
      await get(`/api/v1/admin/tasks/${failed.id}`, user),
      await post(`/api/v1/admin/tasks/${failed.id}/retry`, user),
      await post(`/api/v1/admin/tasks/${failed.id}/cancel`, user),
    ]) {
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
    }
    expect((await get('/api/v1/admin/tasks', null)).statusCode).toBe(401);
    // The refused cancel changed nothing.
    expect((await failed.refresh()).status).toBe('READY');
    await t.app.tasks.cancel(failed.id);
  });

  it('lists tasks filtered by status, queue, name and dead letter; shows one without stacks', async () => {
    const failed = await fails.enqueue({ n: 2 });
    await worker.drain();
    const ready = await idle.enqueue(null);

    const all = await get('/api/v1/admin/tasks');
    expect(all.statusCode).toBe(200);
    expect(all.json().backend).toBe('database');
    expect(all.json().tasks.map((x: { id: string }) => x.id)).toEqual(expect.arrayContaining([failed.id, ready.id]));

    const byStatus = (await get('/api/v1/admin/tasks?status=FAILED&dead=true')).json().tasks;
    expect(byStatus.map((x: { id: string }) => x.id)).toContain(failed.id);
    expect(byStatus.every((x: { status: string; dead_lettered: boolean }) => x.status === 'FAILED' && x.dead_lettered)).toBe(true);
    expect((await get('/api/v1/admin/tasks?queue=admin-b')).json().tasks.map((x: { id: string }) => x.id)).toEqual([ready.id]);
    expect((await get('/api/v1/admin/tasks?name=admin.idle&status=READY')).json().tasks).toHaveLength(1);

    const one = await get(`/api/v1/admin/tasks/${failed.id}`);
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: failed.id, task_name: 'admin.fails', queue: 'admin-a', status: 'FAILED', attempts: 1, dead_lettered: true, args: { n: 2 } });
    expect(one.json().errors).toEqual([{ attempt: 1, error_class: 'Error', message: 'boom', at: expect.any(String) }]);
    expect(JSON.stringify(one.json())).not.toContain('admin-tasks.test.ts');

    expect((await get('/api/v1/admin/tasks/no-such-task')).statusCode).toBe(404);
    expect((await get(`/api/v1/admin/tasks/${encodeURIComponent("x' OR '1'='1")}`)).statusCode).toBe(404);
    for (const bad of ['status=DONE', 'limit=0', 'limit=abc', 'queue=Bad!', 'unknown=1']) {
      const res = await get(`/api/v1/admin/tasks?${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
  });

  it('retries a FAILED task and cancels a READY one; refuses the wrong state with 409', async () => {
    const failed = await fails.enqueue({ n: 3 });
    await worker.drain();
    const retried = await post(`/api/v1/admin/tasks/${failed.id}/retry`);
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ status: 'READY', attempts: 0, dead_lettered: false });
    expect((await post(`/api/v1/admin/tasks/${failed.id}/retry`)).statusCode).toBe(409);

    const cancelled = await post(`/api/v1/admin/tasks/${failed.id}/cancel`);
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'FAILED', cancelled: true, dead_lettered: false });
    const again = await post(`/api/v1/admin/tasks/${failed.id}/cancel`);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('conflict');
    expect((await post('/api/v1/admin/tasks/no-such-task/cancel')).statusCode).toBe(404);
  });

  it('appears in the OpenAPI document under /api/v1/admin/tasks', async () => {
    const paths = Object.keys((await get('/api/docs/json')).json().paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/admin/tasks', '/api/v1/admin/tasks/{id}', '/api/v1/admin/tasks/{id}/retry', '/api/v1/admin/tasks/{id}/cancel']));
  });

  it('lists, shows, retries and cancels from the command line', async () => {
    const failed = await fails.enqueue({ n: 4 });
    await worker.drain();

    const list = await runCliCaptured(['tasks', 'list', '--status', 'FAILED', '--dead', '--queue', 'admin-a'], cliEnv);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+STATUS\s+TASK/);
    expect(list.stdout).toContain(failed.id);
    expect(list.stdout).toContain('FAILED (dead)');

    const show = await runCliCaptured(['tasks', 'show', failed.id], cliEnv);
    expect(show.code).toBe(0);
    const shown = JSON.parse(show.stdout);
    expect(shown).toMatchObject({ id: failed.id, status: 'FAILED', args: { n: 4 } });
    // The server operator sees the stack; HTTP clients do not.
    expect(shown.errors[0].stack).toContain('boom');

    const retry = await runCliCaptured(['tasks', 'retry', failed.id], cliEnv);
    expect(retry.code).toBe(0);
    expect((await failed.refresh()).status).toBe('READY');
    const cancel = await runCliCaptured(['tasks', 'cancel', failed.id], cliEnv);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`cancelled ${failed.id}`);
    expect((await failed.refresh()).cancelled).toBe(true);

    const refused = await runCliCaptured(['tasks', 'cancel', failed.id], cliEnv);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already finished/);
    expect((await runCliCaptured(['tasks', 'show', 'no-such-task'], cliEnv)).code).toBe(2);
    expect((await runCliCaptured(['tasks', 'list', '--status', 'DONE'], cliEnv)).code).toBe(2);
    const badQueue = await runCliCaptured(['tasks', 'list', '--queue', 'Bad Queue'], cliEnv);
    expect(badQueue.code).toBe(2);
    expect(badQueue.stderr).toContain('queue "Bad Queue"');
    expect((await runCliCaptured(['worker', '--queue', 'Bad Queue'], cliEnv)).code).toBe(2);
    expect((await runCliCaptured(['worker', '--concurrency', '0'], cliEnv)).code).toBe(2);
  });
});
