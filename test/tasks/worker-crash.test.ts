import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { databaseFixtures, type TaskStore } from './backends.ts';

const CHILD = path.join(import.meta.dirname, 'fixtures', 'child-worker.ts');
const LEASE_MS = 800;

/** Starts a real worker process on the store's database; resolves once it is polling. */
function startChild(url: string): { child: ChildProcess; lines: AsyncIterator<string>; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, String(LEASE_MS)], {
    cwd: path.join(import.meta.dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines, exited };
}

async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const { value, done } = await lines.next();
  if (done) throw new Error('child worker exited early');
  return value;
}

/**
 * Issue 3: "a worker killed mid-task (SIGKILL of a real child process) whose task completes on another
 * worker after the lease". The child is a real process with its own connection; the surviving worker
 * is this test process.
 */
describe.each(databaseFixtures())('worker processes on $name', (fixture) => {
  let store: TaskStore;
  const children: ChildProcess[] = [];
  const track = (c: ChildProcess) => children.push(c);
  beforeAll(async () => {
    store = await fixture.open();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await store.closeNodes?.();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('re-runs the task of a SIGKILLed worker on another worker once its lease expires', async () => {
    const survivor = await store.node({ leaseMs: LEASE_MS, pollMs: 20 });
    const task = survivor.define({ name: 'crash.hang', queue: 'crash' }, async () => 'completed by the survivor');
    const result = await task.enqueue(null);

    const { child, lines, exited } = startChild(store.databaseUrl!);
    children.push(child);
    expect(await nextLine(lines)).toBe('ready');
    expect(await nextLine(lines)).toBe(`started ${result.id}`);
    await result.refresh();
    expect(result.status).toBe('RUNNING');
    expect(result.workerId).toBe(`child-${child.pid}`);

    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    const worker = await survivor.startWorker({ queues: ['crash'] });
    await result.wait({ timeoutMs: 15_000 });

    expect(result.status).toBe('SUCCESSFUL');
    expect(result.returnValue).toBe('completed by the survivor');
    expect(result.workerId).toBe(worker.id);
    expect(result.attempts).toBe(2);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ attempt: 1, errorClass: 'WorkerLost' });
    // Taken over only after the lease ran out, not while the child might still have been alive.
    expect(result.lastAttemptedAt!.getTime() - result.startedAt!.getTime()).toBeGreaterThanOrEqual(LEASE_MS);
  });

  it('hands running tasks back at once on SIGTERM, without counting the attempt', async () => {
    const survivor = await store.node({ leaseMs: 60_000, pollMs: 20 });
    const task = survivor.define({ name: 'crash.hang', queue: 'crash' }, async () => 'done after hand-back');
    const result = await task.enqueue(null);

    const { child, lines, exited } = startChild(store.databaseUrl!);
    children.push(child);
    expect(await nextLine(lines)).toBe('ready');
    expect(await nextLine(lines)).toBe(`started ${result.id}`);
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
    await result.refresh();
    expect(result.status).toBe('READY');
    expect(result.attempts).toBe(0);

    // The lease is a minute long: only the hand-back lets the survivor run it now.
    await survivor.startWorker({ queues: ['crash'] });
    await result.wait({ timeoutMs: 10_000 });
    expect(result.status).toBe('SUCCESSFUL');
    expect(result.attempts).toBe(1);
    expect(result.errors).toEqual([]);
  });

  it('runs every task exactly once with two worker processes competing for one queue', async () => {
    const ran: string[] = [];
    const here = await store.node({ pollMs: 10 });
    const task = here.define({ name: 'multi.echo', queue: 'multi' }, async (_a, ctx) => {
      ran.push(ctx.taskResult.id);
      return process.pid;
    });
    const { child, lines, exited } = startChild(store.databaseUrl!);
    track(child);
    expect(await nextLine(lines)).toBe('ready');
    const reader = (async () => {
      for (let line = await lines.next(); !line.done; line = await lines.next()) if (line.value.startsWith('ran ')) ran.push(line.value.slice(4));
    })();
    await here.startWorker({ queues: ['multi'] });

    const results = await Promise.all(Array.from({ length: 200 }, () => task.enqueue(null)));
    await Promise.all(results.map((r) => r.wait({ timeoutMs: 20_000 })));
    expect(results.every((r) => r.status === 'SUCCESSFUL' && r.attempts === 1)).toBe(true);
    // Stop the child so its output is complete, then: every task ran once, in one of the two processes.
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
    await reader;
    expect(ran.sort()).toEqual(results.map((r) => r.id).sort());
    expect(results.every((r) => r.returnValue === process.pid || r.returnValue === child.pid)).toBe(true);
  });
});
