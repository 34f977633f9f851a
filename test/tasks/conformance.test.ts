import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { TaskCancelledError, TaskWaitTimeoutError, UnrecoverableError } from '../../src/tasks/errors.ts';
import type { TaskFramework, TaskWorker } from '../../src/tasks/framework.ts';
import type { TaskResult } from '../../src/tasks/task-result.ts';
import { taskBackendFixtures, type TaskStore } from './backends.ts';

/**
 * One suite for every TaskBackend (issue 3). Each test uses its own queue so tests sharing a store never
 * see each other's tasks. Backends that can be driven step by step (capabilities.manualDrive) are
 * driven with worker.drain(); others run a real worker and the test waits for the result.
 */
describe.each(taskBackendFixtures())('task backend conformance: $name', (fixture) => {
  let store: TaskStore;
  let queueSeq = 0;
  beforeAll(async () => {
    store = await fixture.open();
  });
  afterEach(async () => {
    await store?.closeNodes?.();
  });
  afterAll(async () => {
    await store?.close();
  });

  const newQueue = () => `q${++queueSeq}`;

  /** Runs what is due and returns the refreshed result. */
  async function settle<R>(node: TaskFramework, worker: TaskWorker, result: TaskResult<R>): Promise<TaskResult<R>> {
    if (node.capabilities.manualDrive) {
      await worker.drain();
      return result.refresh();
    }
    return result.wait({ timeoutMs: 10_000 });
  }

  /** A worker for `queue`: idle for manually driven backends, started otherwise. */
  async function workerFor(node: TaskFramework, queue: string, concurrency = 4): Promise<TaskWorker> {
    const worker = node.createWorker({ queues: [queue], concurrency });
    if (!node.capabilities.manualDrive) await worker.start();
    return worker;
  }

  it('runs a task and stores its JSON return value; emits enqueued, started, finished', async () => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    const queue = newQueue();
    const add = node.define({ name: 'math.add', queue }, async (a: { x: number; y: number }) => ({ sum: a.x + a.y }));
    const events: string[] = [];
    for (const e of ['enqueued', 'started', 'finished'] as const) node.on(e, (r) => events.push(`${e}:${r.status}`));
    const worker = await workerFor(node, queue);

    const result = await add.enqueue({ x: 2, y: 3 });
    if (node.capabilities.deferred) {
      expect(result.status).toBe('READY');
      expect(() => result.returnValue).toThrow(/SUCCESSFUL/);
    }
    const done = await settle(node, worker, result);
    expect(done.status).toBe('SUCCESSFUL');
    expect(done.returnValue).toEqual({ sum: 5 });
    expect(done.attempts).toBe(1);
    expect(done.errors).toEqual([]);
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    expect(events).toEqual(['enqueued:READY', 'started:RUNNING', 'finished:SUCCESSFUL']);
    if (node.capabilities.durable) {
      const fromAnotherProcess = await (await store.node()).getResult(result.id);
      expect(fromAnotherProcess.returnValue).toEqual({ sum: 5 });
    }
  });

  it('refuses arguments that would not survive a JSON round trip, and changes nothing', async () => {
    const node = await store.node();
    const queue = newQueue();
    const task = node.define({ name: 'json.check', queue }, async () => null);
    for (const bad of [{ when: new Date() }, { n: Number.NaN }, { m: new Map() }, { u: undefined }]) {
      await expect(task.enqueue(bad as never)).rejects.toMatchObject({ code: 'invalid_request' });
    }
    expect(await node.list({ queue })).toEqual([]);
  });

  it.runIf(fixture.name !== 'immediate')('waits out exponential backoff between attempts (injected clock)', async (t) => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    const queue = newQueue();
    const task = node.define({ name: 'flaky', queue, maxAttempts: 3, backoff: { baseMs: 1000, capMs: 60_000, jitter: false } }, async (_a, ctx) => {
      if (ctx.attempt < 3) throw new TypeError(`attempt ${ctx.attempt} fails`);
      return 'third time lucky';
    });
    if (!node.capabilities.usesInjectedClock || !node.capabilities.manualDrive) return t.skip();
    const worker = node.createWorker({ queues: [queue] });
    const t0 = clock.now().getTime();
    const result = await task.enqueue(null);

    expect(await worker.drain()).toBe(1);
    await result.refresh();
    expect(result.status).toBe('READY');
    expect(result.attempts).toBe(1);
    expect(result.runAfter.getTime()).toBe(t0 + 1000);

    clock.advance(999);
    expect(await worker.drain()).toBe(0);
    clock.advance(1);
    expect(await worker.drain()).toBe(1);
    await result.refresh();
    expect(result.attempts).toBe(2);
    // Doubled: 2 s after the second attempt.
    expect(result.runAfter.getTime()).toBe(t0 + 1000 + 2000);
    clock.advance(1999);
    expect(await worker.drain()).toBe(0);
    clock.advance(1);
    expect(await worker.drain()).toBe(1);
    await result.refresh();
    expect(result.status).toBe('SUCCESSFUL');
    expect(result.returnValue).toBe('third time lucky');
    expect(result.errors.map((e) => [e.attempt, e.errorClass, e.message])).toEqual([
      [1, 'TypeError', 'attempt 1 fails'],
      [2, 'TypeError', 'attempt 2 fails'],
    ]);
    expect(result.errors[0]!.stack).toContain('attempt 1 fails');
  });

  it.runIf(fixture.name !== 'immediate')('jitters the backoff within [d/2, d]', async (t) => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    if (!node.capabilities.usesInjectedClock || !node.capabilities.manualDrive) return t.skip();
    const queue = newQueue();
    const task = node.define({ name: 'always.fails', queue, maxAttempts: 2, backoff: { baseMs: 10_000, capMs: 60_000, jitter: true } }, async () => {
      throw new Error('nope');
    });
    const worker = node.createWorker({ queues: [queue], concurrency: 20 });
    const results = await Promise.all(Array.from({ length: 20 }, () => task.enqueue(null)));
    await worker.drain();
    const delays = await Promise.all(results.map(async (r) => (await r.refresh()).runAfter.getTime() - clock.now().getTime()));
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(5000);
      expect(d).toBeLessThanOrEqual(10_000);
    }
    // Not all equal: the point of jitter (20 draws colliding by chance is ~impossible).
    expect(new Set(delays).size).toBeGreaterThan(1);
  });

  it('dead-letters a task whose attempts ran out; lists and requeues it', async () => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    const queue = newQueue();
    let healthy = false;
    const task = node.define({ name: 'fragile', queue, maxAttempts: 2, backoff: { baseMs: 0, capMs: 0 } }, async () => {
      if (!healthy) throw new RangeError('still broken');
      return 'fixed';
    });
    const worker = await workerFor(node, queue);
    const result = await settle(node, worker, await task.enqueue({ id: 1 }));
    expect(result.status).toBe('FAILED');
    expect(result.deadLettered).toBe(true);
    expect(result.cancelled).toBe(false);
    expect(result.attempts).toBe(2);
    expect(result.errors.map((e) => e.errorClass)).toEqual(['RangeError', 'RangeError']);
    expect(() => result.returnValue).toThrow();
    expect((await node.deadLetters()).map((r) => r.id)).toContain(result.id);

    healthy = true;
    const requeued = await node.retry(result.id);
    if (node.capabilities.deferred) {
      expect(requeued.status).toBe('READY');
      expect(requeued.attempts).toBe(0);
    }
    const after = await settle(node, worker, requeued);
    expect(after.status).toBe('SUCCESSFUL');
    expect(after.deadLettered).toBe(false);
    expect(after.returnValue).toBe('fixed');
    expect(after.errors).toHaveLength(2);
    expect((await node.deadLetters()).map((r) => r.id)).not.toContain(result.id);
    await expect(node.retry(result.id)).rejects.toMatchObject({ code: 'conflict' });
  });

  it('fails at once on UnrecoverableError, whatever attempts remain', async () => {
    const node = await store.node({ clock: new ManualClock() });
    const queue = newQueue();
    const task = node.define({ name: 'hopeless', queue, maxAttempts: 5 }, async () => {
      throw new UnrecoverableError('bad input, retrying cannot help');
    });
    const worker = await workerFor(node, queue);
    const result = await settle(node, worker, await task.enqueue(null));
    expect(result.status).toBe('FAILED');
    expect(result.attempts).toBe(1);
    expect(result.deadLettered).toBe(true);
    expect(result.errors[0]).toMatchObject({ errorClass: 'UnrecoverableError', message: 'bad input, retrying cannot help' });
  });

  it('runs an idempotency key once and returns the first result to later enqueues', async () => {
    const node = await store.node({ clock: new ManualClock() });
    const queue = newQueue();
    let runs = 0;
    const task = node.define({ name: 'once', queue }, async (a: { n: number }) => {
      runs++;
      return a.n;
    });
    const worker = await workerFor(node, queue);
    const first = await task.enqueue({ n: 1 }, { idempotencyKey: `once-${queue}` });
    const second = await task.enqueue({ n: 2 }, { idempotencyKey: `once-${queue}` });
    expect(second.id).toBe(first.id);
    await settle(node, worker, first);
    const third = await task.enqueue({ n: 3 }, { idempotencyKey: `once-${queue}` });
    expect(third.id).toBe(first.id);
    expect(third.returnValue).toBe(1);
    expect(runs).toBe(1);
    expect(await node.list({ queue })).toHaveLength(1);
  });

  it.runIf(fixture.name !== 'immediate')('gives concurrent enqueues of one key from two processes the same task', async () => {
    const a = await store.node({ isolated: true });
    const b = await store.node({ isolated: true });
    const queue = newQueue();
    const ta = a.define({ name: 'race', queue }, async () => 'a');
    const tb = b.define({ name: 'race', queue }, async () => 'b');
    const key = `race-${queue}`;
    const results = await Promise.all([ta.enqueue(null, { idempotencyKey: key }), tb.enqueue(null, { idempotencyKey: key }), ta.enqueue(null, { idempotencyKey: key })]);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(await a.list({ queue })).toHaveLength(1);
  });

  it.runIf(fixture.name !== 'immediate')('runs higher priority first, then the oldest', async () => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    const queue = newQueue();
    const order: string[] = [];
    const task = node.define({ name: 'ordered', queue }, async (label: string) => {
      order.push(label);
    });
    await task.enqueue('low-1', { priority: -10 });
    clock.advance(1);
    await task.enqueue('normal-1');
    clock.advance(1);
    await task.enqueue('urgent', { priority: 50 });
    clock.advance(1);
    await task.enqueue('normal-2');
    clock.advance(1);
    await task.enqueue('low-2', { priority: -10 });
    const worker = node.createWorker({ queues: [queue], concurrency: 1 });
    if (node.capabilities.manualDrive) await worker.drain();
    else {
      await worker.start();
      await Promise.all((await node.list({ queue })).map((r) => r.wait({ timeoutMs: 10_000 })));
    }
    expect(order).toEqual(['urgent', 'normal-1', 'normal-2', 'low-1', 'low-2']);
  });

  it.runIf(fixture.name !== 'immediate')('does not run a delayed task before its time', async (t) => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    if (!node.capabilities.usesInjectedClock || !node.capabilities.manualDrive) return t.skip();
    const queue = newQueue();
    const task = node.define({ name: 'later', queue }, async () => 'ran');
    const worker = node.createWorker({ queues: [queue] });
    const result = await task.enqueue(null, { runAfter: new Date(clock.now().getTime() + 60_000) });
    clock.advance(59_999);
    expect(await worker.drain()).toBe(0);
    expect((await result.refresh()).status).toBe('READY');
    clock.advance(1);
    expect(await worker.drain()).toBe(1);
    expect((await result.refresh()).returnValue).toBe('ran');
  });

  it.runIf(fixture.name !== 'immediate')('cancels a READY task: it never runs', async () => {
    const node = await store.node({ clock: new ManualClock() });
    const queue = newQueue();
    let runs = 0;
    const task = node.define({ name: 'cancel.me', queue }, async () => {
      runs++;
    });
    const result = await task.enqueue(null);
    const cancelled = await node.cancel(result.id);
    expect(cancelled.status).toBe('FAILED');
    expect(cancelled.cancelled).toBe(true);
    expect(cancelled.deadLettered).toBe(false);
    const worker = await workerFor(node, queue);
    if (node.capabilities.manualDrive) expect(await worker.drain()).toBe(0);
    expect(runs).toBe(0);
    await expect(node.cancel(result.id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(node.cancel('no-such-task')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('cancels a RUNNING task through its AbortSignal, without retrying it', async () => {
    const node = await store.node({ clock: new ManualClock() });
    const queue = newQueue();
    const task = node.define({ name: 'long.running', queue, maxAttempts: 3 }, (_a, ctx) => {
      return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    });
    node.on('started', (r) => void node.cancel(r.id));
    const worker = await workerFor(node, queue);
    const result = await settle(node, worker, await task.enqueue(null));
    expect(result.status).toBe('FAILED');
    expect(result.cancelled).toBe(true);
    expect(result.deadLettered).toBe(false);
    expect(result.attempts).toBe(1);
    expect(result.errors[0]!.errorClass).toBe(new TaskCancelledError().name);
  });

  it.runIf(fixture.name !== 'immediate')('cancels a task running in another process at its next heartbeat', async () => {
    const runner = await store.node({ isolated: true, leaseMs: 300, pollMs: 10 });
    const admin = await store.node({ isolated: true });
    const queue = newQueue();
    const started = new Promise<string>((resolve) => runner.on('started', (r) => resolve(r.id)));
    const def = { name: 'remote.long', queue, maxAttempts: 3 };
    runner.define(def, (_a, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
    const task = admin.define(def, async () => null);
    const result = await task.enqueue(null);
    await runner.startWorker({ queues: [queue] });
    expect(await started).toBe(result.id);
    const requested = await admin.cancel(result.id);
    expect(requested.status).toBe('RUNNING');
    await result.wait({ timeoutMs: 10_000 });
    expect(result.status).toBe('FAILED');
    expect(result.cancelled).toBe(true);
    expect(result.attempts).toBe(1);
  });

  it('fails an attempt that exceeds its timeout, even if the handler ignores its signal', async () => {
    const node = await store.node({ clock: new ManualClock() });
    const queue = newQueue();
    let sawAbort = false;
    const task = node.define({ name: 'too.slow', queue, maxAttempts: 1, timeoutMs: 50 }, (_a, ctx) => {
      ctx.signal.addEventListener('abort', () => (sawAbort = true));
      return new Promise(() => {});
    });
    const worker = await workerFor(node, queue);
    const result = await settle(node, worker, await task.enqueue(null));
    expect(result.status).toBe('FAILED');
    expect(result.errors[0]!.errorClass).toBe('TaskTimeoutError');
    expect(sawAbort).toBe(true);
  });

  it('wait() rejects after its timeout and resolves once the task finishes', async () => {
    const node = await store.node({ pollMs: 10 });
    const queue = newQueue();
    const task = node.define({ name: 'waited', queue }, async () => 'finished');
    const result = await task.enqueue(null);
    if (node.capabilities.deferred) {
      await expect(result.wait({ timeoutMs: 50 })).rejects.toBeInstanceOf(TaskWaitTimeoutError);
      expect(result.status).toBe('READY');
      await node.startWorker({ queues: [queue] });
    }
    await result.wait({ timeoutMs: 10_000 });
    expect(result.status).toBe('SUCCESSFUL');
    expect(result.returnValue).toBe('finished');
  });

  it('records progress reports on the result', async () => {
    const node = await store.node({ clock: new ManualClock() });
    const queue = newQueue();
    let seen: { fraction: number; message: string | null } | null = null;
    const task = node.define({ name: 'progressing', queue }, async (_a, ctx) => {
      await ctx.reportProgress(0.25, 'a quarter');
      seen = (await node.getResult(ctx.taskResult.id)).progress;
      await expect(ctx.reportProgress(2)).rejects.toMatchObject({ code: 'invalid_request' });
    });
    const worker = await workerFor(node, queue);
    await settle(node, worker, await task.enqueue(null));
    expect(seen).toMatchObject({ fraction: 0.25, message: 'a quarter' });
  });

  it('prunes finished results after the retention period, dead letters after theirs', async (t) => {
    const clock = new ManualClock();
    const node = await store.node({ clock });
    if (!node.capabilities.usesInjectedClock) return t.skip();
    const queue = newQueue();
    const ok = node.define({ name: 'keep.briefly', queue }, async () => 'ok');
    const bad = node.define({ name: 'dies', queue, maxAttempts: 1 }, async () => {
      throw new Error('dead');
    });
    const worker = await workerFor(node, queue);
    const key = `prune-${queue}`;
    const done = await settle(node, worker, await ok.enqueue(null, { idempotencyKey: key }));
    const dead = await settle(node, worker, await bad.enqueue(null));
    expect([done.status, dead.status]).toEqual(['SUCCESSFUL', 'FAILED']);

    clock.advance(7 * 24 * 3600_000 - 1000); // retention in backends.ts: 7 days, dead letters 30 days
    await node.prune();
    expect((await node.getResult(done.id)).status).toBe('SUCCESSFUL');
    clock.advance(2000);
    expect(await node.prune()).toBeGreaterThanOrEqual(1);
    await expect(node.getResult(done.id)).rejects.toMatchObject({ code: 'not_found' });
    expect((await node.getResult(dead.id)).deadLettered).toBe(true);
    // The key is free again once its result is gone.
    const again = await ok.enqueue(null, { idempotencyKey: key });
    expect(again.id).not.toBe(done.id);

    clock.advance(30 * 24 * 3600_000);
    await node.prune();
    await expect(node.getResult(dead.id)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('fires a schedule exactly once per tick with two workers, coalescing missed ticks', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const a = await store.node({ clock, isolated: true });
    if (!a.capabilities.usesInjectedClock || !a.capabilities.manualDrive) return t.skip();
    // Immediate nodes share nothing, so "two workers" means one there.
    const nodes = a.capabilities.durable ? [a, await store.node({ clock, isolated: true })] : [a];
    const queue = newQueue();
    const ticks: string[] = [];
    for (const node of nodes) {
      node.define({ name: 'tick', queue }, async (args: { label: string }) => {
        ticks.push(`${args.label}@${clock.now().toISOString()}`);
      });
      node.schedule({ name: `every-minute-${queue}`, cron: '* * * * *', task: 'tick', args: { label: 'm' } });
    }
    const workers = nodes.map((n) => n.createWorker({ queues: [queue] }));
    const round = () => Promise.all(workers.map((w) => w.drain()));

    await round();
    expect(ticks).toEqual([]);
    clock.set(Date.UTC(2026, 0, 1, 0, 1, 0));
    await round();
    await round();
    expect(ticks).toEqual(['m@2026-01-01T00:01:00.000Z']);
    clock.set(Date.UTC(2026, 0, 1, 0, 2, 10));
    await round();
    expect(ticks).toHaveLength(2);
    // Five ticks missed while nobody ran: one run, not five.
    clock.set(Date.UTC(2026, 0, 1, 0, 7, 30));
    await round();
    await round();
    expect(ticks).toHaveLength(3);
  });

  it("checks a schedule's cron and time zone when the schedules are stored: the first worker refuses them, naming the schedule", async () => {
    // Registering parses no cron (issue 12: an app that never runs a worker, a one-shot CLI command, need not load cron-parser and the time-zone data).
    for (const [cron, timezone, problem] of [
      ['61 * * * *', 'UTC', /invalid cron expression "61 \* \* \* \*"/],
      ['0 3 * * *', 'Mars/Olympus', /unknown time zone "Mars\/Olympus"/],
    ] as const) {
      const node = await store.node();
      const queue = newQueue();
      node.define({ name: 'sched.checked', queue }, async () => {});
      node.schedule({ name: `ok-${queue}`, cron: '0 * * * *', task: 'sched.checked' });
      node.schedule({ name: `bad-${queue}`, cron, timezone, task: 'sched.checked' });
      const worker = node.createWorker({ queues: [queue] });
      await expect(node.capabilities.manualDrive ? worker.runOnce() : worker.start()).rejects.toThrow(new RegExp(`schedule bad-${queue}: ${problem.source}`));
      await worker.stop();
    }
    // Once a worker runs, schedule() stores at once, so it checks at once.
    const node = await store.node();
    const queue = newQueue();
    node.define({ name: 'sched.checked', queue }, async () => {});
    const worker = node.createWorker({ queues: [queue] });
    if (node.capabilities.manualDrive) await worker.runOnce();
    else await worker.start();
    expect(() => node.schedule({ name: `late-${queue}`, cron: 'every day', task: 'sched.checked' })).toThrow(new RegExp(`schedule late-${queue}: invalid cron expression`));
    expect(node.schedules().map((s) => s.name)).not.toContain(`late-${queue}`);
  });

  it('stops firing a schedule removed from the code and follows a changed cron after a redeploy', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const before = await store.node({ clock });
    if (!before.capabilities.usesInjectedClock || !before.capabilities.manualDrive || !before.capabilities.durable) return t.skip();
    const queue = newQueue();
    const runs: string[] = [];
    const define = (node: TaskFramework) => node.define({ name: 'sched.task', queue }, async (a: { s: string }) => void runs.push(a.s));
    define(before);
    before.schedule({ name: `report-${queue}`, cron: '0 * * * *', task: 'sched.task', args: { s: 'hourly' } });
    before.schedule({ name: `retired-${queue}`, cron: '* * * * *', task: 'sched.task', args: { s: 'retired' } });
    await before.createWorker({ queues: [queue] }).drain();
    await before.close();

    // The next version of the app: "retired" is gone, "report" runs every five minutes.
    const after = await store.node({ clock });
    define(after);
    after.schedule({ name: `report-${queue}`, cron: '*/5 * * * *', task: 'sched.task', args: { s: 'five' } });
    const worker = after.createWorker({ queues: [queue] });
    await worker.drain();
    clock.set(Date.UTC(2026, 0, 1, 0, 5, 0));
    await worker.drain();
    expect(runs).toEqual(['five']);
  });
});
