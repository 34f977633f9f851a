import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Job, Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { redisBackend } from '../../src/tasks/backends/redis/redis.backend.ts';
import { attemptsOf, bullPriority, jobIdFor, recordFromJob, schedulerIdFor, type JobView } from '../../src/tasks/backends/redis/redis-records.ts';
import { TaskFramework } from '../../src/tasks/framework.ts';
import { TASK_ID_RE } from '../../src/tasks/types.ts';
import type { TaskResult } from '../../src/tasks/task-result.ts';
import { createTestApp, createUserWithKey } from '../helpers/test-app.ts';
import { silentLogger } from './backends.ts';
import { redisFixtures, type RedisTaskStore } from './redis.fixture.ts';
import { spawnChildWorker, workerCrashCases, type ChildWorker } from './worker-crash.cases.ts';

/**
 * What the shared conformance suite (conformance.test.ts) checks with an injected clock, checked here in
 * real time for the redis backend (BullMQ keeps its own time: capabilities.usesInjectedClock is false),
 * plus the BullMQ-specific parts: job schedulers with two workers, stalled-job recovery after a SIGKILL,
 * hand-back on SIGTERM. Delays are tens of milliseconds; the slowest case waits out a 1 s lock.
 */

describe('redis backend mapping (pure)', () => {
  it('inverts priorities: higher Stormvault priority is a lower BullMQ number, never 0 ("no priority")', () => {
    expect(bullPriority(100)).toBeLessThan(bullPriority(0));
    expect(bullPriority(0)).toBeLessThan(bullPriority(-100));
    expect(bullPriority(100)).toBeGreaterThan(0);
  });

  it('derives a BullMQ-safe job id from an idempotency key (never numeric, no ":")', () => {
    const id = jobIdFor({ id: 'ignored', idempotencyKey: 'schedule:daily:2026-01-01T00:00:00.000Z' });
    expect(id).toMatch(/^k-[0-9a-f]{40}$/);
    expect(jobIdFor({ id: 'other', idempotencyKey: 'schedule:daily:2026-01-01T00:00:00.000Z' })).toBe(id);
    expect(jobIdFor({ id: 'abc', idempotencyKey: null })).toBe('abc');
  });

  it('bounds job scheduler ids: short schedule names stay as they are, long ones keep a head and a hash of the whole name', () => {
    expect(schedulerIdFor('storage.index_audit')).toBe('storage.index_audit');
    const a = schedulerIdFor('a'.repeat(150) + '.one');
    const b = schedulerIdFor('a'.repeat(150) + '.two');
    expect(a).not.toBe(b);
    for (const id of [a, b]) expect(`repeat:${id}:${Number.MAX_SAFE_INTEGER}`).toMatch(TASK_ID_RE);
    expect(schedulerIdFor('a'.repeat(150) + '.one')).toBe(a);
  });

  it('counts attempts lost with a dead worker and reports them as WorkerLost', () => {
    const job: JobView = {
      id: 'j1',
      name: 't',
      queueName: 'q',
      data: { t: 't', a: null, p: 0, m: 3, b: { baseMs: 1, capMs: 1, jitter: false }, to: null, k: null, e: 1000, r: 1000 },
      timestamp: 1000,
      delay: 0,
      processedOn: 5000,
      finishedOn: 5100,
      attemptsMade: 1,
      stalledCounter: 1,
      stacktrace: [],
      returnvalue: 'ok',
      failedReason: '',
      progress: 0,
      processedBy: 'w2',
    };
    expect(attemptsOf(job, false)).toBe(2);
    const record = recordFromJob(job, { state: 'completed', cancelRequested: false, dueAt: null })!;
    expect(record.status).toBe('SUCCESSFUL');
    expect(record.attempts).toBe(2);
    expect(record.errors.map((e) => [e.attempt, e.errorClass])).toEqual([[1, 'WorkerLost']]);
    expect(record.returnValue).toBe('ok');
  });
});

const CHILD = path.join(import.meta.dirname, 'fixtures', 'redis-child-worker.ts');

describe.each(redisFixtures())('redis backend in real time: $name', (fixture) => {
  let store: RedisTaskStore;
  const children: ChildProcess[] = [];
  const extra: TaskFramework[] = [];
  let queueSeq = 0;
  const newQueue = () => `rq${++queueSeq}`;

  beforeAll(async () => {
    store = (await fixture.open()) as RedisTaskStore;
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const fw of extra.splice(0)) await fw.close();
    await store.closeNodes?.();
  });
  afterAll(async () => {
    await store?.close();
  });

  it("refuses task ids longer than the framework's 100 characters, like every other backend", async () => {
    const node = await store.node();
    const queue = newQueue();
    const task = node.define({ name: 'idlen', queue }, async () => 'ok');
    const real = await task.enqueue(null);
    // A job planted under a 101-character id, with the data of a real one: the backend must not serve it.
    const bull = new Queue(queue, { connection: { url: store.redisUrl } as never, prefix: store.redisPrefix });
    try {
      const source = await Job.fromId(bull, real.id);
      const long = `x${'y'.repeat(100)}`;
      await bull.add(source!.name, source!.data, { jobId: long });
      expect(await node.backend.get(long)).toBeNull();
      expect(await node.backend.get(real.id)).not.toBeNull();
    } finally {
      await bull.close();
    }
  });

  it('waits out the exponential backoff between attempts (BullMQ custom backoff strategy)', async () => {
    const node = await store.node();
    const queue = newQueue();
    const task = node.define({ name: 'flaky', queue, maxAttempts: 3, backoff: { baseMs: 40, capMs: 1000, jitter: false } }, async (_a, ctx) => {
      if (ctx.attempt < 3) throw new TypeError(`attempt ${ctx.attempt} fails`);
      return 'third time lucky';
    });
    await node.startWorker({ queues: [queue] });
    const result = await (await task.enqueue(null)).wait({ timeoutMs: 10_000 });

    expect(result.status).toBe('SUCCESSFUL');
    expect(result.returnValue).toBe('third time lucky');
    expect(result.attempts).toBe(3);
    expect(result.errors.map((e) => [e.attempt, e.errorClass, e.message])).toEqual([
      [1, 'TypeError', 'attempt 1 fails'],
      [2, 'TypeError', 'attempt 2 fails'],
    ]);
    expect(result.errors[0]!.stack).toContain('attempt 1 fails');
    // 40 ms after the first failure, then 80 ms after the second (BullMQ timestamps are whole ms).
    expect(result.errors[1]!.at.getTime() - result.errors[0]!.at.getTime()).toBeGreaterThanOrEqual(40);
    expect(result.lastAttemptedAt!.getTime() - result.errors[1]!.at.getTime()).toBeGreaterThanOrEqual(79);
  });

  it('does not run a delayed task before its time, and reports when it is due', async () => {
    const node = await store.node();
    const queue = newQueue();
    const task = node.define({ name: 'later', queue }, async () => 'ran');
    await node.startWorker({ queues: [queue] });
    const due = new Date(Date.now() + 300);
    const result = await task.enqueue(null, { runAfter: due });
    expect((await result.refresh()).status).toBe('READY');
    expect(result.runAfter.getTime()).toBe(due.getTime());
    await result.wait({ timeoutMs: 10_000 });
    expect(result.returnValue).toBe('ran');
    expect(result.startedAt!.getTime()).toBeGreaterThanOrEqual(due.getTime());
  });

  it('keeps priority order when a queue of plain (default-priority) jobs first gets a prioritized one', async () => {
    const node = await store.node();
    const other = await store.node(); // a second process, enqueueing into the same queue
    const queue = newQueue();
    const order: string[] = [];
    const task = node.define({ name: 'ordered', queue }, async (label: string) => {
      order.push(label);
    });
    const otherTask = other.define({ name: 'ordered', queue }, async () => null);
    await task.enqueue('normal-1');
    await otherTask.enqueue('normal-2');
    await task.enqueue('later', { runAfter: new Date(Date.now() + 150) });
    await otherTask.enqueue('urgent', { priority: 50 });
    await task.enqueue('low', { priority: -10 });
    await task.enqueue('normal-3');
    await new Promise((resolve) => setTimeout(resolve, 200)); // 'later' is due
    await node.startWorker({ queues: [queue], concurrency: 1 });
    await Promise.all((await node.list({ queue })).map((r) => r.wait({ timeoutMs: 10_000 })));
    // Equal priority: earliest due first ('later' became due after 'normal-3' was enqueued).
    expect(order).toEqual(['urgent', 'normal-1', 'normal-2', 'normal-3', 'later', 'low']);
  });

  it('prunes results past their retention and frees their idempotency key', async () => {
    // BullMQ's removeOnComplete/removeOnFail ages are whole seconds: a 1 s retention is the shortest.
    const node = framework(store, { retentionMs: 1000, deadRetentionMs: 60_000 });
    const queue = newQueue();
    const ok = node.define({ name: 'keep.briefly', queue }, async () => 'ok');
    const bad = node.define({ name: 'dies', queue, maxAttempts: 1 }, async () => {
      throw new Error('dead');
    });
    await node.startWorker({ queues: [queue] });
    const key = `prune-${queue}`;
    const done = await (await ok.enqueue(null, { idempotencyKey: key })).wait({ timeoutMs: 10_000 });
    const dead = await (await bad.enqueue(null)).wait({ timeoutMs: 10_000 });
    expect([done.status, dead.status]).toEqual(['SUCCESSFUL', 'FAILED']);
    await node.prune();
    expect((await node.getResult(done.id)).status).toBe('SUCCESSFUL');
    expect((await ok.enqueue(null, { idempotencyKey: key })).id).toBe(done.id);

    await new Promise((resolve) => setTimeout(resolve, 1100 - (Date.now() - done.finishedAt!.getTime())));
    expect(await node.prune()).toBeGreaterThanOrEqual(1);
    await expect(node.getResult(done.id)).rejects.toMatchObject({ code: 'not_found' });
    expect((await node.getResult(dead.id)).deadLettered).toBe(true);
    const again = await ok.enqueue(null, { idempotencyKey: key });
    expect(again.id).toBe(done.id); // the id derives from the key; it is a new run all the same
    expect(again.status).toBe('READY');
  });

  it('lists by status, queue, task name and dead letter; a cancelled READY task is listed as FAILED', async () => {
    const node = await store.node();
    const queue = newQueue();
    const a = node.define({ name: 'list.a', queue, maxAttempts: 1 }, async () => {
      throw new Error('a fails');
    });
    const b = node.define({ name: 'list.b', queue }, async () => 'b');
    const waiting = await b.enqueue(null, { runAfter: new Date(Date.now() + 60_000) });
    const cancelled = await node.cancel((await b.enqueue(null, { runAfter: new Date(Date.now() + 60_000) })).id);
    await node.startWorker({ queues: [queue] });
    const failed = await (await a.enqueue(null)).wait({ timeoutMs: 10_000 });
    const ids = (rs: TaskResult[]) => rs.map((r) => r.id).sort();

    expect(ids(await node.list({ queue }))).toEqual([waiting.id, cancelled.id, failed.id].sort());
    expect(ids(await node.list({ queue, status: 'READY' }))).toEqual([waiting.id]);
    expect(ids(await node.list({ queue, status: 'FAILED' }))).toEqual([cancelled.id, failed.id].sort());
    expect(ids(await node.list({ queue, taskName: 'list.a' }))).toEqual([failed.id]);
    expect(ids(await node.list({ queue, deadLettered: true }))).toEqual([failed.id]);
    expect((await node.getResult(cancelled.id)).cancelled).toBe(true);
  });

  it('fires a job scheduler once per tick with two workers, and coalesces ticks missed while none ran', async () => {
    const queue = newQueue();
    const runs: Array<{ key: string | null; worker: string | null }> = [];
    const nodes = [await store.node(), await store.node()];
    for (const node of nodes) {
      node.define({ name: 'tick', queue }, async (_args, ctx) => {
        runs.push({ key: ctx.taskResult.idempotencyKey, worker: ctx.taskResult.workerId });
      });
      node.schedule({ name: `every-second-${queue}`, cron: '* * * * * *', task: 'tick' });
    }
    // Stores the schedule, but serves another queue: nobody runs the ticks for a while.
    await nodes[0]!.startWorker({ queues: [`${queue}-other`] });
    await new Promise((resolve) => setTimeout(resolve, 2200));
    expect(runs).toEqual([]);

    const workers = await Promise.all(nodes.map((n) => n.startWorker({ queues: [queue] })));
    const started = Date.now();
    await until(() => runs.length >= 3, 8000);
    const keys = runs.map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of keys) expect(k).toMatch(new RegExp(`^schedule:every-second-${queue}:\\d{4}-.*Z$`));
    // The two-plus seconds without a worker produced one run, not two or three.
    const tickTimes = keys.map((k) => Date.parse(k!.slice(`schedule:every-second-${queue}:`.length)));
    expect(tickTimes.filter((t) => t < started - 500)).toHaveLength(1);
    expect(runs.every((r) => workers.some((w) => w.id === r.worker))).toBe(true);
  });

  it('cancelling a scheduled tick skips that tick only (when it comes due); the schedule keeps firing', async () => {
    const node = await store.node();
    const queue = newQueue();
    const ran: Array<string | null> = [];
    node.define({ name: 'tick', queue }, async (_args, ctx) => {
      ran.push(ctx.taskResult.idempotencyKey);
    });
    node.schedule({ name: `skip-one-${queue}`, cron: '* * * * * *', task: 'tick' });
    await node.startWorker({ queues: [`${queue}-other`] }); // stores the schedule, runs nothing of it
    const [pending] = await node.list({ queue, status: 'READY' });
    expect(pending?.idempotencyKey).toMatch(new RegExp(`^schedule:skip-one-${queue}:`));
    // BullMQ cannot remove a scheduler's pending job: it stays READY, flagged, until its tick.
    expect((await node.cancel(pending!.id)).cancelled).toBe(true);

    await node.startWorker({ queues: [queue] });
    const skipped = await pending!.wait({ timeoutMs: 5000 });
    expect(skipped.status).toBe('FAILED');
    expect(skipped.cancelled).toBe(true);
    await until(() => ran.length >= 1, 5000);
    expect(ran).not.toContain(pending!.idempotencyKey);
  });

  it('deletes schedules a new version no longer registers when its worker starts', async () => {
    const queue = newQueue();
    const oldVersion = await store.node();
    oldVersion.define({ name: 'tick', queue }, async () => null);
    oldVersion.schedule({ name: `old-${queue}`, cron: '0 0 * * *', task: 'tick' });
    await oldVersion.startWorker({ queues: [`${queue}-other`] });
    const pendingKeys = async () => (await oldVersion.list({ queue, status: 'READY' })).map((r) => r.idempotencyKey?.split(':')[1]);
    expect(await pendingKeys()).toEqual([`old-${queue}`]);

    const newVersion = await store.node();
    newVersion.define({ name: 'tick', queue }, async () => null);
    newVersion.schedule({ name: `new-${queue}`, cron: '0 0 * * *', task: 'tick' });
    await newVersion.startWorker({ queues: [`${queue}-other`] });
    expect(await pendingKeys()).toEqual([`new-${queue}`]);
  });

  it('keeps every id of a long-named schedule within the framework limit: its ticks can be read, cancelled, run and removed', async () => {
    const queue = newQueue();
    // The longest name NAME_RE allows (200): BullMQ's tick id "repeat:<scheduler id>:<ms>" used to be 221 characters.
    const name = `long-${queue}-`.padEnd(200, 'x');
    const node = await store.node();
    const ran: Array<string | null> = [];
    node.define({ name: 'tick', queue }, async (_args, ctx) => void ran.push(ctx.taskResult.idempotencyKey));
    node.schedule({ name, cron: '* * * * * *', task: 'tick' });
    await node.startWorker({ queues: [`${queue}-other`] }); // stores the schedule, runs nothing of it
    const [pending] = await node.list({ queue, status: 'READY' });
    expect(pending?.id).toMatch(TASK_ID_RE);
    expect(pending!.idempotencyKey).toMatch(new RegExp(`^schedule:${name}:`)); // the whole name, as before
    expect((await node.getResult(pending!.id)).id).toBe(pending!.id);
    expect((await node.cancel(pending!.id)).cancelled).toBe(true);
    await node.startWorker({ queues: [queue] });
    await until(() => ran.length >= 1, 5000);
    expect(ran[0]).toMatch(new RegExp(`^schedule:${name}:`));

    // A version that no longer registers it removes its job scheduler (found by its bounded id).
    const newVersion = await store.node();
    newVersion.define({ name: 'tick', queue }, async () => null);
    await newVersion.startWorker({ queues: [`${queue}-other`] });
    const bull = new Queue(queue, { connection: { url: store.redisUrl } as never, prefix: store.redisPrefix });
    try {
      expect(await bull.getJobSchedulers()).toEqual([]);
    } finally {
      await bull.close();
    }
  });

  workerCrashCases({
    store: () => store,
    children,
    startChild: (lockMs) => startChild(store, lockMs),
    shortLeaseMs: 1000,
    leaseWord: 'lock',
    // Taken over only once the lock ran out (renewed every lockMs/2, so at least that long after the kill).
    expectTakenOverAfterLease: (result, { killedAt, leaseMs }) => {
      expect(result.lastAttemptedAt!.getTime() - killedAt).toBeGreaterThanOrEqual(leaseMs / 2 - 50);
    },
  });

  it('serves a whole app configured with STORMVAULT_TASKS_BACKEND=redis: the admin API shows and cancels a schedule run', async () => {
    const t = await createTestApp({
      env: { STORMVAULT_TASKS_BACKEND: 'redis', STORMVAULT_REDIS_URL: store.redisUrl, STORMVAULT_REDIS_PREFIX: store.redisPrefix },
    });
    try {
      expect(t.app.tasks.backendKind).toBe('redis');
      const admin = await createUserWithKey(t.app, { admin: true });
      const echo = t.app.tasks.define({ name: 'app.echo', queue: 'app-q' }, async (a: { v: number }) => a.v);
      await t.app.tasks.startWorker({ queues: ['app-q'] }); // also stores the app's own schedules

      const done = await (await echo.enqueue({ v: 7 })).wait({ timeoutMs: 10_000 });
      const shown = await t.app.http.inject({ method: 'GET', url: `/api/v1/admin/tasks/${done.id}`, headers: admin.headers });
      expect(shown.statusCode).toBe(200);
      expect(shown.json()).toMatchObject({ status: 'SUCCESSFUL', return_value: 7 });

      // The app's modules register schedules (t.app.tasks.schedules()); their next runs are BullMQ jobs.
      expect(t.app.tasks.schedules().length).toBeGreaterThan(0);
      const scheduled = (await t.app.tasks.list({ status: 'READY' })).find((r) => r.id.startsWith('repeat:'));
      expect(scheduled).toBeDefined();
      const url = `/api/v1/admin/tasks/${encodeURIComponent(scheduled!.id)}`;
      expect((await t.app.http.inject({ method: 'GET', url, headers: admin.headers })).json()).toMatchObject({ status: 'READY' });
      const cancelled = await t.app.http.inject({ method: 'POST', url: `${url}/cancel`, headers: admin.headers });
      expect(cancelled.statusCode).toBe(200);
      expect(cancelled.json()).toMatchObject({ cancelled: true });
    } finally {
      await t.cleanup();
    }
  });

  function framework(s: RedisTaskStore, retention: { retentionMs: number; deadRetentionMs: number }): TaskFramework {
    const fw = new TaskFramework({
      clock: systemClock,
      logger: silentLogger,
      backend: redisBackend({ url: s.redisUrl, prefix: s.redisPrefix, lockDurationMs: 30_000 }),
      ...retention,
      concurrency: 4,
      shutdownGraceMs: 2000,
    });
    extra.push(fw);
    return fw;
  }
});

function startChild(store: RedisTaskStore, lockMs: number): ChildWorker {
  return spawnChildWorker(CHILD, [store.redisUrl, store.redisPrefix, String(lockMs)]);
}

/** Resolves once `condition` holds (checked every 20 ms), or fails after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
