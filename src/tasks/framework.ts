import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { BackendCapabilities, BackendWorker, ExecutionOutcome, TaskBackend, TaskBackendFactory } from './backend.port.ts';
import { TaskCancelledError, TaskTimeoutError, TaskWaitTimeoutError, UnrecoverableError } from './errors.ts';
import { cloneJson, jsonProblem, NOT_JSON } from './json.ts';
import { scheduleProblem } from '../lib/cron.ts';
import { NAME_RE } from './names.ts';
import { TaskResult, type TaskResultSource } from './task-result.ts';
import {
  DEFAULT_BACKOFF,
  TASK_ID_RE,
  TASK_STATUSES,
  type BackoffPolicy,
  type EnqueueOptions,
  type JsonValue,
  type ScheduleSpec,
  type TaskListFilter,
  type TaskOptions,
  type TaskRecord,
} from './types.ts';

/** What a handler receives besides its arguments. */
export interface TaskContext {
  /** 1-based number of this attempt. */
  readonly attempt: number;
  /** The task's result as it was when this attempt started (status RUNNING). */
  readonly taskResult: TaskResult;
  /** Aborts on cancellation, on timeout, and when a worker shuts down; pass it to fetch/streams and stop early. */
  readonly signal: AbortSignal;
  /** Records progress (0..1 and an optional message) on the result, visible to getResult/admin API. */
  reportProgress(fraction: number, message?: string): Promise<void>;
  readonly logger: Logger;
}

export type TaskHandler<A, R> = (args: A, ctx: TaskContext) => Promise<R> | R;

/** A defined task: enqueue it. Handlers run only in workers; any process may enqueue. */
export interface TaskDefinition<A = JsonValue, R = JsonValue> {
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  readonly timeoutMs: number | null;
  enqueue(args: A, options?: EnqueueOptions): Promise<TaskResult<R>>;
}

interface RegisteredTask {
  readonly definition: TaskDefinition<unknown, unknown>;
  readonly handler: TaskHandler<unknown, unknown>;
}

export interface TaskEvents {
  enqueued: [TaskResult];
  started: [TaskResult];
  finished: [TaskResult];
}

export interface TaskWorkerOptions {
  /** Queue names; empty or omitted = all queues. */
  queues?: readonly string[];
  /** Attempts at once; default from config (STORMVAULT_TASKS_CONCURRENCY). */
  concurrency?: number;
  workerId?: string;
}

/** A worker of this process. Create with `app.tasks.createWorker()` (idle) or `startWorker()` (running). */
export interface TaskWorker {
  readonly id: string;
  readonly running: number;
  /** Stores this process's schedules, then starts the background loop. */
  start(): Promise<void>;
  /** Test hook (backends with `capabilities.manualDrive`): one claim-and-run round; resolves with the attempts run. */
  runOnce(): Promise<number>;
  /** Test hook: runOnce() until a round runs nothing (due tasks only; the clock decides what is due). */
  drain(): Promise<number>;
  /** Graceful stop: see BackendWorker.stop. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

export interface TaskFrameworkOptions {
  clock: Clock;
  logger: Logger;
  backend: TaskBackendFactory;
  /** How long finished results are kept (ms). */
  retentionMs: number;
  /** How long dead-lettered results are kept (ms). */
  deadRetentionMs: number;
  /** Default worker concurrency. */
  concurrency: number;
  /** Default grace period for a worker's graceful stop (ms). */
  shutdownGraceMs: number;
  /** How often wait() polls a backend without waitUntilFinished (wall-time ms). Default 50. */
  waitPollMs?: number;
}

export { NAME_RE } from './names.ts';
const MAX_KEY_LENGTH = 200;

/**
 * The task framework of one app (`app.tasks`): a registry of task definitions, a backend, workers and
 * schedules. No globals: every app instance has its own registry, so tests build as many as they like.
 *
 * ```ts
 * const rebuild = app.tasks.define({ name: 'storage.rebuild_index', maxAttempts: 3 }, async (args: { userId: string }, ctx) => { … });
 * const result = await rebuild.enqueue({ userId }, { idempotencyKey: `rebuild:${userId}` });
 * await result.wait({ timeoutMs: 30_000 });
 * ```
 * See docs/tasks.md.
 */
export class TaskFramework {
  readonly backend: TaskBackend;
  readonly #options: TaskFrameworkOptions;
  readonly #registry = new Map<string, RegisteredTask>();
  readonly #schedules = new Map<string, ScheduleSpec>();
  readonly #cronsChecked = new WeakSet<ScheduleSpec>();
  readonly #events = new EventEmitter();
  readonly #workers = new Set<TaskWorker>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #source: TaskResultSource;
  #closed = false;

  constructor(options: TaskFrameworkOptions) {
    this.#options = options;
    // A listener that throws must not break task processing.
    this.#events.on('error', (err) => options.logger.error({ err }, 'task event listener failed'));
    this.#source = { fetch: (id) => this.backend.get(id), waitFor: (id, ms) => this.#waitFor(id, ms) };
    this.backend = options.backend({
      clock: options.clock,
      logger: options.logger,
      execute: (record, signal) => this.#execute(record, signal),
      onEnqueued: (record) => this.#emit('enqueued', record),
      onFinished: (record) => {
        this.#logFinished(record);
        this.#emit('finished', record);
        const waiters = this.#waiters.get(record.id);
        if (waiters) for (const wake of waiters) wake();
      },
      retentionMs: options.retentionMs,
      deadRetentionMs: options.deadRetentionMs,
    });
  }

  get backendKind(): string {
    return this.backend.kind;
  }

  get capabilities(): BackendCapabilities {
    return this.backend.capabilities;
  }

  /**
   * Registers a task. Call it while building the app (before any worker starts); names are unique per
   * app. Arguments and return values must survive a JSON round trip.
   */
  define<A = JsonValue, R = JsonValue>(options: TaskOptions, handler: TaskHandler<A, R>): TaskDefinition<A, R> {
    const problems: string[] = [];
    if (typeof options.name !== 'string' || !NAME_RE.test(options.name)) problems.push(`name "${options.name}" must match ${NAME_RE}`);
    const queue = options.queue ?? 'default';
    if (!NAME_RE.test(queue)) problems.push(`queue "${queue}" must match ${NAME_RE}`);
    const priority = options.priority ?? 0;
    if (!isPriority(priority)) problems.push('priority must be a whole number from -100 to 100');
    const maxAttempts = options.maxAttempts ?? 3;
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) problems.push('maxAttempts must be a whole number from 1 to 1000');
    const backoff: BackoffPolicy = { ...DEFAULT_BACKOFF, ...options.backoff };
    if (!(backoff.baseMs >= 0) || !(backoff.capMs >= backoff.baseMs)) problems.push('backoff needs 0 <= baseMs <= capMs');
    const timeoutMs = options.timeoutMs ?? null;
    if (timeoutMs !== null && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0)) problems.push('timeoutMs must be a positive whole number');
    if (typeof handler !== 'function') problems.push('handler must be a function');
    if (this.#registry.has(options.name)) problems.push(`a task named "${options.name}" is already defined`);
    if (problems.length) throw new AppError('invalid_request', `task ${options.name}: ${problems.join('; ')}`);

    const definition: TaskDefinition<A, R> = Object.freeze({
      name: options.name,
      queue,
      priority,
      maxAttempts,
      backoff: Object.freeze(backoff),
      timeoutMs,
      enqueue: (args: A, enqueueOptions?: EnqueueOptions) => this.enqueue(options.name, args, enqueueOptions) as Promise<TaskResult<R>>,
    });
    this.#registry.set(options.name, { definition: definition as TaskDefinition<unknown, unknown>, handler: handler as TaskHandler<unknown, unknown> });
    return definition;
  }

  /** The definitions of this app, by name. */
  definitions(): TaskDefinition<unknown, unknown>[] {
    return [...this.#registry.values()].map((t) => t.definition);
  }

  /** Enqueues a defined task by name (what `definition.enqueue` calls). */
  async enqueue(taskName: string, args: unknown, options: EnqueueOptions = {}): Promise<TaskResult> {
    this.#assertOpen();
    const task = this.#registry.get(taskName);
    if (!task) throw new AppError('invalid_request', `no task named "${taskName}" is defined`);
    // One pass checks the arguments and copies them, so the caller mutating its object later cannot change what runs.
    const argsCopy = cloneJson(args === undefined ? null : args);
    if (argsCopy === NOT_JSON) {
      throw new AppError('invalid_request', `task ${taskName}: arguments must survive a JSON round trip: ${jsonProblem(args)}`);
    }
    if (options.priority !== undefined && !isPriority(options.priority)) {
      throw new AppError('invalid_request', 'priority must be a whole number from -100 to 100');
    }
    if (options.runAfter !== undefined && !(options.runAfter instanceof Date && Number.isFinite(options.runAfter.getTime()))) {
      throw new AppError('invalid_request', 'runAfter must be a valid Date');
    }
    const key = options.idempotencyKey;
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH)) {
      throw new AppError('invalid_request', `idempotencyKey must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
    }
    const now = this.#options.clock.now();
    const d = task.definition;
    const { record } = await this.backend.enqueue({
      id: randomUUID(),
      taskName,
      queue: d.queue,
      priority: options.priority ?? d.priority,
      args: argsCopy,
      maxAttempts: d.maxAttempts,
      backoff: d.backoff,
      timeoutMs: d.timeoutMs,
      idempotencyKey: key ?? null,
      enqueuedAt: now,
      runAfter: options.runAfter ?? now,
    });
    return new TaskResult(this.#source, record);
  }

  /** A result by id from any process sharing the backend; not_found when unknown or pruned. */
  async getResult<R = JsonValue>(id: string): Promise<TaskResult<R>> {
    // Checked here, not per surface: the admin API's id param and the CLI both end up here (cancel/retry too).
    const record = typeof id === 'string' && TASK_ID_RE.test(id) ? await this.backend.get(id) : null;
    if (!record) throw new AppError('not_found', `no task with id "${id}"`);
    return new TaskResult<R>(this.#source, record);
  }

  /** Results matching the filter, newest first. */
  async list(filter: TaskListFilter = {}): Promise<TaskResult[]> {
    if (filter.status !== undefined && !TASK_STATUSES.includes(filter.status)) {
      throw new AppError('invalid_request', `status must be one of ${TASK_STATUSES.join(', ')}`);
    }
    // The CLI passes --queue/--name straight through; check them here so no caller reaches the backend unvalidated.
    for (const [key, value] of [['queue', filter.queue], ['task name', filter.taskName]] as const) {
      if (value !== undefined && (typeof value !== 'string' || !NAME_RE.test(value))) {
        throw new AppError('invalid_request', `${key} "${value}" must match ${NAME_RE}`);
      }
    }
    if (filter.limit !== undefined && !(Number.isSafeInteger(filter.limit) && filter.limit >= 1 && filter.limit <= 1000)) {
      throw new AppError('invalid_request', 'limit must be a whole number from 1 to 1000');
    }
    const records = await this.backend.list(filter);
    return records.map((r) => new TaskResult(this.#source, r));
  }

  /** Dead-lettered results (FAILED after their last attempt), newest first. */
  deadLetters(limit = 100): Promise<TaskResult[]> {
    return this.list({ deadLettered: true, limit });
  }

  /**
   * Cancels a READY task (it never runs) or a RUNNING one (its signal aborts; it ends FAILED with
   * `cancelled`). A finished task is a conflict.
   */
  async cancel(id: string): Promise<TaskResult> {
    const current = await this.getResult(id);
    if (current.isFinished) throw new AppError('conflict', `task ${id} already finished (${current.status}); nothing to cancel`);
    const record = await this.backend.cancel(id);
    if (!record) throw new AppError('not_found', `no task with id "${id}"`);
    return new TaskResult(this.#source, record);
  }

  /** Requeues a FAILED (dead-lettered or cancelled) task: READY now, attempts from zero. */
  async retry(id: string): Promise<TaskResult> {
    const current = await this.getResult(id);
    if (current.status !== 'FAILED') throw new AppError('conflict', `task ${id} is ${current.status}; only FAILED tasks can be retried`);
    const record = await this.backend.requeue(id);
    if (!record) throw new AppError('not_found', `no task with id "${id}"`);
    // Not re-checked: the immediate backend has already run it again, and another process may have requeued it too.
    return new TaskResult(this.#source, record);
  }

  /**
   * Registers a periodic schedule: on each cron tick (in `timezone`, default UTC) `task` is enqueued with
   * `args`, exactly once across all workers. Register while building the app; workers store the
   * schedules when they start.
   *
   * The cron expression and the time zone are checked when the schedules are stored: at the latest when
   * this app's first worker starts (its start() rejects), at once when a worker already runs. Checking one
   * loads cron-parser and the time-zone data, which an app that never runs a worker (a one-shot CLI
   * command) need not pay for on every run (issue 12, CLI start-up); schedules from settings are checked
   * when the config loads.
   */
  schedule(spec: { name: string; cron: string; timezone?: string; task: string | TaskDefinition<any, any>; args?: unknown }): void {
    const taskName = typeof spec.task === 'string' ? spec.task : spec.task.name;
    const timezone = spec.timezone ?? 'UTC';
    const problems: string[] = [];
    if (typeof spec.name !== 'string' || !NAME_RE.test(spec.name)) problems.push(`name "${spec.name}" must match ${NAME_RE}`);
    if (!this.#registry.has(taskName)) problems.push(`no task named "${taskName}" is defined`);
    if (typeof spec.cron !== 'string') problems.push('cron must be a string');
    else if (this.#workers.size > 0) {
      const cronProblem = scheduleProblem(spec.cron, timezone);
      if (cronProblem) problems.push(cronProblem);
    }
    const argsCopy = cloneJson(spec.args ?? null);
    if (argsCopy === NOT_JSON) problems.push(`args must survive a JSON round trip: ${jsonProblem(spec.args)}`);
    if (this.#schedules.has(spec.name)) problems.push(`a schedule named "${spec.name}" is already registered`);
    if (problems.length) throw new AppError('invalid_request', `schedule ${spec.name}: ${problems.join('; ')}`);
    const d = this.#registry.get(taskName)!.definition;
    const args = argsCopy as JsonValue; // NOT_JSON was refused above
    const stored: ScheduleSpec = Object.freeze({
      name: spec.name,
      cron: spec.cron,
      timezone,
      taskName,
      args,
      template: { taskName, queue: d.queue, priority: d.priority, args, maxAttempts: d.maxAttempts, backoff: d.backoff, timeoutMs: d.timeoutMs },
    });
    this.#schedules.set(spec.name, stored);
    if (this.#workers.size > 0) {
      this.backend.upsertSchedules([stored]).catch((err) => this.#options.logger.error({ err, schedule: spec.name }, 'storing a schedule failed'));
    }
  }

  /** The schedules registered in this process. */
  schedules(): ScheduleSpec[] {
    return [...this.#schedules.values()];
  }

  /** Throws for the first registered schedule whose cron expression or time zone is unusable (see schedule()). */
  #checkCrons(): void {
    for (const s of this.#schedules.values()) {
      if (this.#cronsChecked.has(s)) continue;
      const problem = scheduleProblem(s.cron, s.timezone);
      if (problem) throw new AppError('invalid_request', `schedule ${s.name}: ${problem}`);
      this.#cronsChecked.add(s);
    }
  }

  /** Subscribes to enqueued / started / finished; returns the unsubscribe function. */
  on<E extends keyof TaskEvents>(event: E, listener: (...args: TaskEvents[E]) => void): () => void {
    this.#events.on(event, listener as (...a: unknown[]) => void);
    return () => this.#events.off(event, listener as (...a: unknown[]) => void);
  }

  /** A worker for this process, not yet running (tests drive it with runOnce/drain). */
  createWorker(options: TaskWorkerOptions = {}): TaskWorker {
    this.#assertOpen();
    const queues = [...new Set(options.queues ?? [])];
    for (const q of queues) if (!NAME_RE.test(q)) throw new AppError('invalid_request', `queue "${q}" must match ${NAME_RE}`);
    const concurrency = options.concurrency ?? this.#options.concurrency;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
      throw new AppError('invalid_request', 'concurrency must be a whole number from 1 to 1000');
    }
    const id = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const inner: BackendWorker = this.backend.createWorker({ workerId: id, queues, concurrency });
    let schedulesStored: Promise<void> | undefined;
    const storeSchedules = () =>
      (schedulesStored ??= (async () => {
        this.#checkCrons();
        await this.backend.upsertSchedules(this.schedules(), { removeOthers: true });
      })());
    const framework = this;
    const worker: TaskWorker = {
      id,
      get running() {
        return inner.running;
      },
      async start() {
        await storeSchedules();
        inner.start();
      },
      async runOnce() {
        if (!inner.runOnce) throw new Error(`the ${framework.backend.kind} backend cannot be driven step by step`);
        await storeSchedules();
        return inner.runOnce();
      },
      async drain() {
        let total = 0;
        for (let round = 0; round < 10_000; round++) {
          const ran = await worker.runOnce();
          if (ran === 0) return total;
          total += ran;
        }
        throw new Error('drain(): still finding work after 10000 rounds');
      },
      async stop(stopOptions) {
        try {
          await inner.stop({ graceMs: stopOptions?.graceMs ?? framework.#options.shutdownGraceMs });
        } finally {
          framework.#workers.delete(worker);
        }
      },
    };
    this.#workers.add(worker);
    return worker;
  }

  /** createWorker() + start(). */
  async startWorker(options: TaskWorkerOptions = {}): Promise<TaskWorker> {
    const worker = this.createWorker(options);
    await worker.start();
    return worker;
  }

  /** Deletes results past their retention (workers also do this on their own). */
  prune(): Promise<number> {
    return this.backend.prune();
  }

  /** Stops this process's workers (graceful, with the default grace) and releases the backend. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#workers].map((w) => w.stop()));
    await this.backend.close();
  }

  #logFinished(record: TaskRecord): void {
    const fields = { task: record.taskName, taskId: record.id, queue: record.queue, attempts: record.attempts, workerId: record.workerId };
    if (record.status === 'SUCCESSFUL') this.#options.logger.debug(fields, 'task succeeded');
    else if (record.cancelled) this.#options.logger.info(fields, 'task cancelled');
    else this.#options.logger.error({ ...fields, lastError: record.errors.at(-1)?.message }, 'task failed and was dead-lettered');
  }

  #assertOpen(): void {
    if (this.#closed) throw new AppError('unavailable', 'the task framework is closed');
  }

  #emit(event: keyof TaskEvents, record: TaskRecord): void {
    if (this.#events.listenerCount(event) === 0) return;
    try {
      this.#events.emit(event, new TaskResult(this.#source, record));
    } catch (err) {
      this.#options.logger.error({ err, event, taskId: record.id }, 'task event listener failed');
    }
  }

  async #waitFor(id: string, timeoutMs: number): Promise<TaskRecord> {
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) throw new AppError('invalid_request', 'timeoutMs must be a number >= 0');
    if (this.backend.waitUntilFinished) {
      const record = await this.backend.waitUntilFinished(id, timeoutMs);
      if (!record) throw new TaskWaitTimeoutError(id, timeoutMs);
      return record;
    }
    // Wall time on purpose: wait() bounds how long the CALLER blocks, whatever the injected clock says.
    const deadline = performance.now() + timeoutMs;
    const pollMs = this.#options.waitPollMs ?? 50;
    for (;;) {
      const record = await this.backend.get(id);
      if (!record) throw new AppError('not_found', `no task with id "${id}"`);
      if (record.status === 'SUCCESSFUL' || record.status === 'FAILED') return record;
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new TaskWaitTimeoutError(id, timeoutMs);
      await this.#sleepUntilFinishedOr(id, Math.min(pollMs, remaining));
    }
  }

  /** Sleeps `ms`, or less when this process sees the task finish. */
  #sleepUntilFinishedOr(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      const wake = () => {
        clearTimeout(timer);
        set!.delete(wake);
        if (set!.size === 0) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }

  /**
   * TaskExecutor: one attempt of a claimed task in this process. Never throws.
   * Runs once per attempt, so it allocates only what the attempt uses: the backend's signal is passed on
   * as is unless a timeout needs a signal of its own, and the logger child and the context's TaskResult
   * are made on first use (bench/tasks.ts, docs/tasks.md "Performance").
   */
  async #execute(record: TaskRecord, backendSignal: AbortSignal): Promise<ExecutionOutcome> {
    const task = this.#registry.get(record.taskName);
    if (!task) {
      return failure(new UnrecoverableError(`no task named "${record.taskName}" is defined in this worker process`), false, false);
    }
    // Backends abort their signal with a reason (TaskCancelledError, WorkerShutdownError, …); a timeout
    // adds its own reason, so only then is a second controller needed.
    let signal = backendSignal;
    let timer: NodeJS.Timeout | null = null;
    let onBackendAbort: (() => void) | null = null;
    if (record.timeoutMs !== null) {
      const controller = new AbortController();
      onBackendAbort = () => controller.abort(backendSignal.reason ?? new TaskCancelledError());
      if (backendSignal.aborted) onBackendAbort();
      else backendSignal.addEventListener('abort', onBackendAbort, { once: true });
      timer = setTimeout(() => controller.abort(new TaskTimeoutError(record.timeoutMs!)), record.timeoutMs);
      signal = controller.signal;
    }
    const ctx = new AttemptContext(record, signal, this.#source, this.#options.logger, this.backend);
    this.#emit('started', record);
    let onAbort: (() => void) | null = null;
    try {
      // The handler's outcome, or the signal's reason as soon as it aborts (a handler ignoring its signal
      // does not hold the attempt open). The abort is wired first, as the race it replaces did: an
      // already aborted signal wins, and the handler is still called (as before: it may clean up).
      // A plain value resolves, a throw rejects, a returned promise settles this one when it settles
      // (not resolve(promise): that would lock this promise and ignore a later abort).
      const value = await new Promise<unknown>((resolve, reject) => {
        if (signal.aborted) reject(signal.reason);
        else {
          onAbort = () => reject(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
        }
        try {
          const out = task.handler(record.args, ctx);
          if (isThenable(out)) Promise.resolve(out).then(resolve, reject);
          else resolve(out);
        } catch (err) {
          reject(err);
        }
      });
      const returned = cloneJson(value === undefined ? null : value);
      if (returned === NOT_JSON) return failure(new UnrecoverableError(`the return value must survive a JSON round trip: ${jsonProblem(value)}`), false, false);
      return { ok: true, value: returned };
    } catch (err) {
      const cancelled = err instanceof TaskCancelledError || (signal.aborted && signal.reason instanceof TaskCancelledError);
      if (cancelled) return failure(err instanceof Error ? err : new TaskCancelledError(), false, true);
      ctx.logger.warn({ err }, 'task attempt failed');
      return failure(err, !(err instanceof UnrecoverableError), false);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      if (onBackendAbort) backendSignal.removeEventListener('abort', onBackendAbort);
    }
  }
}

/**
 * The TaskContext of one attempt. A class, not an object literal with getters: a literal's accessors
 * cost a closure pair per attempt. The logger child and the TaskResult are made on first use (most
 * handlers use neither); reportProgress stays an own function, so destructuring it keeps working.
 */
class AttemptContext implements TaskContext {
  readonly attempt: number;
  readonly signal: AbortSignal;
  readonly reportProgress: (fraction: number, message?: string) => Promise<void>;
  readonly #record: TaskRecord;
  readonly #source: TaskResultSource;
  readonly #baseLogger: Logger;
  #taskResult: TaskResult | undefined;
  #logger: Logger | undefined;

  constructor(record: TaskRecord, signal: AbortSignal, source: TaskResultSource, logger: Logger, backend: TaskBackend) {
    this.attempt = record.attempts;
    this.signal = signal;
    this.#record = record;
    this.#source = source;
    this.#baseLogger = logger;
    this.reportProgress = async (fraction: number, message?: string) => {
      if (!(typeof fraction === 'number' && fraction >= 0 && fraction <= 1)) throw new AppError('invalid_request', 'progress must be a number from 0 to 1');
      const text = message === undefined ? null : String(message).slice(0, 1000);
      await backend.saveProgress(record.id, fraction, text);
    };
  }

  get taskResult(): TaskResult {
    return (this.#taskResult ??= new TaskResult(this.#source, this.#record));
  }

  get logger(): Logger {
    const r = this.#record;
    return (this.#logger ??= this.#baseLogger.child({ task: r.taskName, taskId: r.id, attempt: r.attempts }));
  }
}

function failure(err: unknown, retryable: boolean, cancelled: boolean): ExecutionOutcome {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    ok: false,
    error: { errorClass: e.name && e.name !== 'Error' ? e.name : (e.constructor?.name ?? 'Error'), message: e.message, stack: e.stack ?? null },
    retryable,
    cancelled,
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

function isPriority(p: unknown): p is number {
  return typeof p === 'number' && Number.isSafeInteger(p) && p >= -100 && p <= 100;
}
