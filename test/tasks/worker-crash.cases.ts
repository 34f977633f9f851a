import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import type { TaskResult } from '../../src/tasks/task-result.ts';
import type { NodeOptions, TaskStore } from './backends.ts';

/** A real worker process started from a fixture script; `lines` is its stdout, line by line. */
export interface ChildWorker {
  child: ChildProcess;
  lines: AsyncIterator<string>;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** Spawns `node --import tsx <script> ...args` from the repository root, stderr passed through. */
export function spawnChildWorker(script: string, args: string[]): ChildWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: path.join(import.meta.dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines, exited };
}

export async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const { value, done } = await lines.next();
  if (done) throw new Error('child worker exited early');
  return value;
}

export interface WorkerCrashCasesOptions {
  /** The suite's store (opened in its beforeAll, hence a getter). */
  store: () => TaskStore;
  /** Children are pushed here; the suite's afterEach SIGKILLs any still alive. */
  children: ChildProcess[];
  /** Starts a child worker running `crash.hang` on queue `crash` with this lease (lock) length. */
  startChild: (leaseMs: number) => ChildWorker;
  /** Lease (lock) length for the SIGKILL case: short, the survivor waits it out. */
  shortLeaseMs: number;
  /** "lease" (database) or "lock" (BullMQ), for the test names. */
  leaseWord: string;
  /** Extra options for the surviving node in this process (e.g. a fast poll). */
  nodeOptions?: NodeOptions;
  /** Asserts the survivor took the task over only once the dead child's lease (lock) ran out. */
  expectTakenOverAfterLease: (result: TaskResult, times: { killedAt: number; leaseMs: number }) => void;
}

/**
 * Issue 3: "a worker killed mid-task (SIGKILL of a real child process) whose task completes on another
 * worker after the lease", and the graceful hand-back on SIGTERM — the same cases for every backend that
 * runs workers in other processes. Call inside the backend's describe block.
 */
/** Each case starts a real `node --import tsx` child: seconds on a loaded 2-core machine, before any waiting. */
const CHILD_CASE_TIMEOUT_MS = 60_000;

export function workerCrashCases(o: WorkerCrashCasesOptions): void {
  it(`re-runs the task of a SIGKILLed worker process on another worker once its ${o.leaseWord} expires`, async () => {
    const survivor = await o.store().node({ ...o.nodeOptions, leaseMs: o.shortLeaseMs });
    const task = survivor.define({ name: 'crash.hang', queue: 'crash' }, async () => 'completed by the survivor');
    const result = await task.enqueue(null);

    const { child, lines, exited } = o.startChild(o.shortLeaseMs);
    o.children.push(child);
    expect(await nextLine(lines)).toBe('ready');
    expect(await nextLine(lines)).toBe(`started ${result.id}`);
    await result.refresh();
    expect(result.status).toBe('RUNNING');
    expect(result.workerId).toBe(`child-${child.pid}`);

    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    const killedAt = Date.now();
    const worker = await survivor.startWorker({ queues: ['crash'] });
    await result.wait({ timeoutMs: 15_000 });

    expect(result.status).toBe('SUCCESSFUL');
    expect(result.returnValue).toBe('completed by the survivor');
    expect(result.workerId).toBe(worker.id);
    expect(result.attempts).toBe(2);
    expect(result.errors.map((e) => [e.attempt, e.errorClass])).toEqual([[1, 'WorkerLost']]);
    o.expectTakenOverAfterLease(result, { killedAt, leaseMs: o.shortLeaseMs });
  }, CHILD_CASE_TIMEOUT_MS);

  it('hands a running task back at once on SIGTERM, without counting the attempt', async () => {
    const survivor = await o.store().node({ ...o.nodeOptions, leaseMs: 60_000 });
    const task = survivor.define({ name: 'crash.hang', queue: 'crash' }, async () => 'done after hand-back');
    const result = await task.enqueue(null);

    const { child, lines, exited } = o.startChild(60_000);
    o.children.push(child);
    expect(await nextLine(lines)).toBe('ready');
    expect(await nextLine(lines)).toBe(`started ${result.id}`);
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
    await result.refresh();
    expect(result.status).toBe('READY');
    expect(result.attempts).toBe(0);

    // The child's lease (lock) is a minute long: only the hand-back lets the survivor run it now.
    await survivor.startWorker({ queues: ['crash'] });
    await result.wait({ timeoutMs: 10_000 });
    expect(result.status).toBe('SUCCESSFUL');
    expect(result.attempts).toBe(1);
    expect(result.errors).toEqual([]);
  }, CHILD_CASE_TIMEOUT_MS);
}
