import { CompiledQuery, sql, type Kysely } from 'kysely';
import { statementFor, type StatementTemplate } from '../../../db/statement-template.ts';
import type { DialectName } from '../../../db/database.ts';
import type { BackgroundTasksTable, Database, Db } from '../../../db/schema.ts';
import type { EnqueueRequest, JsonValue, ScheduleSpec, ScheduleTemplate, TaskErrorInfo, TaskListFilter, TaskRecord, TaskStatus } from '../../types.ts';

type TaskRow = BackgroundTasksTable;

/** A schedule due to fire, as read from the table. */
export interface DueSchedule {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly template: ScheduleTemplate;
  readonly nextTickAt: Date;
}

const iso = (d: Date) => d.toISOString();
const toDate = (s: string | null) => (s === null ? null : new Date(s));

const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');
const STEER_CLAIM_PLAN = CompiledQuery.raw("select set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)");
/** Successes stored by one UPDATE (larger batches take several): bounds the number of compiled shapes. */
const COMPLETE_CHUNK = 32;

/**
 * SQL of the database task backend. Every state change of a claimed task is guarded by
 * (worker_id, attempts): a worker whose lease expired and whose task was taken over can no longer
 * overwrite the new attempt's outcome (a fencing token, as in leases everywhere).
 */
export class TasksRepository {
  constructor(
    private readonly db: Db,
    private readonly dialect: DialectName,
  ) {}

  /**
   * Runs `fn` in a write transaction that holds the write lock from its first statement. SQLite: BEGIN
   * IMMEDIATE, so two processes never both read and then fail to upgrade to a write (SQLITE_BUSY that
   * busy_timeout cannot wait out); busy_timeout then queues writers. PostgreSQL: a plain transaction; the
   * claim uses FOR UPDATE SKIP LOCKED so workers never wait on each other's rows.
   */
  private async writeTransaction<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    if (this.dialect === 'postgres') return this.db.transaction().execute(fn);
    return this.db.connection().execute(async (conn) => {
      await conn.executeQuery(BEGIN_IMMEDIATE);
      try {
        const result = await fn(conn);
        await conn.executeQuery(COMMIT);
        return result;
      } catch (err) {
        await conn.executeQuery(ROLLBACK).catch(() => {});
        throw err;
      }
    });
  }

  /**
   * Marks `n` held tasks SUCCESSFUL, each guarded by its own attempt number. Arguments: 0 finished_at,
   * 1 worker_id, then per task j: 2+3j id, 3+3j return value (JSON), 4+3j attempts.
   */
  #completeStatement(n: number): StatementTemplate {
    return statementFor(this.db, `tasks.complete:${n}`, 2 + 3 * n, (arg) => {
      const task = (j: number) => ({ id: arg(2 + 3 * j), json: arg(3 + 3 * j), attempts: arg(4 + 3 * j) });
      const tasks = Array.from({ length: n }, (_, j) => task(j));
      return this.db
        .updateTable('background_tasks')
        .set({
          status: 'SUCCESSFUL',
          finished_at: arg(0),
          lease_expires_at: null,
          return_value: sql<string>`CASE id ${sql.join(tasks.map((t) => sql`WHEN ${t.id} THEN ${t.json}`), sql` `)} END`,
        })
        .where('worker_id', '=', arg(1))
        .where('status', '=', 'RUNNING')
        .where('id', 'in', tasks.map((t) => t.id))
        .where('attempts', '=', sql<number>`CASE id ${sql.join(tasks.map((t) => sql`WHEN ${t.id} THEN CAST(${t.attempts} AS integer)`), sql` `)} END`)
        .returning('id');
    });
  }

  /**
   * Claims due READY tasks of `queues` (all when none) for a worker. Arguments: 0 worker_id,
   * 1 lease_expires_at, 2 now, 3 limit, then one per queue.
   */
  #claimStatement(queues: number): StatementTemplate {
    return statementFor(this.db, `tasks.claim:${queues}`, 4 + queues, (arg) => {
      const db = this.db;
      let due = db
        .selectFrom('background_tasks')
        .select('id')
        // A literal, not a parameter: the claim index holds READY rows only (migration 0018).
        .where('status', '=', sql.lit('READY'))
        .where('run_after', '<=', arg(2))
        .orderBy('priority', 'desc')
        .orderBy('run_after', 'asc')
        .orderBy('id', 'asc')
        .limit(arg(3) as unknown as number);
      if (queues > 0) due = due.where('queue', 'in', Array.from({ length: queues }, (_, i) => arg(4 + i)));
      if (this.dialect === 'postgres') due = due.forUpdate().skipLocked();
      return db
        .updateTable('background_tasks')
        .set({
          status: 'RUNNING',
          attempts: sql`attempts + 1`,
          worker_id: arg(0),
          lease_expires_at: arg(1),
          started_at: sql`coalesce(started_at, ${arg(2)})`,
          last_attempted_at: arg(2),
          progress_fraction: null,
          progress_message: null,
          progress_at: null,
        })
        // PostgreSQL: = any(array(…)) runs the locking subquery ONCE (an InitPlan). As `in (…)` the planner
        // may pick a nested-loop semi join that re-runs it for every READY row, and each re-run, skipping
        // the rows this very statement already locked, hands out the next ones: a claim of 3 updated 5
        // (test/tasks/tasks-repository.test.ts), a worker running more attempts than its concurrency.
        .where('id', this.dialect === 'postgres' ? '=' : 'in', this.dialect === 'postgres' ? sql<string>`any(array(${due}))` : due)
        // Re-checked on PostgreSQL, where a row can change between the locked subquery and here. On SQLite
        // the unary + keeps the planner from answering the outer UPDATE off an index led by status (0002's
        // claim index: a scan of EVERY ready row per claim, 0.45 ms at 1,000 ready, bench/collect) instead
        // of looking the few claimed ids up by primary key (0.1 ms, whatever the backlog); kept after 0018
        // so the plan does not depend on which indexes a database has.
        .where(this.dialect === 'sqlite' ? sql<string>`+${sql.ref('status')}` : sql.ref('status'), '=', 'READY')
        .returningAll();
    });
  }

  /** Inserts a READY task; on an idempotency-key collision inserts nothing and returns the kept task. */
  async insert(req: EnqueueRequest, db: Kysely<Database> = this.db): Promise<{ record: TaskRecord; created: boolean }> {
    return (await this.insertMany([req], db))[0]!;
  }

  /**
   * Inserts many READY tasks with multi-row INSERTs (the enqueue path batches concurrent enqueues into
   * one statement). For each request: its new record (`created`), or — when its idempotency key is
   * taken, also by an earlier request of the same batch — the kept task.
   */
  async insertMany(reqs: readonly EnqueueRequest[], db: Kysely<Database> = this.db): Promise<Array<{ record: TaskRecord; created: boolean }>> {
    const out: Array<{ record: TaskRecord; created: boolean }> = [];
    // 28 columns a row: 500 rows stay under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
    for (let start = 0; start < reqs.length; start += 500) {
      const chunk = reqs.slice(start, start + 500);
      const rows = chunk.map(toRow);
      const inserted = await db
        .insertInto('background_tasks')
        .values(rows)
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .returning('id')
        .execute();
      const insertedIds = new Set(inserted.map((r) => r.id));
      const takenKeys = chunk.filter((r) => !insertedIds.has(r.id)).map((r) => r.idempotencyKey!);
      const kept =
        takenKeys.length === 0
          ? new Map<string, TaskRow>()
          : new Map(
              (await db.selectFrom('background_tasks').selectAll().where('idempotency_key', 'in', [...new Set(takenKeys)]).execute()).map((r) => [r.idempotency_key!, r]),
            );
      for (const [i, req] of chunk.entries()) {
        if (insertedIds.has(req.id)) {
          out.push({ record: toRecord(rows[i]!), created: true });
          continue;
        }
        const existing = kept.get(req.idempotencyKey!);
        // Pruned between the conflict and the read: extremely unlikely; insert it on its own again.
        out.push(existing ? { record: toRecord(existing), created: false } : await this.insert(req, db));
      }
    }
    return out;
  }

  async get(id: string): Promise<TaskRecord | null> {
    const row = await this.db.selectFrom('background_tasks').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async list(filter: TaskListFilter): Promise<TaskRecord[]> {
    let q = this.db.selectFrom('background_tasks').selectAll();
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.queue !== undefined) q = q.where('queue', '=', filter.queue);
    if (filter.taskName !== undefined) q = q.where('task_name', '=', filter.taskName);
    if (filter.deadLettered !== undefined) q = q.where('dead_lettered', '=', filter.deadLettered ? 1 : 0);
    const rows = await q
      .orderBy('enqueued_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(filter.limit ?? 100, 1000))
      .execute();
    return rows.map(toRecord);
  }

  /**
   * One write transaction per worker round (one commit, so one fsync on PostgreSQL, for a whole batch):
   * records the successful attempts in `completions` (each guarded by worker and attempt), then claims up
   * to `claim.limit` due READY tasks of `claim.queues` (all when empty), highest priority first, then
   * oldest due: RUNNING, attempts + 1, leased to the worker until `claim.leaseUntil`.
   * Returns the completed records (those the worker still held) and the claimed ones.
   */
  async completeAndClaim(input: {
    completions: ReadonlyArray<{ task: TaskRecord; value: JsonValue }>;
    now: Date;
    claim: { workerId: string; queues: readonly string[]; limit: number; leaseUntil: Date } | null;
  }): Promise<{ completed: TaskRecord[]; claimed: TaskRecord[] }> {
    const { completions, now, claim } = input;
    if (completions.length === 0 && (!claim || claim.limit <= 0)) return { completed: [], claimed: [] };
    const nowIso = iso(now);
    return this.writeTransaction(async (db) => {
      const completed: TaskRecord[] = [];
      // One statement per worker and up to COMPLETE_CHUNK tasks; each row still guarded by its own attempt number.
      for (const [workerId, group] of groupBy(completions, (c) => c.task.workerId ?? '')) {
        for (let start = 0; start < group.length; start += COMPLETE_CHUNK) {
          const chunk = group.slice(start, start + COMPLETE_CHUNK);
          const args: unknown[] = [nowIso, workerId];
          for (const c of chunk) args.push(c.task.id, JSON.stringify(c.value), c.task.attempts);
          const { rows } = await db.executeQuery(this.#completeStatement(chunk.length).bind<{ id: string }>(args));
          const stored = new Set(rows.map((r) => r.id));
          for (const c of chunk) {
            if (stored.has(c.task.id)) completed.push({ ...c.task, status: 'SUCCESSFUL', returnValue: c.value, finishedAt: now, progress: c.task.progress });
          }
        }
      }
      if (!claim || claim.limit <= 0) return { completed, claimed: [] };
      if (this.dialect === 'postgres') {
        // Right after a burst of enqueues the statistics still describe a near-empty table, so the planner
        // bitmap-scans and sorts EVERY due row (15 ms at 20,000) instead of reading `limit` rows off the
        // claim index in order (0.1 ms). Steer this one transaction; nothing else is affected.
        await db.executeQuery(STEER_CLAIM_PLAN);
      }
      const claimArgs: unknown[] = [claim.workerId, iso(claim.leaseUntil), nowIso, claim.limit, ...claim.queues];
      const { rows } = await db.executeQuery(this.#claimStatement(claim.queues.length).bind<TaskRow>(claimArgs));
      return { completed, claimed: rows.map(toRecord).sort(byClaimOrder) };
    });
  }

  /** Extends the lease of this worker's running tasks; returns the ids it still holds and which of them were cancelled. */
  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: Date): Promise<{ held: Set<string>; cancelled: Set<string> }> {
    if (ids.length === 0) return { held: new Set(), cancelled: new Set() };
    const rows = await this.db
      .updateTable('background_tasks')
      .set({ lease_expires_at: iso(leaseUntil) })
      .where('id', 'in', [...ids])
      .where('worker_id', '=', workerId)
      .where('status', '=', 'RUNNING')
      .returning(['id', 'cancelled'])
      .execute();
    return { held: new Set(rows.map((r) => r.id)), cancelled: new Set(rows.filter((r) => r.cancelled === 1).map((r) => r.id)) };
  }

  /** Whether cancel was requested for the task (read before deciding to retry a failed attempt). */
  async isCancelled(id: string): Promise<boolean> {
    const row = await this.db.selectFrom('background_tasks').select('cancelled').where('id', '=', id).executeTakeFirst();
    return row?.cancelled === 1;
  }

  /**
   * Records a failed attempt of a held task: READY again at `retryAt`, or FAILED (dead-lettered unless
   * cancelled). Returns the new record, or null when the worker no longer held the attempt.
   */
  async fail(
    task: TaskRecord,
    input: { errors: readonly TaskErrorInfo[]; now: Date; retryAt: Date | null; cancelled: boolean },
  ): Promise<TaskRecord | null> {
    const base = { errors: serializeErrors(input.errors), lease_expires_at: null };
    const set =
      input.retryAt !== null
        ? { ...base, status: 'READY', run_after: iso(input.retryAt) }
        : { ...base, status: 'FAILED', finished_at: iso(input.now), dead_lettered: input.cancelled ? 0 : 1, cancelled: input.cancelled ? 1 : 0 };
    const row = await this.db
      .updateTable('background_tasks')
      .set(set)
      .where('id', '=', task.id)
      .where('worker_id', '=', task.workerId)
      .where('attempts', '=', task.attempts)
      .where('status', '=', 'RUNNING')
      .returningAll()
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  /** Hands running tasks back on a graceful shutdown: READY now, the interrupted attempt not counted. */
  async release(workerId: string, ids: readonly string[], now: Date): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db
      .updateTable('background_tasks')
      .set({ status: 'READY', attempts: sql`attempts - 1`, run_after: iso(now), lease_expires_at: null })
      .where('id', 'in', [...ids])
      .where('worker_id', '=', workerId)
      .where('status', '=', 'RUNNING')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Takes back tasks whose worker stopped heartbeating (crashed, killed, partitioned). The lost attempt
   * counts as failed with a "WorkerLost" error: READY at once while attempts remain, else FAILED and
   * dead-lettered. Returns the records that reached a terminal state.
   */
  async reapExpired(now: Date, limit = 100): Promise<TaskRecord[]> {
    const nowIso = iso(now);
    return this.writeTransaction(async (db) => {
      let q = db
        .selectFrom('background_tasks')
        .selectAll()
        // A literal, not a parameter: the lease index holds RUNNING rows only (migration 0018).
        .where('status', '=', sql.lit('RUNNING'))
        .where('lease_expires_at', '<', nowIso)
        .orderBy('lease_expires_at')
        .limit(limit);
      if (this.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const rows = await q.execute();
      const finished: TaskRecord[] = [];
      for (const row of rows) {
        const record = toRecord(row);
        const errors = serializeErrors([
          ...record.errors,
          {
            attempt: record.attempts,
            errorClass: 'WorkerLost',
            message: `worker ${record.workerId ?? '?'} stopped renewing its lease (crashed or killed); lease expired at ${row.lease_expires_at}`,
            stack: null,
            at: now,
          },
        ]);
        const terminal = record.cancelled || record.attempts >= record.maxAttempts;
        const set = terminal
          ? { status: 'FAILED', errors, finished_at: nowIso, lease_expires_at: null, dead_lettered: record.cancelled ? 0 : 1 }
          : { status: 'READY', errors, run_after: nowIso, lease_expires_at: null };
        const updated = await db
          .updateTable('background_tasks')
          .set(set)
          .where('id', '=', row.id)
          .where('status', '=', 'RUNNING')
          .where('lease_expires_at', '=', row.lease_expires_at)
          .returningAll()
          .executeTakeFirst();
        if (updated && terminal) finished.push(toRecord(updated));
      }
      return finished;
    });
  }

  /** READY → FAILED+cancelled. Returns the record when it was READY. */
  async cancelReady(id: string, now: Date): Promise<TaskRecord | null> {
    const row = await this.db
      .updateTable('background_tasks')
      .set({ status: 'FAILED', cancelled: 1, finished_at: iso(now) })
      .where('id', '=', id)
      .where('status', '=', 'READY')
      .returningAll()
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  /** Flags a RUNNING task as cancelled; its worker aborts it. */
  async flagCancelRunning(id: string): Promise<void> {
    await this.db.updateTable('background_tasks').set({ cancelled: 1 }).where('id', '=', id).where('status', '=', 'RUNNING').execute();
  }

  /** FAILED → READY now, attempts reset, flags cleared (errors kept for the record). */
  async requeue(id: string, now: Date): Promise<TaskRecord | null> {
    const row = await this.db
      .updateTable('background_tasks')
      .set({ status: 'READY', attempts: 0, dead_lettered: 0, cancelled: 0, finished_at: null, run_after: iso(now), lease_expires_at: null })
      .where('id', '=', id)
      .where('status', '=', 'FAILED')
      .returningAll()
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async saveProgress(id: string, fraction: number, message: string | null, now: Date): Promise<void> {
    await this.db
      .updateTable('background_tasks')
      .set({ progress_fraction: fraction, progress_message: message, progress_at: iso(now) })
      .where('id', '=', id)
      .where('status', '=', 'RUNNING')
      .execute();
  }

  /** Deletes finished results finished before the cutoffs. */
  async prune(now: Date, retentionMs: number, deadRetentionMs: number): Promise<number> {
    const result = await this.db
      .deleteFrom('background_tasks')
      .where('status', 'in', ['SUCCESSFUL', 'FAILED'])
      .where((eb) =>
        eb.or([
          eb.and([eb('dead_lettered', '=', 0), eb('finished_at', '<', iso(new Date(now.getTime() - retentionMs)))]),
          eb.and([eb('dead_lettered', '=', 1), eb('finished_at', '<', iso(new Date(now.getTime() - deadRetentionMs)))]),
        ]),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // ---- schedules ----

  /**
   * Creates or updates schedules (and with `removeOthers` deletes the rest). A new schedule, or one whose cron or time zone changed, gets
   * `firstTick(spec)` as its next tick; an unchanged one keeps its next tick (so restarting workers
   * never re-fires or skips a tick).
   */
  async upsertSchedules(specs: readonly ScheduleSpec[], firstTick: (spec: ScheduleSpec) => Date, now: Date, removeOthers: boolean): Promise<void> {
    await this.writeTransaction(async (db) => {
      if (removeOthers) {
        let stale = db.deleteFrom('background_task_schedules');
        if (specs.length > 0) stale = stale.where('name', 'not in', specs.map((s) => s.name));
        await stale.execute();
      }
      if (specs.length === 0) return;
      const existing = await db
        .selectFrom('background_task_schedules')
        .selectAll()
        .where('name', 'in', specs.map((s) => s.name))
        .execute();
      const byName = new Map(existing.map((r) => [r.name, r]));
      const fresh = specs.filter((s) => !byName.has(s.name));
      if (fresh.length > 0) {
        await db
          .insertInto('background_task_schedules')
          .values(
            fresh.map((s) => ({
              name: s.name,
              cron: s.cron,
              timezone: s.timezone,
              task_name: s.taskName,
              template: JSON.stringify(s.template),
              next_tick_at: iso(firstTick(s)),
              updated_at: iso(now),
            })),
          )
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
      }
      for (const s of specs) {
        const old = byName.get(s.name);
        if (!old) continue;
        const timingChanged = old.cron !== s.cron || old.timezone !== s.timezone;
        const template = JSON.stringify(s.template);
        if (!timingChanged && old.template === template && old.task_name === s.taskName) continue;
        await db
          .updateTable('background_task_schedules')
          .set({
            cron: s.cron,
            timezone: s.timezone,
            task_name: s.taskName,
            template,
            updated_at: iso(now),
            ...(timingChanged ? { next_tick_at: iso(firstTick(s)) } : {}),
          })
          .where('name', '=', s.name)
          .execute();
      }
    });
  }

  async dueSchedules(now: Date): Promise<DueSchedule[]> {
    const rows = await this.db.selectFrom('background_task_schedules').selectAll().where('next_tick_at', '<=', iso(now)).execute();
    return rows.map((r) => ({
      name: r.name,
      cron: r.cron,
      timezone: r.timezone,
      template: JSON.parse(r.template) as ScheduleTemplate,
      nextTickAt: new Date(r.next_tick_at),
    }));
  }

  /**
   * Fires one tick: advances next_tick_at from `tick` to `next` with compare-and-set and, only if this
   * caller won, enqueues `request` in the same transaction. Two workers racing for the same tick: one
   * update matches, the other matches nothing, so exactly one run is enqueued.
   */
  async fireTick(name: string, tick: Date, next: Date, request: EnqueueRequest): Promise<TaskRecord | null> {
    return this.writeTransaction(async (db) => {
      const advanced = await db
        .updateTable('background_task_schedules')
        .set({ next_tick_at: iso(next) })
        .where('name', '=', name)
        .where('next_tick_at', '=', iso(tick))
        .executeTakeFirst();
      if (Number(advanced.numUpdatedRows) !== 1) return null;
      const { record, created } = await this.insert(request, db);
      return created ? record : null;
    });
  }
}

function toRow(req: EnqueueRequest): TaskRow {
  return {
    id: req.id,
    task_name: req.taskName,
    queue: req.queue,
    priority: req.priority,
    status: 'READY',
    args: JSON.stringify(req.args),
    attempts: 0,
    max_attempts: req.maxAttempts,
    backoff_base_ms: req.backoff.baseMs,
    backoff_cap_ms: req.backoff.capMs,
    backoff_jitter: req.backoff.jitter ? 1 : 0,
    timeout_ms: req.timeoutMs,
    idempotency_key: req.idempotencyKey,
    enqueued_at: iso(req.enqueuedAt),
    run_after: iso(req.runAfter),
    started_at: null,
    last_attempted_at: null,
    finished_at: null,
    errors: '[]',
    return_value: null,
    dead_lettered: 0,
    cancelled: 0,
    worker_id: null,
    lease_expires_at: null,
    progress_fraction: null,
    progress_message: null,
    progress_at: null,
  };
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function byClaimOrder(a: TaskRecord, b: TaskRecord): number {
  return b.priority - a.priority || a.runAfter.getTime() - b.runAfter.getTime() || (a.id < b.id ? -1 : 1);
}

function serializeErrors(errors: readonly TaskErrorInfo[]): string {
  return JSON.stringify(errors.map((e) => ({ attempt: e.attempt, class: e.errorClass, message: e.message, stack: e.stack, at: iso(e.at) })));
}

function toRecord(row: TaskRow): TaskRecord {
  const errors = (JSON.parse(row.errors) as Array<{ attempt: number; class: string; message: string; stack: string | null; at: string }>).map(
    (e): TaskErrorInfo => ({ attempt: e.attempt, errorClass: e.class, message: e.message, stack: e.stack, at: new Date(e.at) }),
  );
  return {
    id: row.id,
    taskName: row.task_name,
    queue: row.queue,
    priority: row.priority,
    status: row.status as TaskStatus,
    args: JSON.parse(row.args) as JsonValue,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    backoff: { baseMs: row.backoff_base_ms, capMs: row.backoff_cap_ms, jitter: row.backoff_jitter === 1 },
    timeoutMs: row.timeout_ms,
    idempotencyKey: row.idempotency_key,
    enqueuedAt: new Date(row.enqueued_at),
    runAfter: new Date(row.run_after),
    startedAt: toDate(row.started_at),
    lastAttemptedAt: toDate(row.last_attempted_at),
    finishedAt: toDate(row.finished_at),
    errors,
    returnValue: row.return_value === null ? undefined : (JSON.parse(row.return_value) as JsonValue),
    deadLettered: row.dead_lettered === 1,
    cancelled: row.cancelled === 1,
    workerId: row.worker_id,
    progress:
      row.progress_fraction === null ? null : { fraction: row.progress_fraction, message: row.progress_message, at: new Date(row.progress_at ?? row.enqueued_at) },
  };
}
