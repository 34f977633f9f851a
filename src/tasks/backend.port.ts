import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { EnqueueRequest, JsonValue, ScheduleSpec, TaskListFilter, TaskRecord } from './types.ts';

/**
 * The port every task backend implements (immediate, database, redis/BullMQ). One conformance suite
 * (test/tasks/conformance.test.ts) runs against every implementation.
 *
 * Division of labour, chosen so that BullMQ can map each duty onto its own feature instead of
 * re-implementing it:
 * - The FRAMEWORK (framework.ts) validates input, owns the task registry (name → handler), builds
 *   EnqueueRequests, and runs one attempt of a handler through the TaskExecutor it hands to the backend
 *   (context, AbortSignal, timeout, JSON checks of the return value).
 * - The BACKEND stores tasks, decides what runs when (queues, priority, delay, idempotency), runs its own
 *   worker loop calling the executor, and OWNS THE RETRY POLICY: after a failed attempt it either
 *   schedules the next attempt after the backoff (see `retryDelayMs` in retry.ts for the shared formula)
 *   or marks the task FAILED and dead-lettered. BullMQ: `attempts`, `backoff` (custom strategy),
 *   `UnrecoverableError`, failed set = dead letter, `upsertJobScheduler`, `waitUntilFinished`.
 *
 * All "now" values come from `runtime.clock` (never Date.now()), so tests can drive backoff and delays
 * with a ManualClock. Backends that cannot (Redis time) say so in `capabilities`.
 */
export interface TaskBackend {
  /** "immediate" | "database" | "redis" — shown by the CLI and the admin API. */
  readonly kind: string;
  readonly capabilities: BackendCapabilities;

  /**
   * Stores a new READY task, or — when `request.idempotencyKey` is already used by a kept task —
   * stores nothing and returns that task with `created: false`. Must be atomic with respect to
   * concurrent enqueues of the same key (two processes racing get the same record).
   * The immediate backend runs the task to completion before resolving.
   */
  enqueue(request: EnqueueRequest): Promise<EnqueueOutcome>;

  /** The task's current state, or null when unknown (never existed, or pruned). */
  get(id: string): Promise<TaskRecord | null>;

  /** Tasks matching the filter, newest enqueue first, at most `filter.limit` (default 100, max 1000). */
  list(filter: TaskListFilter): Promise<TaskRecord[]>;

  /**
   * Cancels a task. READY: becomes FAILED with `cancelled: true` at once (never runs).
   * RUNNING: sets `cancelled: true`; the worker running it aborts the AbortSignal it passed to the
   * executor (within one heartbeat for another process) and the attempt ends FAILED, not retried.
   * Already finished: returned unchanged (the caller reports the conflict). Unknown id: null.
   */
  cancel(id: string): Promise<TaskRecord | null>;

  /**
   * Requeues a FAILED task (dead-lettered or cancelled): READY now, attempts reset to 0, errors kept,
   * dead-letter and cancel flags cleared. Other statuses: returned unchanged (caller reports conflict).
   * Unknown id: null.
   */
  requeue(id: string): Promise<TaskRecord | null>;

  /** Saves a RUNNING task's progress report (best effort; ignored for a task no longer RUNNING). */
  saveProgress(id: string, fraction: number, message: string | null): Promise<void>;

  /**
   * Optional fast path for TaskResult.wait(): resolves with the record once SUCCESSFUL or FAILED, or
   * null when `timeoutMs` passes first (wall time). BullMQ: `job.waitUntilFinished(queueEvents, ttl)`.
   * Without it the framework polls `get()`.
   */
  waitUntilFinished?(id: string, timeoutMs: number): Promise<TaskRecord | null>;

  /**
   * Makes the stored schedules equal to `specs` for the names given (create or update; a changed cron or
   * time zone takes effect from the next tick). Called when a worker starts. The backend then fires
   * each tick EXACTLY ONCE across all workers, enqueueing `spec.taskName` with `spec.args` and the
   * idempotency key `schedule:<name>:<tick ISO>`. Ticks missed while no worker ran are coalesced into
   * one run. BullMQ: `queue.upsertJobScheduler(name, { pattern, tz }, { name: taskName, data })`.
   * With `options.removeOthers` (a worker starting passes its app's WHOLE list), stored schedules whose
   * names are not in `specs` are deleted, so a schedule removed from the code stops firing.
   * BullMQ: `removeJobScheduler` for the ids `getJobSchedulers()` lists but `specs` does not.
   */
  upsertSchedules(specs: readonly ScheduleSpec[], options?: { removeOthers?: boolean }): Promise<void>;

  /**
   * Creates a worker that claims tasks of `options.queues` (all when empty), at most
   * `options.concurrency` at a time, and runs each attempt through `runtime.execute`. It does not
   * process anything until `start()` (or, with `capabilities.manualDrive`, `runOnce()`).
   */
  createWorker(options: BackendWorkerOptions): BackendWorker;

  /**
   * Deletes finished results older than the retention periods (SUCCESSFUL and cancelled:
   * `retentionMs` after finishing; dead-lettered: `deadRetentionMs`). Returns how many were deleted.
   * Database workers call it periodically on their own; exposed for tests and the CLI.
   */
  prune(): Promise<number>;

  /** Releases connections and timers. Workers must be stopped first. */
  close(): Promise<void>;
}

export interface EnqueueOutcome {
  readonly record: TaskRecord;
  /** false when an existing task was returned for the idempotency key. */
  readonly created: boolean;
}

/** What a backend can do, so the conformance suite (and callers) know which guarantees hold. */
export interface BackendCapabilities {
  /** Tasks wait for a worker in another process/tick (false: the immediate backend runs in the caller). */
  readonly deferred: boolean;
  /** Results survive the process and are visible to other processes (getResult from anywhere). */
  readonly durable: boolean;
  /** Backoff and `runAfter` follow the injected Clock (false for Redis, which uses its own time). */
  readonly usesInjectedClock: boolean;
  /** `worker.runOnce()` is available: tests can drive the worker step by step, no timers. */
  readonly manualDrive: boolean;
}

export interface BackendWorkerOptions {
  /** Stable id shown on results ("host:pid:random" by default). */
  readonly workerId: string;
  /** Queue names to take tasks from; empty = every queue. */
  readonly queues: readonly string[];
  /** Most attempts running at once in this worker. */
  readonly concurrency: number;
}

export interface BackendWorker {
  readonly id: string;
  /** Begins the background loop (polling, heartbeats, schedules, pruning). Idempotent. */
  start(): void;
  /**
   * Test hook (only with `capabilities.manualDrive`): fires due schedules, reclaims expired leases,
   * claims up to `concurrency` due tasks, runs them to the end of the attempt, and resolves with how many
   * attempts ran. Never sleeps.
   */
  runOnce?(): Promise<number>;
  /**
   * Graceful stop: claims nothing more, waits up to `graceMs` for running attempts to finish, then
   * aborts the rest and hands them back (READY again, that attempt not counted), so another worker can
   * take them at once. Resolves when no attempt of this worker is running.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  /** Attempts running right now. */
  readonly running: number;
}

/** The result of running one attempt of a handler. */
export type ExecutionOutcome =
  | { readonly ok: true; readonly value: JsonValue }
  | {
      readonly ok: false;
      readonly error: { readonly errorClass: string; readonly message: string; readonly stack: string | null };
      /**
       * false for UnrecoverableError, cancellation, an unknown task name, or a return value that is
       * not JSON: the backend must not retry, whatever attempts remain. Timeouts are retryable.
       */
      readonly retryable: boolean;
      /** The attempt ended because the task was cancelled. */
      readonly cancelled: boolean;
    };

/**
 * Runs ONE attempt of a claimed task: looks the handler up by `record.taskName` in this process's
 * registry, builds its context, enforces `record.timeoutMs`, and never throws. Emits the `started` event.
 * `signal` is the backend's cancel signal for this attempt (abort it on cancel or forced shutdown).
 */
export type TaskExecutor = (record: TaskRecord, signal: AbortSignal) => Promise<ExecutionOutcome>;

/** What the framework hands a backend factory. */
export interface TaskBackendRuntime {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly execute: TaskExecutor;
  /** Call after storing a NEW task (not for an idempotent repeat), before it can run. */
  readonly onEnqueued: (record: TaskRecord) => void;
  /** Call after persisting a terminal state (SUCCESSFUL, or FAILED without a further attempt). */
  readonly onFinished: (record: TaskRecord) => void;
  /** Retention settings for `prune()`. */
  readonly retentionMs: number;
  readonly deadRetentionMs: number;
}

/** Builds a backend once the framework exists (the executor needs the framework's registry). */
export type TaskBackendFactory = (runtime: TaskBackendRuntime) => TaskBackend;
