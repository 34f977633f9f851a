/**
 * Data shapes of the task framework, shared by the framework, every TaskBackend and the surfaces
 * (HTTP, CLI). Pure types: no I/O. Timestamps are Date objects here; backends convert to their storage.
 * Modelled on Django 6 tasks (statuses, TaskResult fields) plus what Django leaves to backends
 * (retries, dead letter, leases, schedules). See docs/tasks.md.
 */

/** Django 6's four statuses. A cancelled task is FAILED with `cancelled: true`. */
export type TaskStatus = 'READY' | 'RUNNING' | 'SUCCESSFUL' | 'FAILED';
export const TASK_STATUSES: readonly TaskStatus[] = ['READY', 'RUNNING', 'SUCCESSFUL', 'FAILED'];

/**
 * Task ids every surface and backend accepts: UUIDs, and the redis backend's BullMQ ids ("k-<sha1>",
 * "repeat:<schedule>:<tick ms>"). One rule for the framework and the backends (issue 12: redis allowed 200).
 */
export const TASK_ID_RE = /^[\w.:-]{1,100}$/;

/** A value that survives `JSON.parse(JSON.stringify(v))` unchanged. Arguments and return values must be one. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Exponential backoff with jitter between attempts: delay(n) = min(capMs, baseMs * 2^(n-1)), jittered. */
export interface BackoffPolicy {
  /** Delay before the 2nd attempt, before jitter. Default 1000. */
  readonly baseMs: number;
  /** Upper bound of any delay. Default 300000 (5 minutes). */
  readonly capMs: number;
  /**
   * "Equal jitter": the actual delay is uniformly random in [d/2, d], so a crowd of failing tasks does not
   * retry in lockstep (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
   * false: exactly d. Default true.
   */
  readonly jitter: boolean;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1000, capMs: 300_000, jitter: true });

/** One failed attempt, as recorded on the result (Django's TaskError). */
export interface TaskErrorInfo {
  /** 1-based attempt number that failed. */
  readonly attempt: number;
  /** The error's class name, e.g. "TypeError", "UnrecoverableError", "TaskTimeoutError", "WorkerLost". */
  readonly errorClass: string;
  readonly message: string;
  readonly stack: string | null;
  readonly at: Date;
}

export interface TaskProgress {
  /** 0..1 */
  readonly fraction: number;
  readonly message: string | null;
  readonly at: Date;
}

/**
 * The stored state of one enqueued task: what a backend keeps and returns. The public, refreshable
 * wrapper is TaskResult (task-result.ts).
 */
export interface TaskRecord {
  readonly id: string;
  readonly taskName: string;
  readonly queue: string;
  /** -100..100, higher runs first (Django's convention). */
  readonly priority: number;
  readonly status: TaskStatus;
  readonly args: JsonValue;
  /** Attempts started so far (1 while the first attempt runs). */
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  /** Per-attempt time limit; null = none. */
  readonly timeoutMs: number | null;
  readonly idempotencyKey: string | null;
  readonly enqueuedAt: Date;
  /** Earliest time the next attempt may start (the delay, or the backoff after a failure). */
  readonly runAfter: Date;
  /** First attempt's start. */
  readonly startedAt: Date | null;
  readonly lastAttemptedAt: Date | null;
  readonly finishedAt: Date | null;
  /** One entry per failed attempt, oldest first. */
  readonly errors: readonly TaskErrorInfo[];
  /** Only meaningful when SUCCESSFUL. */
  readonly returnValue: JsonValue | undefined;
  /** FAILED because attempts ran out (or an UnrecoverableError / timeout on the last attempt): listed by `deadLetters()`. */
  readonly deadLettered: boolean;
  /** Cancel was requested; a FAILED task with this flag was cancelled. */
  readonly cancelled: boolean;
  /** The worker holding (or that last held) the task. */
  readonly workerId: string | null;
  readonly progress: TaskProgress | null;
}

/** What the framework asks a backend to store when a task is enqueued (ids and timestamps included). */
export interface EnqueueRequest {
  readonly id: string;
  readonly taskName: string;
  readonly queue: string;
  readonly priority: number;
  readonly args: JsonValue;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  readonly timeoutMs: number | null;
  readonly idempotencyKey: string | null;
  readonly enqueuedAt: Date;
  readonly runAfter: Date;
}

/**
 * The record of a task just enqueued (READY, never attempted), under `id` (a backend may key it its own
 * way, e.g. BullMQ job ids). Built field by field, not `{ ...request, … }`: V8 builds that spread on a slow
 * path, ~20 µs a call — most of the redis backend's enqueue CPU in the bench profile (docs/tasks.md).
 */
export function readyRecord(request: EnqueueRequest, id: string = request.id): TaskRecord {
  return {
    id,
    taskName: request.taskName,
    queue: request.queue,
    priority: request.priority,
    args: request.args,
    maxAttempts: request.maxAttempts,
    backoff: request.backoff,
    timeoutMs: request.timeoutMs,
    idempotencyKey: request.idempotencyKey,
    enqueuedAt: request.enqueuedAt,
    runAfter: request.runAfter,
    status: 'READY',
    attempts: 0,
    startedAt: null,
    lastAttemptedAt: null,
    finishedAt: null,
    errors: [],
    returnValue: undefined,
    deadLettered: false,
    cancelled: false,
    workerId: null,
    progress: null,
  };
}

export interface TaskListFilter {
  readonly status?: TaskStatus;
  readonly queue?: string;
  readonly taskName?: string;
  /** Only dead-lettered tasks. */
  readonly deadLettered?: boolean;
  /** Newest first; default 100, at most 1000. */
  readonly limit?: number;
}

/** A cron-style periodic enqueue. Stored by the backend so that several workers fire each tick once. */
export interface ScheduleSpec {
  /** Unique schedule name, e.g. "records.cleanup_tombstones.daily". */
  readonly name: string;
  /** 5-field (minute precision) or 6-field (seconds) cron, or a predefined alias such as "@hourly". */
  readonly cron: string;
  /** IANA time zone the cron fields are read in, e.g. "Europe/Berlin". Default "UTC". */
  readonly timezone: string;
  /** Name of the defined task to enqueue on each tick. */
  readonly taskName: string;
  readonly args: JsonValue;
  /** The task's settings when the schedule was registered, so a backend can enqueue without the registry. */
  readonly template: ScheduleTemplate;
}

/** The parts of an EnqueueRequest a schedule fixes in advance (id, times and key are per tick). */
export type ScheduleTemplate = Pick<EnqueueRequest, 'taskName' | 'queue' | 'priority' | 'args' | 'maxAttempts' | 'backoff' | 'timeoutMs'>;

/** Options of `app.tasks.define(...)`. */
export interface TaskOptions {
  /** Unique, e.g. "storage.rebuild_index": lowercase letters, digits, ".", "_", "-"; at most 200 characters. */
  readonly name: string;
  /** Default "default". Workers can be limited to some queues. Same character rules as name. */
  readonly queue?: string;
  /** -100..100, higher first. Default 0. */
  readonly priority?: number;
  /** Attempts in total, including the first. Default 3. 1 = no retries. */
  readonly maxAttempts?: number;
  readonly backoff?: Partial<BackoffPolicy>;
  /** Per-attempt time limit in ms. The handler's signal aborts and the attempt fails with TaskTimeoutError. */
  readonly timeoutMs?: number;
  /**
   * Django parity only: handlers always receive the context as their second argument, so this changes
   * nothing. Accepted so options ported from Django read the same.
   */
  readonly takesContext?: boolean;
}

/** Per-enqueue overrides. */
export interface EnqueueOptions {
  /** Do not start before this time. */
  readonly runAfter?: Date;
  /** Overrides the task's priority for this run. */
  readonly priority?: number;
  /**
   * Enqueuing the same key again (for the same task or any other) returns the first result instead of a
   * new run, for as long as that result is kept (see the retention settings).
   */
  readonly idempotencyKey?: string;
}
