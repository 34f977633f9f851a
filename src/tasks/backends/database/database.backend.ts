import { randomUUID } from 'node:crypto';
import type { DialectName } from '../../../db/database.ts';
import type { Db } from '../../../db/schema.ts';
import type {
  BackendWorker,
  BackendWorkerOptions,
  EnqueueOutcome,
  ExecutionOutcome,
  TaskBackend,
  TaskBackendFactory,
  TaskBackendRuntime,
} from '../../backend.port.ts';
import { TaskCancelledError, WorkerShutdownError } from '../../errors.ts';
import { decideAfterFailure } from '../../retry.ts';
import { nextTick } from '../../../lib/cron.ts';
import { scheduleTickKey } from '../../schedule.ts';
import type { EnqueueRequest, JsonValue, ScheduleSpec, TaskListFilter, TaskRecord } from '../../types.ts';
import { TasksRepository } from './tasks.repository.ts';

export interface DatabaseBackendOptions {
  db: Db;
  dialect: DialectName;
  /** A claimed task's lease; heartbeats renew it every leaseMs/3. */
  leaseMs: number;
  /** Idle poll interval of the worker loop (wall time). */
  pollMs: number;
}

/**
 * The embedded, durable queue in the app's own database (the default backend). Workers in any number of
 * processes claim due tasks in a write transaction (SQLite BEGIN IMMEDIATE; PostgreSQL FOR UPDATE SKIP
 * LOCKED), hold them under a lease renewed by heartbeats, and record each attempt's outcome guarded by
 * (worker_id, attempts). A task whose worker dies is taken back once its lease expires. Every "now"
 * comes from the injected clock; only the pacing of the loop (poll, heartbeat) uses wall-time timers.
 */
export function databaseBackend(options: DatabaseBackendOptions): TaskBackendFactory {
  return (runtime) => new DatabaseBackend(options, runtime);
}

interface LocalAttempt {
  readonly controller: AbortController;
  readonly workerId: string;
}

class DatabaseBackend implements TaskBackend {
  readonly kind = 'database';
  readonly capabilities = { deferred: true, durable: true, usesInjectedClock: true, manualDrive: true } as const;
  readonly repo: TasksRepository;
  readonly options: DatabaseBackendOptions;
  readonly runtime: TaskBackendRuntime;
  /** Attempts running in this process (any worker), so a cancel from this process aborts at once. */
  readonly local = new Map<string, LocalAttempt>();
  /** Workers of this process, woken when this process enqueues. */
  readonly workers = new Set<DatabaseWorker>();

  constructor(options: DatabaseBackendOptions, runtime: TaskBackendRuntime) {
    this.options = options;
    this.runtime = runtime;
    this.repo = new TasksRepository(options.db, options.dialect);
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueOutcome> {
    const outcome = await new Promise<EnqueueOutcome>((resolve, reject) => {
      this.#pendingEnqueues.push({ request, resolve, reject });
      if (this.#pendingEnqueues.length === 1) setImmediate(() => this.#flushEnqueues());
    });
    if (outcome.created) {
      this.runtime.onEnqueued(outcome.record);
      for (const w of this.workers) w.wake();
    }
    return outcome;
  }

  /**
   * Enqueues arriving in the same turn of the event loop (a burst, Promise.all over many) are written with
   * one multi-row INSERT instead of a statement — and on PostgreSQL a commit, an fsync — per task.
   */
  #pendingEnqueues: Array<{ request: EnqueueRequest; resolve: (o: EnqueueOutcome) => void; reject: (e: unknown) => void }> = [];

  #flushEnqueues(): void {
    const batch = this.#pendingEnqueues;
    this.#pendingEnqueues = [];
    this.repo.insertMany(batch.map((b) => b.request)).then(
      (outcomes) => batch.forEach((b, i) => b.resolve(outcomes[i]!)),
      (err) => batch.forEach((b) => b.reject(err)),
    );
  }

  get(id: string): Promise<TaskRecord | null> {
    return this.repo.get(id);
  }

  list(filter: TaskListFilter): Promise<TaskRecord[]> {
    return this.repo.list(filter);
  }

  async cancel(id: string): Promise<TaskRecord | null> {
    const cancelled = await this.repo.cancelReady(id, this.runtime.clock.now());
    if (cancelled) {
      this.runtime.onFinished(cancelled);
      return cancelled;
    }
    await this.repo.flagCancelRunning(id);
    // Running here: abort now. Running elsewhere: that worker sees the flag at its next heartbeat.
    this.local.get(id)?.controller.abort(new TaskCancelledError());
    return this.repo.get(id);
  }

  async requeue(id: string): Promise<TaskRecord | null> {
    const record = await this.repo.requeue(id, this.runtime.clock.now());
    if (record) for (const w of this.workers) w.wake();
    return record ?? this.repo.get(id);
  }

  saveProgress(id: string, fraction: number, message: string | null): Promise<void> {
    return this.repo.saveProgress(id, fraction, message, this.runtime.clock.now());
  }

  upsertSchedules(specs: readonly ScheduleSpec[], options: { removeOthers?: boolean } = {}): Promise<void> {
    const now = this.runtime.clock.now();
    return this.repo.upsertSchedules(specs, (s) => nextTick(s.cron, s.timezone, now), now, options.removeOthers === true);
  }

  /** Enqueues every due tick (missed ticks coalesce: the next tick is computed from now). */
  async fireDueSchedules(): Promise<number> {
    const now = this.runtime.clock.now();
    let fired = 0;
    for (const s of await this.repo.dueSchedules(now)) {
      const request: EnqueueRequest = {
        ...s.template,
        id: randomUUID(),
        idempotencyKey: scheduleTickKey(s.name, s.nextTickAt),
        enqueuedAt: now,
        runAfter: now,
      };
      const record = await this.repo.fireTick(s.name, s.nextTickAt, nextTick(s.cron, s.timezone, now), request);
      if (record) {
        fired++;
        this.runtime.onEnqueued(record);
      }
    }
    return fired;
  }

  async reapExpired(): Promise<void> {
    const finished = await this.repo.reapExpired(this.runtime.clock.now());
    for (const r of finished) this.runtime.onFinished(r);
  }

  createWorker(options: BackendWorkerOptions): BackendWorker {
    return new DatabaseWorker(this, options);
  }

  prune(): Promise<number> {
    return this.repo.prune(this.runtime.clock.now(), this.runtime.retentionMs, this.runtime.deadRetentionMs);
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop({ graceMs: 0 })));
  }
}

/** Housekeeping a started worker does besides claiming, and how often (wall time). */
const SCHEDULE_EVERY_MS = 1000;
const PRUNE_EVERY_MS = 15 * 60_000;

interface Attempt {
  readonly record: TaskRecord;
  /** Resolves once the handler's outcome is known (queued for the next commit, or a failure recorded). */
  readonly executed: Promise<void>;
  /** Resolves once the outcome is stored (or dropped because the task was handed back). */
  readonly settled: Promise<void>;
}

/**
 * One worker: a loop that, per round, commits the successful attempts that finished since the last
 * round and claims replacements in the SAME transaction (one commit per batch, not per task), then runs
 * them. Failures are recorded at once (they need the retry decision). Heartbeats renew leases.
 */
class DatabaseWorker implements BackendWorker {
  readonly id: string;
  readonly #backend: DatabaseBackend;
  readonly #options: BackendWorkerOptions;
  readonly #running = new Map<string, Attempt>();
  /** Successful attempts waiting for the next round's commit. */
  #completions: Array<{ task: TaskRecord; value: JsonValue; stored: () => void }> = [];
  /** Ids handed back (shutdown, lost lease): their outcome must not be recorded. */
  readonly #released = new Set<string>();
  #started = false;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #lastSchedules = -Infinity;
  #lastReap = -Infinity;
  #lastPrune = -Infinity;

  constructor(backend: DatabaseBackend, options: BackendWorkerOptions) {
    this.#backend = backend;
    this.#options = options;
    this.id = options.workerId;
    backend.workers.add(this);
  }

  get running(): number {
    return this.#running.size;
  }

  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    const leaseMs = this.#backend.options.leaseMs;
    this.#heartbeat = setInterval(() => void this.#beat(), Math.max(50, Math.floor(leaseMs / 3)));
    this.#loop = this.#runLoop();
  }

  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  async #runLoop(): Promise<void> {
    const logger = this.#backend.runtime.logger;
    for (;;) {
      if (this.#stopping && this.#running.size === 0 && this.#completions.length === 0) return;
      this.#woken = false;
      try {
        if (!this.#stopping) await this.#housekeeping(false);
        const { claimed, requested } = await this.#commitAndClaim(!this.#stopping);
        // A full batch suggests more is due: go round again at once.
        if (claimed > 0 && claimed === requested) continue;
      } catch (err) {
        logger.error({ err, workerId: this.id }, 'task worker round failed; retrying after the poll interval');
      }
      if (!this.#woken) await this.#idle(this.#backend.options.pollMs);
    }
  }

  /** Sleeps up to `ms`, or until an attempt finishes / this process enqueues / stop is called. */
  #idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeUp = done;
    });
  }

  async #housekeeping(always: boolean): Promise<void> {
    const t = performance.now();
    const backend = this.#backend;
    if (always || t - this.#lastReap >= Math.min(backend.options.leaseMs / 2, 5000)) {
      this.#lastReap = t;
      await backend.reapExpired();
    }
    if (always || t - this.#lastSchedules >= SCHEDULE_EVERY_MS) {
      this.#lastSchedules = t;
      await backend.fireDueSchedules();
    }
    if (!always && t - this.#lastPrune >= PRUNE_EVERY_MS) {
      this.#lastPrune = t;
      const deleted = await backend.prune();
      if (deleted > 0) backend.runtime.logger.info({ deleted }, 'pruned old task results');
    }
  }

  /** Commits queued successes and (if `claim`) claims as many tasks as there will be free slots. */
  async #commitAndClaim(claim: boolean): Promise<{ claimed: number; requested: number }> {
    const backend = this.#backend;
    const batch = this.#completions;
    this.#completions = [];
    const free = this.#options.concurrency - (this.#running.size - batch.length);
    const requested = claim ? Math.max(0, free) : 0;
    const now = backend.runtime.clock.now();
    let result: { completed: TaskRecord[]; claimed: TaskRecord[] };
    try {
      result = await backend.repo.completeAndClaim({
        completions: batch,
        now,
        claim: requested > 0 ? { workerId: this.id, queues: this.#options.queues, limit: requested, leaseUntil: new Date(now.getTime() + backend.options.leaseMs) } : null,
      });
    } catch (err) {
      // Not stored: the tasks stay RUNNING under our name until their lease expires, then run again
      // elsewhere (at-least-once). Free the slots rather than retry forever.
      for (const c of batch) c.stored();
      throw err;
    }
    for (const c of batch) c.stored();
    for (const record of result.completed) backend.runtime.onFinished(record);
    for (const record of result.claimed) this.#launch(record);
    return { claimed: result.claimed.length, requested };
  }

  #launch(record: TaskRecord): void {
    const backend = this.#backend;
    const controller = new AbortController();
    backend.local.set(record.id, { controller, workerId: this.id });
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const executed = backend.runtime
      .execute(record, controller.signal)
      .then(async (outcome) => {
        if (this.#released.has(record.id)) return settle();
        if (outcome.ok) {
          this.#completions.push({ task: record, value: outcome.value, stored: settle });
          this.wake();
          return;
        }
        try {
          await this.#recordFailure(record, outcome);
        } finally {
          settle();
        }
      })
      .catch((err) => {
        backend.runtime.logger.error({ err, taskId: record.id }, 'recording a task outcome failed; its lease will expire');
        settle();
      });
    const attempt: Attempt = { record, executed, settled };
    this.#running.set(record.id, attempt);
    void settled.then(() => {
      this.#running.delete(record.id);
      backend.local.delete(record.id);
      this.#released.delete(record.id);
      this.wake();
    });
  }

  async #recordFailure(task: TaskRecord, outcome: Extract<ExecutionOutcome, { ok: false }>): Promise<void> {
    const backend = this.#backend;
    const now = backend.runtime.clock.now();
    const cancelled = outcome.cancelled || (await backend.repo.isCancelled(task.id));
    const decision = decideAfterFailure({
      attempts: task.attempts,
      maxAttempts: task.maxAttempts,
      retryable: outcome.retryable && !cancelled,
      policy: task.backoff,
      now,
    });
    const errors = [...task.errors, { attempt: task.attempts, ...outcome.error, at: now }];
    const updated = await backend.repo.fail(task, { errors, now, retryAt: decision.retry ? decision.runAfter : null, cancelled });
    if (updated && updated.status === 'FAILED') backend.runtime.onFinished(updated);
  }

  /** Renews leases; aborts attempts cancelled elsewhere or no longer held (lease lost). */
  async #beat(): Promise<void> {
    const ids = [...this.#running.keys()];
    if (ids.length === 0) return;
    const backend = this.#backend;
    const now = backend.runtime.clock.now();
    try {
      const { held, cancelled } = await backend.repo.heartbeat(this.id, ids, new Date(now.getTime() + backend.options.leaseMs));
      for (const id of ids) {
        const local = backend.local.get(id);
        if (!local || !this.#running.has(id)) continue;
        if (cancelled.has(id)) local.controller.abort(new TaskCancelledError());
        else if (!held.has(id)) {
          // Another worker took the task over after our lease expired; stop duplicating its work.
          this.#released.add(id);
          local.controller.abort(new WorkerShutdownError());
        }
      }
    } catch (err) {
      backend.runtime.logger.warn({ err, workerId: this.id }, 'task heartbeat failed');
    }
  }

  async runOnce(): Promise<number> {
    await this.#housekeeping(true);
    await this.#beat();
    const before = new Set(this.#running.keys());
    const { claimed } = await this.#commitAndClaim(true);
    const started = [...this.#running.entries()].filter(([id]) => !before.has(id)).map(([, a]) => a);
    await Promise.all(started.map((a) => a.executed));
    await this.#commitAndClaim(false);
    await Promise.all(started.map((a) => a.settled));
    return claimed;
  }

  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#stopping && !this.#started) return;
    this.#stopping = true;
    this.wake();
    const graceMs = options.graceMs ?? 0;
    if (this.#loop && this.#running.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#loop, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    const committing = new Set(this.#completions.map((c) => c.task.id));
    const unfinished = [...this.#running.keys()].filter((id) => !committing.has(id) && !this.#released.has(id));
    if (unfinished.length > 0) {
      for (const id of unfinished) this.#released.add(id);
      const backend = this.#backend;
      const released = await backend.repo.release(this.id, unfinished, backend.runtime.clock.now());
      backend.runtime.logger.warn({ workerId: this.id, released }, 'worker stopping: handed running tasks back');
      for (const id of unfinished) backend.local.get(id)?.controller.abort(new WorkerShutdownError());
    }
    if (this.#loop) await this.#loop;
    else if (this.#completions.length > 0) await this.#commitAndClaim(false);
    await Promise.all([...this.#running.values()].map((a) => a.settled));
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#backend.workers.delete(this);
  }
}
