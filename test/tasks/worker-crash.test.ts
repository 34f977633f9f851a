import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { databaseFixtures, type TaskStore } from './backends.ts';
import { nextLine, spawnChildWorker, workerCrashCases, type ChildWorker } from './worker-crash.cases.ts';

const CHILD = path.join(import.meta.dirname, 'fixtures', 'child-worker.ts');
const LEASE_MS = 800;

/** Starts a real worker process on the store's database with this lease; it prints "ready" once polling. */
function startChild(url: string, leaseMs = LEASE_MS): ChildWorker {
  return spawnChildWorker(CHILD, [url, String(leaseMs)]);
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

  workerCrashCases({
    store: () => store,
    children,
    startChild: (leaseMs) => startChild(store.databaseUrl!, leaseMs),
    shortLeaseMs: LEASE_MS,
    leaseWord: 'lease',
    nodeOptions: { pollMs: 20 },
    // Taken over only after the lease ran out, not while the child might still have been alive.
    expectTakenOverAfterLease: (result, { leaseMs }) => {
      expect(result.lastAttemptedAt!.getTime() - result.startedAt!.getTime()).toBeGreaterThanOrEqual(leaseMs);
    },
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
