import { AppError } from '../errors.ts';
import type { JsonValue, TaskErrorInfo, TaskProgress, TaskRecord, TaskStatus } from './types.ts';

/** How a TaskResult reloads itself; implemented by the framework. */
export interface TaskResultSource {
  fetch(id: string): Promise<TaskRecord | null>;
  /** Resolves with the finished record, or rejects with TaskWaitTimeoutError. */
  waitFor(id: string, timeoutMs: number): Promise<TaskRecord>;
}

/**
 * The state of one enqueued task, as seen by the caller (Django 6's TaskResult). A snapshot: call
 * `refresh()` to reload it, or `wait()` to block until it finishes. Usable from any process that shares
 * the backend: `app.tasks.getResult(id)`.
 */
export class TaskResult<R = JsonValue> {
  #record: TaskRecord;
  readonly #source: TaskResultSource;

  constructor(source: TaskResultSource, record: TaskRecord) {
    this.#source = source;
    this.#record = record;
  }

  get id(): string {
    return this.#record.id;
  }
  get taskName(): string {
    return this.#record.taskName;
  }
  get queue(): string {
    return this.#record.queue;
  }
  get priority(): number {
    return this.#record.priority;
  }
  get status(): TaskStatus {
    return this.#record.status;
  }
  get args(): JsonValue {
    return this.#record.args;
  }
  get attempts(): number {
    return this.#record.attempts;
  }
  get maxAttempts(): number {
    return this.#record.maxAttempts;
  }
  get idempotencyKey(): string | null {
    return this.#record.idempotencyKey;
  }
  get enqueuedAt(): Date {
    return this.#record.enqueuedAt;
  }
  get runAfter(): Date {
    return this.#record.runAfter;
  }
  get startedAt(): Date | null {
    return this.#record.startedAt;
  }
  get lastAttemptedAt(): Date | null {
    return this.#record.lastAttemptedAt;
  }
  get finishedAt(): Date | null {
    return this.#record.finishedAt;
  }
  get errors(): readonly TaskErrorInfo[] {
    return this.#record.errors;
  }
  get deadLettered(): boolean {
    return this.#record.deadLettered;
  }
  get cancelled(): boolean {
    return this.#record.cancelled;
  }
  get workerId(): string | null {
    return this.#record.workerId;
  }
  get progress(): TaskProgress | null {
    return this.#record.progress;
  }
  /** SUCCESSFUL or FAILED. */
  get isFinished(): boolean {
    return this.#record.status === 'SUCCESSFUL' || this.#record.status === 'FAILED';
  }

  /** The handler's return value. Reading it before the task is SUCCESSFUL is an error (as in Django). */
  get returnValue(): R {
    if (this.#record.status !== 'SUCCESSFUL') {
      throw new AppError('conflict', `task ${this.id} is ${this.#record.status}; its return value exists only once SUCCESSFUL`);
    }
    return this.#record.returnValue as R;
  }

  /** The raw stored state (for backends, the CLI and the admin API). */
  get record(): TaskRecord {
    return this.#record;
  }

  /** Reloads this result in place from the backend. Resolves to itself. */
  async refresh(): Promise<this> {
    const fresh = await this.#source.fetch(this.id);
    if (!fresh) throw new AppError('not_found', `task ${this.id} no longer exists (pruned after the retention period?)`);
    this.#record = fresh;
    return this;
  }

  /**
   * Resolves (with itself, refreshed) once the task is SUCCESSFUL or FAILED; rejects with
   * TaskWaitTimeoutError after `timeoutMs` of wall time (default 60 s). Does not throw for FAILED: check
   * `status`. Celery's `result.get(timeout=…)`.
   */
  async wait(options: { timeoutMs?: number } = {}): Promise<this> {
    if (this.isFinished) return this;
    this.#record = await this.#source.waitFor(this.id, options.timeoutMs ?? 60_000);
    return this;
  }

  /** The JSON shape used by the admin API and `stormvault tasks show` (snake_case, ISO timestamps). */
  toJSON(): TaskResultJson {
    return taskRecordToJson(this.#record);
  }
}

export interface TaskResultJson {
  id: string;
  task_name: string;
  queue: string;
  priority: number;
  status: TaskStatus;
  args: JsonValue;
  attempts: number;
  max_attempts: number;
  idempotency_key: string | null;
  enqueued_at: string;
  run_after: string;
  started_at: string | null;
  last_attempted_at: string | null;
  finished_at: string | null;
  errors: Array<{ attempt: number; error_class: string; message: string; stack: string | null; at: string }>;
  return_value: JsonValue | null;
  dead_lettered: boolean;
  cancelled: boolean;
  worker_id: string | null;
  progress: { fraction: number; message: string | null; at: string } | null;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function taskRecordToJson(r: TaskRecord): TaskResultJson {
  return {
    id: r.id,
    task_name: r.taskName,
    queue: r.queue,
    priority: r.priority,
    status: r.status,
    args: r.args,
    attempts: r.attempts,
    max_attempts: r.maxAttempts,
    idempotency_key: r.idempotencyKey,
    enqueued_at: r.enqueuedAt.toISOString(),
    run_after: r.runAfter.toISOString(),
    started_at: iso(r.startedAt),
    last_attempted_at: iso(r.lastAttemptedAt),
    finished_at: iso(r.finishedAt),
    errors: r.errors.map((e) => ({ attempt: e.attempt, error_class: e.errorClass, message: e.message, stack: e.stack, at: e.at.toISOString() })),
    return_value: r.status === 'SUCCESSFUL' ? (r.returnValue ?? null) : null,
    dead_lettered: r.deadLettered,
    cancelled: r.cancelled,
    worker_id: r.workerId,
    progress: r.progress ? { fraction: r.progress.fraction, message: r.progress.message, at: r.progress.at.toISOString() } : null,
  };
}
