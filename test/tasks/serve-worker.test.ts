import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskWaitTimeoutError } from '../../src/tasks/errors.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/stormvault.js');

/** `stormvault serve` on the test app's data dir and database; resolves once it listens. */
async function startServe(t: TestApp, extraArgs: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...extraArgs], {
    env: {
      ...process.env,
      STORMVAULT_DATA_DIR: t.config.dataDir,
      STORMVAULT_DATABASE_URL: t.config.database.url,
      STORMVAULT_TASKS_BACKEND: 'database',
      STORMVAULT_TASKS_POLL_MS: '20',
      STORMVAULT_PORT: '0',
      STORMVAULT_MIN_FREE_BYTES: '0',
      STORMVAULT_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
    lines.on('line', (line) => {
      if (line.includes('"stormvault listening"')) resolve();
    });
  });
  return child;
}

/**
 * Issue 3: "`stormvault serve` runs an in-process worker for all queues by default (`--no-worker` to turn
 * it off), so the embedded default needs one process." The test process enqueues into the same SQLite
 * file; which process ran the task shows in the result's worker id (host:pid:…).
 */
describe('stormvault serve and background tasks', () => {
  const apps: TestApp[] = [];
  const children: ChildProcess[] = [];
  let withWorker: { t: TestApp; child: ChildProcess };
  let withoutWorker: { t: TestApp; child: ChildProcess };

  beforeAll(async () => {
    const make = async (args: string[]) => {
      const t = await createTestApp({ env: { STORMVAULT_TASKS_BACKEND: 'database' } });
      apps.push(t);
      const child = await startServe(t, args);
      children.push(child);
      return { t, child };
    };
    [withWorker, withoutWorker] = await Promise.all([make([]), make(['--no-worker'])]);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    }
    for (const t of apps) await t.cleanup();
  });

  it('runs tasks in the serve process by default, and stops cleanly on SIGTERM', async () => {
    const { t, child } = withWorker;
    const result = await t.app.tasks.enqueue('sync.metrics', {});
    await result.wait({ timeoutMs: 15_000 });
    expect(result.status).toBe('SUCCESSFUL');
    expect(result.workerId).toContain(`:${child.pid}:`);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('with --no-worker leaves tasks to a separate worker', async () => {
    const { t } = withoutWorker;
    const result = await t.app.tasks.enqueue('sync.metrics', {});
    await expect(result.wait({ timeoutMs: 1000 })).rejects.toBeInstanceOf(TaskWaitTimeoutError);
    expect(result.status).toBe('READY');
    const worker = await t.app.tasks.startWorker();
    await result.wait({ timeoutMs: 15_000 });
    expect(result.status).toBe('SUCCESSFUL');
    expect(result.workerId).toBe(worker.id);
  });
});
