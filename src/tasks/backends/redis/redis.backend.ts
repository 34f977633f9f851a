import { Job, Queue, QueueEvents, UnrecoverableError as BullUnrecoverableError, WaitingError, Worker, type JobsOptions, type MinimalJob } from 'bullmq';
import { Redis } from 'ioredis';
import { AppError } from '../../../errors.ts';
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
import { retryDelayMs } from '../../retry.ts';
import { DEFAULT_BACKOFF, readyRecord, TASK_ID_RE, type EnqueueRequest, type JsonValue, type ScheduleSpec, type TaskListFilter, type TaskRecord } from '../../types.ts';
import {
  bullPriority,
  deserializeRecord,
  encodeAttemptError,
  jobDataFor,
  jobIdFor,
  progressPayload,
  recordFromJob,
  scheduleJobData,
  schedulerIdFor,
  serializeRecord,
  type JobView,
  type RedisJobData,
} from './redis-records.ts';

/**
 * The `redis` task backend: BullMQ on Redis, for several worker processes/hosts (issue 3).
 *
 * Every duty maps onto a BullMQ feature instead of being rebuilt:
 * - one BullMQ Queue per task queue; priority → BullMQ priority (inverted, see bullPriority); runAfter → `delay`;
 *   the enqueues of one event-loop tick go out together through `addBulk` (see #addBatched);
 * - maxAttempts → `attempts`; backoff → a custom `backoffStrategy` using retry.ts's shared formula;
 *   non-retryable outcomes → BullMQ's UnrecoverableError; the failed set is the dead letter (requeue = job.retry);
 * - idempotency → deterministic `jobId` (BullMQ adds nothing when the id exists);
 * - schedules → `upsertJobScheduler` (BullMQ creates one job per tick whatever the number of workers);
 * - wait() → `job.waitUntilFinished(queueEvents, ttl)`; progress → `job.updateProgress`;
 * - leases → BullMQ's job lock (`lockDuration`) and stalled-job checker, which hands a dead worker's job
 *   to another worker;
 * - retention → `removeOnComplete` / `removeOnFail` ages, plus `queue.clean` in prune();
 * - cancelling a RUNNING task → the processor's AbortSignal (`worker.cancelJob`), reached from any process
 *   through a Redis pub/sub message.
 *
 * What BullMQ has no notion of, kept in a few small keys under `<prefix>:_sv:` (a name no queue can have,
 * queue names start with [a-z0-9]): the set of known queues (so `list`/`get` and all-queue workers find
 * them), the idempotency key → queue map (BullMQ ids are unique per queue only, our keys are global),
 * and the records of cancelled READY tasks (BullMQ cannot fail a job that is not active, so the job is
 * removed and its final record kept for the retention period).
 *
 * Delays and job timestamps come from Redis/BullMQ workers (wall clock), not the injected Clock:
 * `usesInjectedClock: false`. What this file stamps itself (an attempt error's `at`) uses the Clock.
 */
export interface RedisBackendOptions {
  /** redis:// or rediss:// URL. */
  readonly url: string;
  /** Key prefix of every key (BullMQ's `prefix`); one per deployment, or per test file. Default "stormvault". */
  readonly prefix?: string;
  /** BullMQ `lockDuration`: a worker that stops renewing its lock for this long loses the job. */
  readonly lockDurationMs: number;
  /** BullMQ `stalledInterval`; default half the lock duration. */
  readonly stalledIntervalMs?: number;
  /**
   * How often one job may lose its worker (crash, SIGKILL, lost connection) before BullMQ fails it
   * ("job stalled more than allowable limit"), so a task that kills its worker cannot loop forever. Default 2.
   */
  readonly maxStalledCount?: number;
}

export function redisBackend(options: RedisBackendOptions): TaskBackendFactory {
  return (runtime) => new RedisBackend(runtime, options);
}

/** The backoff type name our jobs carry; BullMQ then asks the worker's `backoffStrategy`. */
const BACKOFF_TYPE = 'stormvault';
const READY_STATES = ['waiting', 'prioritized', 'delayed', 'paused', 'waiting-children'] as const;
const CANCEL_FLAG_TTL_MS = 24 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;
const WAIT_SLICE_MS = 1000;
/** How long a process trusts its "this queue has no priorities" (see #isPrioritized). */
const PRIO_REFRESH_MS = 1000;
/**
 * Most jobs in one addBulk (one MULTI). Measured with bench/tasks.ts: 1000-job MULTIs hold Redis up
 * long enough to starve the workers (the enqueue phase took 2-4x longer); batches of 20-200 did not.
 */
const MAX_BATCH = 50;

interface BulkJob {
  name: string;
  data: RedisJobData;
  opts: JobsOptions;
}
/** Jobs a BullMQ job scheduler created are named "repeat:<scheduler id>:<tick ms>". */
const isSchedulerJob = (id: string) => id.startsWith('repeat:');

/**
 * BullMQ types the reason of worker.cancelJob / cancelAllJobs as a string, but only hands it to
 * AbortController.abort(), which takes any value. We pass our error classes, so the executor tells a
 * cancel (TaskCancelledError: not retried) from a shutdown (WorkerShutdownError: handed back) by class
 * without a relaying controller per attempt.
 */
const abortReason = (error: Error): string => error as unknown as string;

/**
 * Atomically: when the idempotency key is held by a job (or a cancelled task's record) that still
 * exists, return the queue it lives in; otherwise claim the key for this enqueue's queue and return nil.
 * Two enqueues of one key into the SAME queue may both pass; BullMQ's jobId check then keeps one.
 */
const CLAIM_KEY_LUA = `
local q = redis.call('GET', KEYS[1])
if q then
  if redis.call('EXISTS', ARGV[1] .. q .. ':' .. ARGV[2]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
    return q
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return false
`;

interface SvRedis extends Redis {
  svClaimKey(idemKey: string, cancelledKey: string, keyPrefix: string, jobId: string, queue: string, ttlMs: number): Promise<string | null>;
}

class RedisBackend implements TaskBackend {
  readonly kind = 'redis';
  readonly capabilities = { deferred: true, durable: true, usesInjectedClock: false, manualDrive: false } as const;

  readonly #runtime: TaskBackendRuntime;
  readonly #options: Required<RedisBackendOptions>;
  readonly #client: SvRedis;
  readonly #queues = new Map<string, Queue<RedisJobData>>();
  /** Queues this process has registered in `<prefix>:_sv:queues`. */
  readonly #registered = new Set<string>();
  /** Registrations in flight, shared by the enqueues waiting for them. */
  readonly #registering = new Map<string, Promise<void>>();
  /** Every queue known (registered by any process), refreshed from Redis on a miss. */
  #known = new Set<string>();
  readonly #queueEvents = new Map<string, Promise<QueueEvents>>();
  readonly #workers = new Set<RedisWorker>();
  /** Jobs running in this process, for progress and cancellation without a lookup. */
  readonly runningJobs = new Map<string, { job: Job<RedisJobData>; worker: Worker<RedisJobData> }>();
  /** Ids cancelled recently (pub/sub), so an attempt starting just after the message still aborts. */
  readonly recentlyCancelled = new Map<string, number>();
  #subscriber: Redis | null = null;
  #subscribed: Promise<void> | undefined;
  #closed = false;
  readonly #inflight = new Set<Promise<unknown>>();
  /** Per queue: does it use BullMQ priorities (see #isPrioritized), and when that was read. */
  readonly #prio = new Map<string, { value: boolean; at: number }>();
  /** The GET of a queue's priority flag in flight, shared by the enqueues waiting for it. */
  readonly #prioReads = new Map<string, Promise<boolean>>();
  /** Enqueues of this tick waiting for their queue's addBulk (see #addBatched). */
  readonly #batches = new Map<string, Array<{ job: BulkJob; resolve: () => void; reject: (err: unknown) => void }>>();

  constructor(runtime: TaskBackendRuntime, options: RedisBackendOptions) {
    this.#runtime = runtime;
    this.#options = {
      url: options.url,
      prefix: options.prefix ?? 'stormvault',
      lockDurationMs: options.lockDurationMs,
      stalledIntervalMs: options.stalledIntervalMs ?? Math.max(50, Math.floor(options.lockDurationMs / 2)),
      maxStalledCount: options.maxStalledCount ?? 2,
    };
    // maxRetriesPerRequest null: BullMQ requires it for connections its workers use (they block).
    this.#client = new Redis(options.url, { maxRetriesPerRequest: null, lazyConnect: false }) as SvRedis;
    this.#client.on('error', (err) => runtime.logger.error({ err }, 'redis task backend connection error'));
    this.#client.defineCommand('svClaimKey', { numberOfKeys: 2, lua: CLAIM_KEY_LUA });
  }

  get prefix(): string {
    return this.#options.prefix;
  }
  get runtime(): TaskBackendRuntime {
    return this.#runtime;
  }
  get client(): Redis {
    return this.#client;
  }
  get options(): Required<RedisBackendOptions> {
    return this.#options;
  }

  key(...parts: string[]): string {
    return [this.#options.prefix, '_sv', ...parts].join(':');
  }
  get controlChannel(): string {
    return this.key('control');
  }

  queue(name: string): Queue<RedisJobData> {
    let q = this.#queues.get(name);
    if (!q) {
      q = new Queue<RedisJobData>(name, {
        connection: this.#client,
        prefix: this.#options.prefix,
        defaultJobOptions: this.#retentionOptions(),
      });
      q.on('error', (err) => this.#runtime.logger.error({ err, queue: name }, 'redis task queue error'));
      this.#queues.set(name, q);
    }
    return q;
  }

  #retentionOptions(): Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> {
    // BullMQ ages are in seconds; jobs past them are dropped as later jobs finish (and by prune()).
    return {
      removeOnComplete: { age: Math.ceil(this.#runtime.retentionMs / 1000) },
      removeOnFail: { age: Math.ceil(this.#runtime.deadRetentionMs / 1000) },
    };
  }

  /** Registers a queue once per process; a burst of first enqueues shares one SADD (see #registering). */
  #register(queue: string): Promise<void> {
    let pending = this.#registering.get(queue);
    if (!pending) {
      pending = this.#registerNow(queue).finally(() => this.#registering.delete(queue));
      this.#registering.set(queue, pending);
    }
    return pending;
  }

  async #registerNow(queue: string): Promise<void> {
    if (this.#registered.has(queue)) return;
    const added = await this.#client.sadd(this.key('queues'), queue);
    this.#registered.add(queue);
    this.#known.add(queue);
    // Workers serving "all queues" start a BullMQ worker for a queue they have not seen yet.
    if (added === 1) await this.#client.publish(this.controlChannel, `queue ${queue}`);
  }

  async knownQueues(): Promise<string[]> {
    const members = await this.#client.smembers(this.key('queues'));
    this.#known = new Set([...this.#known, ...members]);
    return [...this.#known].sort();
  }

  #jobOptions(request: Pick<EnqueueRequest, 'priority' | 'maxAttempts'>, jobId: string, delay: number, prioritized: boolean): JobsOptions {
    return {
      jobId,
      priority: prioritized ? bullPriority(request.priority) : undefined,
      delay: delay > 0 ? delay : undefined,
      // One attempt needs no retry settings (smaller job hashes for the common fire-once task).
      ...(request.maxAttempts > 1 ? { attempts: request.maxAttempts, backoff: { type: BACKOFF_TYPE } } : {}),
    };
  }

  enqueue(request: EnqueueRequest): Promise<EnqueueOutcome> {
    // Not tracked for close(): the hot path, and its caller awaits it anyway.
    return this.#enqueue(request);
  }

  async #enqueue(request: EnqueueRequest): Promise<EnqueueOutcome> {
    const jobId = jobIdFor(request);
    const delay = Math.max(0, request.runAfter.getTime() - this.#runtime.clock.now().getTime());
    if (!this.#registered.has(request.queue)) await this.#register(request.queue);
    const idempotent = request.idempotencyKey !== null;
    if (idempotent) {
      // Kept as long as the job may be: its delay, then the longer retention, plus a day of running/retrying.
      const ttl = delay + Math.max(this.#runtime.retentionMs, this.#runtime.deadRetentionMs) + DAY_MS;
      const holder = await this.#client.svClaimKey(this.key('idem', jobId), this.key('cancelled', jobId), `${this.#options.prefix}:`, jobId, request.queue, ttl);
      if (holder !== null) {
        const existing = await this.get(jobId);
        if (existing) return { record: existing, created: false };
      }
    }
    const queue = this.queue(request.queue);
    const known = request.priority !== 0 ? null : this.#isPrioritized(request.queue);
    const prioritized = typeof known === 'boolean' ? known : await (known ?? this.#markPrioritized(request.queue));
    const job = { name: request.taskName, data: jobDataFor(request), opts: this.#jobOptions(request, jobId, delay, prioritized) };
    if (idempotent) await queue.add(job.name, job.data, job.opts);
    else await this.#addBatched(request.queue, job);
    if (idempotent) {
      // A racing enqueue of the same key into the same queue: BullMQ kept the first job; whose is it?
      const stored = await Job.fromId<RedisJobData>(queue, jobId);
      if (stored && stored.data.rid !== request.id) {
        const existing = await this.get(jobId);
        if (existing) return { record: existing, created: false };
      }
    }
    const record = readyRecord(request, jobId);
    this.#runtime.onEnqueued(record);
    return { record, created: true };
  }

  /**
   * Adds a job through BullMQ's addBulk together with every other enqueue of this tick (one MULTI per
   * queue instead of a script call per job): a burst of concurrent enqueues costs what addBulk costs,
   * a lone enqueue waits one setImmediate. Idempotent enqueues do not come here (they need their key check).
   */
  #addBatched(queueName: string, job: BulkJob): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let pending = this.#batches.get(queueName);
      if (!pending) {
        pending = [];
        this.#batches.set(queueName, pending);
        setImmediate(() => this.#flushBatch(queueName));
      }
      pending.push({ job, resolve, reject });
    });
  }

  #flushBatch(queueName: string): void {
    const pending = this.#batches.get(queueName) ?? [];
    this.#batches.delete(queueName);
    const queue = this.queue(queueName);
    for (let i = 0; i < pending.length; i += MAX_BATCH) {
      const slice = pending.slice(i, i + MAX_BATCH);
      queue.addBulk(slice.map((p) => p.job)).then(
        () => slice.forEach((p) => p.resolve()),
        (err: unknown) => slice.forEach((p) => p.reject(err)),
      );
    }
  }

  /**
   * Priorities cost: BullMQ serves plain jobs (its wait list) before every prioritized job, so as soon
   * as one task of a queue has a non-default priority, all of the queue's tasks must be prioritized
   * jobs, and those cost Redis about a quarter more per task (bench/tasks.ts, docs/tasks.md). So a
   * queue stays plain until a task with priority != 0 is first enqueued into it; then the flag
   * `<prefix>:_sv:prio:<queue>` is set for good and the queue's waiting plain jobs are moved to the
   * prioritized set (job.changePriority). Other processes see the flag within PRIO_REFRESH_MS; a plain
   * job one of them adds meanwhile is moved by a second pass PRIO_REFRESH_MS later.
   */
  #isPrioritized(queue: string): boolean | Promise<boolean> {
    const cached = this.#prio.get(queue);
    // A fresh answer without a promise: this runs on every enqueue.
    if (cached && (cached.value || performance.now() - cached.at < PRIO_REFRESH_MS)) return cached.value;
    // One GET per refresh, shared by every enqueue of the burst that finds the answer stale (a chunk
    // of 1000 concurrent enqueues used to send 1000 GETs at start and at every refresh).
    let pending = this.#prioReads.get(queue);
    if (!pending) {
      pending = this.#client.get(this.key('prio', queue)).then(
        (flag) => {
          this.#prioReads.delete(queue);
          const value = flag === '1' || this.#prio.get(queue)?.value === true;
          this.#prio.set(queue, { value, at: performance.now() });
          return value;
        },
        (err: unknown) => {
          this.#prioReads.delete(queue);
          throw err;
        },
      );
      this.#prioReads.set(queue, pending);
    }
    return pending;
  }

  async #markPrioritized(queue: string): Promise<boolean> {
    if (this.#prio.get(queue)?.value) return true;
    const first = (await this.#client.set(this.key('prio', queue), '1', 'NX')) === 'OK';
    this.#prio.set(queue, { value: true, at: performance.now() });
    if (first) {
      await this.#prioritizeWaiting(queue);
      const again = setTimeout(() => {
        this.#prioritizeWaiting(queue).catch((err) => this.#runtime.logger.error({ err, queue }, 'prioritizing waiting tasks failed'));
      }, PRIO_REFRESH_MS * 1.5);
      again.unref();
    }
    return true;
  }

  /**
   * Gives the queue's plain waiting jobs (oldest first, to keep FIFO) and delayed jobs (they would enter
   * the wait list when due) their BullMQ priority. An attempt running at the switch keeps its plain
   * rank if it is retried.
   */
  async #prioritizeWaiting(queueName: string): Promise<void> {
    const queue = this.queue(queueName);
    const waiting = (await this.#client.lrange(queue.keys.wait!, 0, -1)).reverse();
    const delayed = await this.#client.zrange(queue.keys.delayed!, 0, -1);
    const ids = [...waiting, ...delayed];
    for (let i = 0; i < ids.length; i += 500) {
      const jobs = await Promise.all(ids.slice(i, i + 500).map((id) => Job.fromId<RedisJobData>(queue, id)));
      for (const job of jobs) {
        // Sequential: changePriority numbers jobs of one priority in call order. A job taken meanwhile
        // by a worker is no longer waiting: BullMQ refuses, and that is fine.
        if (job) await job.changePriority({ priority: bullPriority(job.data.p ?? 0) }).catch(() => undefined);
      }
    }
  }

  /** The queue holding job `id`, or null (one pipelined EXISTS per known queue). */
  async #locate(id: string): Promise<string | null> {
    const probe = async (queues: string[]) => {
      if (queues.length === 0) return null;
      const pipeline = this.#client.pipeline();
      for (const q of queues) pipeline.exists(`${this.#options.prefix}:${q}:${id}`);
      const results = (await pipeline.exec()) ?? [];
      const index = results.findIndex(([err, n]) => !err && n === 1);
      return index >= 0 ? queues[index]! : null;
    };
    const cached = [...this.#known];
    const found = await probe(cached);
    if (found) return found;
    const fresh = (await this.knownQueues()).filter((q) => !cached.includes(q));
    return probe(fresh);
  }

  async #cancelledRecord(id: string): Promise<TaskRecord | null> {
    const text = await this.#client.get(this.key('cancelled', id));
    return text ? deserializeRecord(text) : null;
  }

  get(id: string): Promise<TaskRecord | null> {
    return this.#track(this.#get(id));
  }

  async #get(id: string): Promise<TaskRecord | null> {
    if (typeof id !== 'string' || !TASK_ID_RE.test(id)) return null;
    const queueName = await this.#locate(id);
    if (queueName) {
      const queue = this.queue(queueName);
      // State first, then the hash: a job finishing between the two reads then shows a stale status
      // (harmless, the caller looks again), never SUCCESSFUL without its return value.
      const state = await queue.getJobState(id);
      const job = await Job.fromId<RedisJobData>(queue, id);
      if (job) {
        const record = await this.#recordOf(job, state);
        if (record) return record;
      }
    }
    return this.#cancelledRecord(id);
  }

  async #recordOf(job: Job<RedisJobData>, knownState?: string): Promise<TaskRecord | null> {
    const state = knownState ?? (await job.getState());
    const pipeline = this.#client.pipeline();
    pipeline.exists(this.key('cancel', job.id!));
    if (state === 'delayed') pipeline.zscore(this.queue(job.queueName).keys.delayed!, job.id!);
    const [[, flag] = [null, 0], [, score] = [null, null]] = ((await pipeline.exec()) ?? []) as Array<[Error | null, unknown]>;
    // BullMQ scores delayed jobs as timestamp * 0x1000 + a counter (getDelayedScore in its Lua scripts).
    const dueAt = score !== null && score !== undefined ? Math.floor(Number(score) / 0x1000) : null;
    return recordFromJob(job as unknown as JobView, { state, cancelRequested: flag === 1, dueAt });
  }

  list(filter: TaskListFilter): Promise<TaskRecord[]> {
    return this.#track(this.#list(filter));
  }

  async #list(filter: TaskListFilter): Promise<TaskRecord[]> {
    const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
    // Filters BullMQ cannot apply (task name, dead vs cancelled) need a wider look.
    const window = filter.taskName !== undefined || filter.deadLettered !== undefined ? Math.min(limit * 10, 10_000) : limit;
    const types: string[] = [];
    if (filter.status === undefined || filter.status === 'READY') types.push(...READY_STATES);
    if (filter.status === undefined || filter.status === 'RUNNING') types.push('active');
    if (filter.status === undefined || filter.status === 'SUCCESSFUL') types.push('completed');
    if (filter.status === undefined || filter.status === 'FAILED') types.push('failed');
    const effectiveTypes = filter.deadLettered === true ? types.filter((t) => t === 'failed') : types;
    const known = await this.knownQueues();
    const queues = filter.queue !== undefined ? known.filter((q) => q === filter.queue) : known;
    const records: TaskRecord[] = [];
    await Promise.all(
      queues.flatMap((q) =>
        effectiveTypes.map(async (type) => {
          const jobs = await this.queue(q).getJobs([type as 'waiting'], 0, window - 1, false);
          for (const job of jobs) {
            const r = recordFromJob(job as unknown as JobView, { state: type, cancelRequested: false, dueAt: null });
            if (r) records.push(r);
          }
        }),
      ),
    );
    if ((filter.status === undefined || filter.status === 'FAILED') && filter.deadLettered !== true) {
      const ids = await this.#client.zrevrange(this.key('cancelled'), 0, window - 1);
      if (ids.length > 0) {
        const texts = await this.#client.mget(ids.map((id) => this.key('cancelled', id)));
        for (const text of texts) if (text) records.push(deserializeRecord(text));
      }
    }
    return records
      .filter(
        (r) =>
          (filter.status === undefined || r.status === filter.status) &&
          (filter.queue === undefined || r.queue === filter.queue) &&
          (filter.taskName === undefined || r.taskName === filter.taskName) &&
          (filter.deadLettered === undefined || r.deadLettered === filter.deadLettered),
      )
      .sort((a, b) => b.enqueuedAt.getTime() - a.enqueuedAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, limit);
  }

  cancel(id: string): Promise<TaskRecord | null> {
    return this.#track(this.#cancel(id));
  }

  async #cancel(id: string): Promise<TaskRecord | null> {
    const record = await this.get(id);
    if (!record) return null;
    if (record.status === 'SUCCESSFUL' || record.status === 'FAILED') return record;
    await this.#client.set(this.key('cancel', id), '1', 'PX', CANCEL_FLAG_TTL_MS);
    if (record.status === 'READY' && isSchedulerJob(id)) {
      // BullMQ refuses to remove a job scheduler's pending job (the scheduler makes the next one when it
      // starts). The flag stays; the worker that takes the tick fails it as cancelled without running it.
      return { ...record, cancelled: true };
    }
    if (record.status === 'READY') {
      const final: TaskRecord = { ...record, status: 'FAILED', cancelled: true, deadLettered: false, finishedAt: this.#runtime.clock.now() };
      // The record first, then the job: a reader in between still sees the job (get prefers it).
      await this.#client
        .multi()
        .set(this.key('cancelled', id), serializeRecord(final), 'PX', this.#runtime.retentionMs)
        .zadd(this.key('cancelled'), final.enqueuedAt.getTime(), id)
        .exec();
      // BullMQ refuses to remove a locked (active) job: then a worker took it meanwhile, cancel it running.
      const removed = await this.queue(record.queue).remove(id);
      if (removed === 1) {
        await this.#client.del(this.key('cancel', id));
        this.#runtime.onFinished(final);
        return final;
      }
      await this.#client.multi().del(this.key('cancelled', id)).zrem(this.key('cancelled'), id).exec();
    }
    // RUNNING: whichever worker (any process) runs it aborts its signal. The answer is the state the
    // cancel was accepted in; the attempt may end any moment after.
    this.abortLocal(id);
    await this.#client.publish(this.controlChannel, `cancel ${id}`);
    return { ...record, status: 'RUNNING', cancelled: true };
  }

  /** Aborts the attempt of `id` if this process runs it; remembers the id briefly otherwise. */
  abortLocal(id: string): void {
    this.recentlyCancelled.set(id, performance.now());
    for (const [key, at] of this.recentlyCancelled) if (performance.now() - at > 60_000) this.recentlyCancelled.delete(key);
    const running = this.runningJobs.get(id);
    if (running) running.worker.cancelJob(id, abortReason(new TaskCancelledError()));
  }

  requeue(id: string): Promise<TaskRecord | null> {
    return this.#track(this.#requeue(id));
  }

  async #requeue(id: string): Promise<TaskRecord | null> {
    const record = await this.get(id);
    if (!record) return null;
    if (record.status !== 'FAILED') return record;
    this.recentlyCancelled.delete(id);
    await this.#client.del(this.key('cancel', id));
    const now = this.#runtime.clock.now();
    const queueName = await this.#locate(id);
    if (queueName) {
      const job = await Job.fromId<RedisJobData>(this.queue(queueName), id);
      // The failed set is the dead letter: BullMQ's retry moves the job back to wait; errors stay in its stack list.
      if (job) await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } else {
      // A cancelled READY task: its job was removed, add it again under the same id.
      const request: EnqueueRequest = { ...record, runAfter: now };
      const queue = this.queue(record.queue);
      await this.#register(record.queue);
      const prioritized = record.priority !== 0 ? await this.#markPrioritized(record.queue) : await this.#isPrioritized(record.queue);
      await queue.add(record.taskName, { ...jobDataFor(request), rid: id }, this.#jobOptions(record, id, 0, prioritized));
      await this.#client.multi().del(this.key('cancelled', id)).zrem(this.key('cancelled'), id).exec();
    }
    // Built here, not read back: a running worker may already have claimed it again.
    return { ...record, status: 'READY', attempts: 0, deadLettered: false, cancelled: false, finishedAt: null, runAfter: now, returnValue: undefined };
  }

  async saveProgress(id: string, fraction: number, message: string | null): Promise<void> {
    const payload = progressPayload(fraction, message, this.#runtime.clock.now());
    const local = this.runningJobs.get(id);
    if (local) {
      await local.job.updateProgress(payload);
      return;
    }
    const queueName = await this.#locate(id);
    if (!queueName) return;
    const job = await Job.fromId<RedisJobData>(this.queue(queueName), id);
    if (job && (await job.getState()) === 'active') await job.updateProgress(payload);
  }

  async waitUntilFinished(id: string, timeoutMs: number): Promise<TaskRecord | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const record = await this.get(id);
      if (!record) throw new AppError('not_found', `no task with id "${id}"`);
      if (record.status === 'SUCCESSFUL' || record.status === 'FAILED') return record;
      const remaining = Math.ceil(deadline - performance.now());
      if (remaining <= 0) return null;
      const queue = this.queue(record.queue);
      const job = await Job.fromId<RedisJobData>(queue, id);
      if (!job) continue; // removed meanwhile (cancelled): the next get() shows how it ended
      const events = await this.#events(record.queue);
      // A cancelled READY task is removed, not failed: BullMQ's wait would never hear of it.
      let onRemoved: ((args: { jobId: string }) => void) | undefined;
      const removed = new Promise<void>((resolve) => {
        onRemoved = (args) => {
          if (args.jobId === id) resolve();
        };
        events.on('removed', onRemoved);
      });
      try {
        // At most WAIT_SLICE_MS per round: a finish event lost to a reconnect costs a second, not the whole wait.
        await Promise.race([job.waitUntilFinished(events, Math.min(remaining, WAIT_SLICE_MS)).catch(() => undefined), removed]);
      } finally {
        events.off('removed', onRemoved!);
      }
    }
  }

  #events(queue: string): Promise<QueueEvents> {
    let pending = this.#queueEvents.get(queue);
    if (!pending) {
      pending = (async () => {
        // Its own connection: QueueEvents blocks on XREAD. BullMQ does not close connections it was given.
        // Connection options, not a client: BullMQ then owns the blocking connection and can interrupt
        // its XREAD on close (a shared client's pending read would reject after we disconnect it).
        const connection = { ...this.#client.options };
        // Read on from the stream's current end, not from "$" at the first XREAD: an attempt finishing
        // between creation and that first read would otherwise go unheard until the wait times out.
        const [latest] = await this.#client.xrevrange(this.queue(queue).keys.events!, '+', '-', 'COUNT', 1);
        const events = new QueueEvents(queue, { connection, prefix: this.#options.prefix, lastEventId: latest?.[0] ?? '0-0' });
        events.on('error', (err) => this.#runtime.logger.error({ err, queue }, 'redis task queue events error'));
        await events.waitUntilReady();
        return events;
      })();
      this.#queueEvents.set(queue, pending);
    }
    return pending;
  }

  async upsertSchedules(specs: readonly ScheduleSpec[], options: { removeOthers?: boolean } = {}): Promise<void> {
    if (options.removeOthers) {
      // A starting worker passes its app's whole list: schedules gone from the code stop firing.
      const wanted = new Set(specs.map((s) => `${s.template.queue}\n${schedulerIdFor(s.name)}`));
      for (const q of await this.knownQueues()) {
        const queue = this.queue(q);
        for (const scheduler of await queue.getJobSchedulers()) {
          if (!wanted.has(`${q}\n${scheduler.key}`)) await queue.removeJobScheduler(scheduler.key);
        }
      }
    }
    for (const spec of specs) {
      const t = spec.template;
      await this.#register(t.queue);
      const queue = this.queue(t.queue);
      // Unchanged: leave it alone. Upserting replaces the scheduler's pending job, so every worker start
      // would drop the one run that coalesces the ticks missed while no worker ran.
      const schedulerId = schedulerIdFor(spec.name);
      const current = await queue.getJobScheduler(schedulerId);
      const pending = current?.next ? await this.#client.exists(`${this.#options.prefix}:${t.queue}:repeat:${schedulerId}:${current.next}`) : 0;
      if (
        pending === 1 &&
        current?.pattern === spec.cron &&
        (current.tz ?? 'UTC') === spec.timezone &&
        current.name === t.taskName &&
        JSON.stringify(current.template?.data) === JSON.stringify(scheduleJobData(spec))
      ) {
        continue;
      }
      // BullMQ keeps one delayed job per scheduler, id "repeat:<scheduler id>:<tick ms>", so any number of
      // workers upserting and running it yields one run per tick; missed ticks collapse into that job.
      await queue.upsertJobScheduler(
        schedulerId,
        { pattern: spec.cron, tz: spec.timezone },
        {
          name: t.taskName,
          data: scheduleJobData(spec),
          opts: {
            // Ticks at the default priority stay plain jobs, even once the queue turns prioritized
            // (a scheduler's template is fixed): such a tick may then start before waiting tasks of
            // higher priority. Schedules with a priority are prioritized from the start.
            priority: t.priority !== 0 && (await this.#markPrioritized(t.queue)) ? bullPriority(t.priority) : undefined,
            attempts: t.maxAttempts,
            backoff: { type: BACKOFF_TYPE },
            ...this.#retentionOptions(),
          },
        },
      );
    }
  }

  createWorker(options: BackendWorkerOptions): BackendWorker {
    const worker = new RedisWorker(this, options);
    this.#workers.add(worker);
    return worker;
  }

  forgetWorker(worker: RedisWorker): void {
    this.#workers.delete(worker);
  }

  /**
   * One subscriber per process, opened with its first worker and kept until close(): cancel requests
   * and new-queue notices for this process's workers.
   */
  subscribe(): Promise<void> {
    this.#subscribed ??= (async () => {
      const subscriber = this.#client.duplicate();
      this.#subscriber = subscriber;
      subscriber.on('error', (err) => this.#runtime.logger.error({ err }, 'redis task control channel error'));
      subscriber.on('message', (_channel: string, message: string) => {
        const space = message.indexOf(' ');
        const verb = message.slice(0, space);
        const arg = message.slice(space + 1);
        if (verb === 'cancel') this.abortLocal(arg);
        else if (verb === 'queue') for (const w of this.#workers) w.queueAppeared(arg);
      });
      await subscriber.subscribe(this.controlChannel);
    })();
    return this.#subscribed;
  }

  async prune(): Promise<number> {
    let deleted = 0;
    for (const q of await this.knownQueues()) {
      const queue = this.queue(q);
      deleted += (await queue.clean(this.#runtime.retentionMs, 0, 'completed')).length;
      deleted += (await queue.clean(this.#runtime.deadRetentionMs, 0, 'failed')).length;
    }
    // Cancelled records expire on their own (PX); drop their index entries too.
    const ids = await this.#client.zrange(this.key('cancelled'), 0, -1);
    if (ids.length > 0) {
      const exists = await this.#client.mget(ids.map((id) => this.key('cancelled', id)));
      const gone = ids.filter((_, i) => exists[i] === null);
      if (gone.length > 0) {
        await this.#client.zrem(this.key('cancelled'), ...gone);
        deleted += gone.length;
      }
    }
    return deleted;
  }

  /** Keeps close() from pulling the connection from under a call still running (e.g. a fire-and-forget cancel). */
  #track<T>(operation: Promise<T>): Promise<T> {
    this.#inflight.add(operation);
    const forget = () => this.#inflight.delete(operation);
    operation.then(forget, forget);
    return operation;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#workers].map((w) => w.stop({ graceMs: 0 })));
    await Promise.allSettled([...this.#inflight]);
    const events = await Promise.allSettled([...this.#queueEvents.values()]);
    await Promise.all(events.map((e) => (e.status === 'fulfilled' ? e.value.close() : undefined)));
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    // After its SUBSCRIBE settled: closing a connection with a command in flight rejects it unheard.
    await this.#subscribed?.catch(() => undefined);
    await this.#subscriber?.quit().catch(() => undefined);
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}

/**
 * A worker of this process: one BullMQ Worker per queue it serves (BullMQ workers are per queue), all
 * running the framework's executor. `concurrency` applies per queue (BullMQ has no cross-queue limit).
 */
class RedisWorker implements BackendWorker {
  readonly id: string;
  readonly #backend: RedisBackend;
  readonly #options: BackendWorkerOptions;
  readonly #workers = new Map<string, Worker<RedisJobData>>();
  #running = 0;
  #started = false;
  #stopping: Promise<void> | null = null;
  #refreshTimer: NodeJS.Timeout | undefined;

  constructor(backend: RedisBackend, options: BackendWorkerOptions) {
    this.#backend = backend;
    this.#options = options;
    this.id = options.workerId;
  }

  get running(): number {
    return this.#running;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    const logger = this.#backend.runtime.logger;
    const boot = async () => {
      await this.#backend.subscribe();
      if (this.#options.queues.length > 0) {
        for (const q of this.#options.queues) this.#serve(q);
      } else {
        for (const q of await this.#backend.knownQueues()) this.#serve(q);
        // Besides the pub/sub notice, look again now and then (a notice sent while reconnecting is lost).
        this.#refreshTimer = setInterval(() => {
          this.#backend
            .knownQueues()
            .then((qs) => qs.forEach((q) => this.queueAppeared(q)))
            .catch((err) => logger.error({ err }, 'listing task queues failed'));
        }, 5000);
        this.#refreshTimer.unref();
      }
    };
    boot().catch((err) => logger.error({ err, workerId: this.id }, 'starting the redis task worker failed'));
  }

  /** A queue got its first task somewhere: serve it if this worker serves all queues. */
  queueAppeared(queue: string): void {
    if (this.#started && !this.#stopping && this.#options.queues.length === 0) this.#serve(queue);
  }

  #serve(queueName: string): void {
    if (this.#workers.has(queueName) || this.#stopping) return;
    const backend = this.#backend;
    const runtime = backend.runtime;
    const worker: Worker<RedisJobData> = new Worker<RedisJobData>(queueName, (job, token, signal): Promise<JsonValue> => this.#process(worker, job, token, signal), {
      // Its own connections (options, not our client): BullMQ then stops its stalled-job checker and lock
      // renewals before closing them, instead of racing our close of a shared client.
      connection: { ...backend.client.options },
      prefix: backend.prefix,
      concurrency: this.#options.concurrency,
      name: this.id,
      lockDuration: backend.options.lockDurationMs,
      stalledInterval: backend.options.stalledIntervalMs,
      maxStalledCount: backend.options.maxStalledCount,
      settings: {
        // BullMQ passes the number of the attempt that just failed (1-based): retry.ts's input.
        backoffStrategy: (attemptsMade: number, _type?: string, _err?: Error, job?: MinimalJob) =>
          retryDelayMs(attemptsMade, (job?.data as RedisJobData | undefined)?.b ?? DEFAULT_BACKOFF),
      },
    });
    worker.on('error', (err) => runtime.logger.error({ err, queue: queueName }, 'redis task worker error'));
    worker.on('completed', (job, result) => {
      const record = recordFromJob(job as unknown as JobView, { state: 'completed', cancelRequested: false, dueAt: null, returnValue: result as JsonValue });
      if (record) runtime.onFinished(record);
    });
    worker.on('failed', (job) => {
      // Emitted after every failed attempt; only a final one (no retry scheduled) sets finishedOn.
      if (!job?.finishedOn) return;
      const record = recordFromJob(job as unknown as JobView, { state: 'failed', cancelRequested: false, dueAt: null });
      if (record) runtime.onFinished(record);
    });
    this.#workers.set(queueName, worker);
  }

  async #process(worker: Worker<RedisJobData>, job: Job<RedisJobData>, token: string | undefined, signal: AbortSignal | undefined): Promise<JsonValue> {
    const backend = this.#backend;
    const runtime = backend.runtime;
    const record = recordFromJob(job as unknown as JobView, { state: 'active', cancelRequested: false, dueAt: null })!;
    // BullMQ hands a signal to processors taking three parameters; aborted through worker.cancelJob.
    const attemptSignal = signal ?? new AbortController().signal;
    if (this.#stopping && token) {
      // BullMQ can hand a closing worker one more job: a fetch issued before close() returns after it (seen
      // when the job it gets is the one just handed back below). Run nothing: hand it back at once, or it
      // would wait for a shutdown abort that was already sent, and close() would wait for it forever.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    backend.runningJobs.set(job.id!, { job, worker });
    this.#running++;
    try {
      // The cancel message may have arrived between BullMQ handing us the job and this line.
      if (backend.recentlyCancelled.has(job.id!)) worker.cancelJob(job.id!, abortReason(new TaskCancelledError()));
      // A cancelled schedule tick (still READY, see cancel()) ends here without running.
      const skip = isSchedulerJob(job.id!) && (await backend.client.exists(backend.key('cancel', job.id!))) === 1;
      const outcome: ExecutionOutcome = skip
        ? { ok: false, error: { errorClass: 'TaskCancelledError', message: new TaskCancelledError().message, stack: null }, retryable: false, cancelled: true }
        : await runtime.execute(record, attemptSignal);
      if (outcome.ok) return outcome.value;
      if (this.#stopping && attemptSignal.reason instanceof WorkerShutdownError && token) {
        // Graceful stop after the grace period: hand the job back uncounted (BullMQ: active → wait).
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const stack = encodeAttemptError({
        attempt: record.attempts,
        errorClass: outcome.error.errorClass,
        message: outcome.error.message,
        stack: outcome.error.stack,
        at: backend.runtime.clock.now().getTime(),
        startedAt: record.lastAttemptedAt?.getTime() ?? null,
        cancelled: outcome.cancelled,
      });
      const err = outcome.retryable && !outcome.cancelled ? new Error(outcome.error.message) : new BullUnrecoverableError(outcome.error.message);
      // BullMQ appends err.stack to the job's stack list in the same script that fails or delays the job.
      err.stack = stack;
      throw err;
    } finally {
      this.#running--;
      backend.runningJobs.delete(job.id!);
    }
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = (async () => {
        if (this.#refreshTimer) clearInterval(this.#refreshTimer);
        const workers = [...this.#workers.values()];
        // A BullMQ worker closed while its connections still initialise leaves a rejected promise nobody
        // awaits ("Connection is closed"); let them finish connecting first (immediate when running).
        await Promise.all(workers.map((w) => w.waitUntilReady().catch(() => undefined)));
        const closed = Promise.all(workers.map((w) => w.close()));
        const graceMs = options.graceMs ?? 0;
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'grace'>((resolve) => {
          timer = setTimeout(() => resolve('grace'), graceMs);
        });
        const first = await Promise.race([closed.then(() => 'closed' as const), graceOver]);
        clearTimeout(timer);
        if (first === 'grace') for (const w of workers) w.cancelAllJobs(abortReason(new WorkerShutdownError()));
        await closed;
        this.#backend.forgetWorker(this);
      })();
    }
    return this.#stopping;
  }
}
