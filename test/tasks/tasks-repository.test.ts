import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { StatementTemplate } from '../../src/db/statement-template.ts';
import { TasksRepository } from '../../src/tasks/backends/database/tasks.repository.ts';
import type { EnqueueRequest, TaskRecord } from '../../src/tasks/types.ts';
import { testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';

/**
 * The claim and the completion run from statements compiled once and bound per call (StatementTemplate):
 * these tests pin what the conformance suite does not reach directly — batches past one statement's
 * chunk, the per-row fencing inside one batch, queue filters of several sizes — on every dialect.
 */
describe('StatementTemplate', () => {
  const handle = createDatabase(':memory:');
  afterAll(() => handle.destroy());

  it('binds each argument wherever it was used and keeps every other value constant', () => {
    const t = new StatementTemplate(2, (arg) =>
      handle.db.selectFrom('background_tasks').select('id').where('id', '=', arg(0)).where('queue', '=', 'fixed').where('worker_id', 'in', [arg(1), arg(0)]),
    );
    const q = t.bind(['a', 'b']);
    expect(q.sql).toBe('select "id" from "background_tasks" where "id" = ? and "queue" = ? and "worker_id" in (?, ?)');
    expect(q.parameters).toEqual(['a', 'fixed', 'b', 'a']);
    expect(t.bind([1, null]).parameters).toEqual([1, 'fixed', null, 1]);
  });

  it('refuses an unused argument, an inlined one and a wrong number of values', () => {
    expect(() => new StatementTemplate(2, (arg) => handle.db.selectFrom('background_tasks').select('id').where('id', '=', arg(0)))).toThrow(/argument 1 is not used/);
    expect(() => new StatementTemplate(1, (arg) => handle.db.selectFrom('background_tasks').select('id').where('id', '=', arg(0)).limit(arg(3) as unknown as number))).toThrow(
      /out of range/,
    );
    const t = new StatementTemplate(1, (arg) => handle.db.selectFrom('background_tasks').select('id').where('id', '=', arg(0)));
    expect(() => t.bind([])).toThrow(/1 arguments expected, got 0/);
  });
});

describe.each(testDialects())('TasksRepository claim and completion (%s)', (dialect) => {
  let dir: string;
  let handle: DatabaseHandle;
  let drop: () => Promise<void>;
  let repo: TasksRepository;
  const t0 = new Date('2026-01-01T00:00:00.000Z');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-tasks-repo-'));
    const db = await freshDatabaseUrl(dialect, dir);
    drop = db.drop;
    handle = createDatabase(db.url);
    await migrateToLatest(handle.db);
    repo = new TasksRepository(handle.db, handle.dialect);
  });
  afterAll(async () => {
    await handle?.destroy();
    await drop?.();
    await rm(dir, { recursive: true, force: true });
  });

  const request = (queue: string, i: number): EnqueueRequest => ({
    id: randomUUID(),
    taskName: 'repo.test',
    queue,
    priority: 0,
    args: { i },
    maxAttempts: 3,
    backoff: { baseMs: 1000, capMs: 60_000, jitter: false },
    timeoutMs: null,
    idempotencyKey: null,
    enqueuedAt: t0,
    runAfter: new Date(t0.getTime() + i),
  });

  const claim = (workerId: string, queues: string[], limit: number, now = new Date(t0.getTime() + 3600_000)) =>
    repo.completeAndClaim({ completions: [], now, claim: { workerId, queues, limit, leaseUntil: new Date(now.getTime() + 60_000) } });

  it('claims in priority-then-due order from the given queues only, leased to the worker', async () => {
    await repo.insertMany([...Array.from({ length: 5 }, (_, i) => request('qa', i)), ...Array.from({ length: 5 }, (_, i) => request('qb', i)), request('qc', 0)]);
    const a = await claim('w-a', ['qa'], 3);
    expect(a.claimed.map((r) => (r.args as { i: number }).i)).toEqual([0, 1, 2]);
    expect(a.claimed.every((r) => r.queue === 'qa' && r.status === 'RUNNING' && r.workerId === 'w-a' && r.attempts === 1)).toBe(true);
    const ab = await claim('w-ab', ['qa', 'qb'], 100);
    expect(ab.claimed.map((r) => `${r.queue}:${(r.args as { i: number }).i}`).sort()).toEqual(['qa:3', 'qa:4', 'qb:0', 'qb:1', 'qb:2', 'qb:3', 'qb:4']);
    const any = await claim('w-any', [], 100);
    expect(any.claimed.map((r) => r.queue)).toEqual(['qc']);
    expect((await claim('w-any', [], 100)).claimed).toEqual([]);
  });

  it('completes a batch larger than one statement, storing only the attempts the worker still holds', async () => {
    await repo.insertMany(Array.from({ length: 75 }, (_, i) => request('batch', i)));
    const held = (await claim('w1', ['batch'], 75)).claimed;
    expect(held).toHaveLength(75);
    // Three of them lost: one re-attempted (another attempt number), one taken by another worker, one no longer RUNNING.
    const [stale, stolen, released] = [held[5]!, held[40]!, held[70]!];
    await handle.db.updateTable('background_tasks').set({ attempts: 2 }).where('id', '=', stale.id).execute();
    await handle.db.updateTable('background_tasks').set({ worker_id: 'w2' }).where('id', '=', stolen.id).execute();
    await handle.db.updateTable('background_tasks').set({ status: 'READY' }).where('id', '=', released.id).execute();
    const byOtherWorker: TaskRecord = { ...held[0]!, workerId: 'w2' };
    const completions = [...held, byOtherWorker].map((task) => ({ task, value: { n: (task.args as { i: number }).i, s: "it's \"quoted\"" } }));
    const { completed } = await repo.completeAndClaim({ completions, now: new Date(t0.getTime() + 7200_000), claim: null });
    const lost = new Set([stale.id, stolen.id, released.id]);
    // held[0] appears twice: stored by w1's statement, refused for w2's (which does not hold it).
    expect(completed.map((r) => r.id).sort()).toEqual(held.filter((t) => !lost.has(t.id)).map((t) => t.id).sort());
    for (const t of held) {
      const row = (await repo.get(t.id))!;
      if (lost.has(t.id)) expect(row.status).not.toBe('SUCCESSFUL');
      else {
        expect(row.status).toBe('SUCCESSFUL');
        expect(row.returnValue).toEqual({ n: (t.args as { i: number }).i, s: "it's \"quoted\"" });
        expect(row.finishedAt).toEqual(new Date(t0.getTime() + 7200_000));
        const raw = await handle.db.selectFrom('background_tasks').select(['lease_expires_at', 'worker_id']).where('id', '=', t.id).executeTakeFirstOrThrow();
        expect(raw).toEqual({ lease_expires_at: null, worker_id: 'w1' });
      }
    }
  });
});
