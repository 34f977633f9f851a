import { randomUUID } from 'node:crypto';
import type {
  BackendWorker,
  BackendWorkerOptions,
  EnqueueOutcome,
  TaskBackend,
  TaskBackendFactory,
  TaskBackendRuntime,
} from '../backend.port.ts';
import { decideAfterFailure } from '../retry.ts';
import { nextTick } from '../../lib/cron.ts';
import { scheduleTickKey } from '../schedule.ts';
import { readyRecord, type EnqueueRequest, type ScheduleSpec, type TaskListFilter, type TaskRecord } from '../types.ts';
import { TaskCancelledError } from '../errors.ts';

/**
 * Runs every task in the caller, to completion, before `enqueue` resolves (Django's ImmediateBackend):
 * for tests and scripts. Results live in this process's memory only. Retries happen at once, without
 * waiting out the backoff (the computed `runAfter` is still recorded); `runAfter` and priority are
 * ignored because nothing ever waits. Schedules fire from a started worker (or runOnce), in-process.
 */
export function immediateBackend(): TaskBackendFactory {
  return (runtime) => new ImmediateBackend(runtime);
}

interface StoredSchedule {
  spec: ScheduleSpec;
  nextTick: Date;
}

class ImmediateBackend implements TaskBackend {
  readonly kind = 'immediate';
  readonly capabilities = { deferred: false, durable: false, usesInjectedClock: true, manualDrive: true } as const;
  readonly #records = new Map<string, TaskRecord>();
  readonly #byKey = new Map<string, string>();
  readonly #running = new Map<string, AbortController>();
  readonly #schedules = new Map<string, StoredSchedule>();
  readonly #runtime: TaskBackendRuntime;

  constructor(runtime: TaskBackendRuntime) {
    this.#runtime = runtime;
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueOutcome> {
    if (request.idempotencyKey !== null) {
      const existing = this.#byKey.get(request.idempotencyKey);
      if (existing && this.#records.has(existing)) return { record: this.#records.get(existing)!, created: false };
    }
    const record = readyRecord(request);
    this.#records.set(record.id, record);
    if (record.idempotencyKey !== null) this.#byKey.set(record.idempotencyKey, record.id);
    this.#runtime.onEnqueued(record);
    await this.#run(record.id);
    return { record: this.#records.get(record.id)!, created: true };
  }

  async #run(id: string): Promise<void> {
    const clock = this.#runtime.clock;
    for (;;) {
      const current = this.#records.get(id)!;
      if (current.status !== 'READY') return;
      const now = clock.now();
      const running: TaskRecord = {
        ...current,
        status: 'RUNNING',
        attempts: current.attempts + 1,
        startedAt: current.startedAt ?? now,
        lastAttemptedAt: now,
        workerId: 'immediate',
      };
      this.#records.set(id, running);
      const controller = new AbortController();
      this.#running.set(id, controller);
      const outcome = await this.#runtime.execute(running, controller.signal).finally(() => this.#running.delete(id));
      const after = this.#records.get(id)!;
      const end = clock.now();
      if (outcome.ok) {
        this.#finish({ ...after, status: 'SUCCESSFUL', returnValue: outcome.value, finishedAt: end });
        return;
      }
      const errors = [...after.errors, { attempt: after.attempts, ...outcome.error, at: end }];
      const cancelled = outcome.cancelled || after.cancelled;
      const decision = decideAfterFailure({
        attempts: after.attempts,
        maxAttempts: after.maxAttempts,
        retryable: outcome.retryable && !cancelled,
        policy: after.backoff,
        now: end,
      });
      if (decision.retry) {
        this.#records.set(id, { ...after, status: 'READY', errors, runAfter: decision.runAfter });
        continue;
      }
      this.#finish({ ...after, status: 'FAILED', errors, finishedAt: end, cancelled, deadLettered: !cancelled });
      return;
    }
  }

  #finish(record: TaskRecord): void {
    this.#records.set(record.id, record);
    this.#runtime.onFinished(record);
  }

  async get(id: string): Promise<TaskRecord | null> {
    return this.#records.get(id) ?? null;
  }

  async list(filter: TaskListFilter): Promise<TaskRecord[]> {
    const limit = Math.min(filter.limit ?? 100, 1000);
    return [...this.#records.values()]
      .filter(
        (r) =>
          (filter.status === undefined || r.status === filter.status) &&
          (filter.queue === undefined || r.queue === filter.queue) &&
          (filter.taskName === undefined || r.taskName === filter.taskName) &&
          (filter.deadLettered === undefined || r.deadLettered === filter.deadLettered),
      )
      .sort((a, b) => b.enqueuedAt.getTime() - a.enqueuedAt.getTime())
      .slice(0, limit);
  }

  async cancel(id: string): Promise<TaskRecord | null> {
    const r = this.#records.get(id);
    if (!r) return null;
    if (r.status === 'READY') {
      this.#finish({ ...r, status: 'FAILED', cancelled: true, finishedAt: this.#runtime.clock.now() });
    } else if (r.status === 'RUNNING') {
      this.#records.set(id, { ...r, cancelled: true });
      this.#running.get(id)?.abort(new TaskCancelledError());
    }
    return this.#records.get(id)!;
  }

  async requeue(id: string): Promise<TaskRecord | null> {
    const r = this.#records.get(id);
    if (!r) return null;
    if (r.status !== 'FAILED') return r;
    this.#records.set(id, { ...r, status: 'READY', attempts: 0, deadLettered: false, cancelled: false, finishedAt: null, runAfter: this.#runtime.clock.now() });
    await this.#run(id);
    return this.#records.get(id)!;
  }

  async saveProgress(id: string, fraction: number, message: string | null): Promise<void> {
    const r = this.#records.get(id);
    if (r?.status === 'RUNNING') this.#records.set(id, { ...r, progress: { fraction, message, at: this.#runtime.clock.now() } });
  }

  async upsertSchedules(specs: readonly ScheduleSpec[], options: { removeOthers?: boolean } = {}): Promise<void> {
    const now = this.#runtime.clock.now();
    if (options.removeOthers) {
      const keep = new Set(specs.map((s) => s.name));
      for (const name of this.#schedules.keys()) if (!keep.has(name)) this.#schedules.delete(name);
    }
    for (const spec of specs) {
      const old = this.#schedules.get(spec.name);
      if (old && old.spec.cron === spec.cron && old.spec.timezone === spec.timezone) old.spec = spec;
      else this.#schedules.set(spec.name, { spec, nextTick: nextTick(spec.cron, spec.timezone, now) });
    }
  }

  /** Enqueues every schedule whose tick is due; missed ticks coalesce into one run. */
  async #fireSchedules(): Promise<number> {
    const now = this.#runtime.clock.now();
    let fired = 0;
    for (const s of this.#schedules.values()) {
      if (s.nextTick.getTime() > now.getTime()) continue;
      const tick = s.nextTick;
      s.nextTick = nextTick(s.spec.cron, s.spec.timezone, now);
      await this.enqueue({ ...s.spec.template, id: randomUUID(), idempotencyKey: scheduleTickKey(s.spec.name, tick), enqueuedAt: now, runAfter: now });
      fired++;
    }
    return fired;
  }

  createWorker(options: BackendWorkerOptions): BackendWorker {
    let timer: NodeJS.Timeout | undefined;
    const backend = this;
    return {
      id: options.workerId,
      running: 0,
      start() {
        // Tasks run in their callers; a started worker only has schedules to fire.
        timer ??= setInterval(() => {
          backend.#fireSchedules().catch((err) => backend.#runtime.logger.error({ err }, 'firing schedules failed'));
        }, 1000);
        timer.unref();
      },
      runOnce: () => this.#fireSchedules(),
      async stop() {
        if (timer) clearInterval(timer);
        timer = undefined;
      },
    };
  }

  async prune(): Promise<number> {
    const now = this.#runtime.clock.now().getTime();
    let deleted = 0;
    for (const r of this.#records.values()) {
      if (!r.finishedAt) continue;
      const keep = r.deadLettered ? this.#runtime.deadRetentionMs : this.#runtime.retentionMs;
      if (r.finishedAt.getTime() + keep < now) {
        this.#records.delete(r.id);
        if (r.idempotencyKey !== null && this.#byKey.get(r.idempotencyKey) === r.id) this.#byKey.delete(r.idempotencyKey);
        deleted++;
      }
    }
    return deleted;
  }

  async close(): Promise<void> {}
}
