import { createHash } from 'node:crypto';
import { DEFAULT_BACKOFF, type BackoffPolicy, type EnqueueRequest, type JsonValue, type ScheduleSpec, type TaskErrorInfo, type TaskProgress, type TaskRecord, type TaskStatus } from '../../types.ts';

/**
 * Pure mapping between Stormvault task records and BullMQ jobs (no I/O), so the redis backend stays a
 * thin layer over BullMQ's own features and this arithmetic is unit-tested on its own.
 */

/**
 * What a BullMQ job's `data` holds. Short keys, and fields at their default left out: the JSON is
 * written once per job and parsed on every claim, and the bench (bench/tasks.ts) compares us with raw
 * BullMQ, whose no-op job carries a few bytes.
 */
export interface RedisJobData {
  /** task name */
  readonly t: string;
  /** args */
  readonly a: JsonValue;
  /** our priority (-100..100, higher first; absent = 0); BullMQ's own `priority` is derived from it */
  readonly p?: number;
  /** maxAttempts (absent = 1) */
  readonly m?: number;
  /** backoff (absent: DEFAULT_BACKOFF; irrelevant with one attempt) */
  readonly b?: BackoffPolicy;
  /** timeoutMs (absent = none) */
  readonly to?: number | null;
  /** idempotency key (absent = none) */
  readonly k?: string | null;
  /** enqueuedAt / runAfter as epoch ms (absent on jobs created by a BullMQ job scheduler) */
  readonly e?: number;
  readonly r?: number;
  /** the framework's request id: tells the creator of an idempotent job apart from a racing repeat */
  readonly rid?: string;
  /** schedule name, on jobs a job scheduler created */
  readonly s?: string;
}

/**
 * One failed attempt as stored in BullMQ's per-job `stacktrace` list. BullMQ appends `err.stack` of every
 * failed attempt atomically with the failure itself (moveToFailed / moveToDelayed), so the processor
 * throws an error whose `stack` is this JSON: the attempt's error history needs no extra write.
 */
interface StoredAttemptError {
  readonly sv: 1;
  readonly attempt: number;
  readonly errorClass: string;
  readonly message: string;
  readonly stack: string | null;
  readonly at: number;
  readonly startedAt: number | null;
  readonly cancelled: boolean;
}

/** The fields of a BullMQ Job we read (a structural subset, so tests can pass plain objects). */
export interface JobView {
  readonly id?: string;
  readonly name: string;
  readonly queueName: string;
  readonly data: RedisJobData;
  readonly timestamp: number;
  readonly delay: number;
  readonly processedOn?: number;
  readonly finishedOn?: number;
  readonly attemptsMade: number;
  /** How often BullMQ's stalled-job checker took the job back from a worker that stopped renewing its lock. */
  readonly stalledCounter?: number;
  readonly stacktrace: string[] | null;
  readonly returnvalue: unknown;
  readonly failedReason: string;
  readonly progress: unknown;
  readonly processedBy?: string;
  readonly repeatJobKey?: string;
}

/** BullMQ's failedReason for a job whose workers vanished more than `maxStalledCount` times. */
const STALLED_LIMIT_REASON = 'job stalled more than allowable limit';

/**
 * Attempts started so far. BullMQ counts finished attempts (`attemptsMade`) and, separately, attempts
 * lost with their worker (`stalledCounter`); both were started, and the one running now is too.
 */
export function attemptsOf(job: Pick<JobView, 'attemptsMade' | 'stalledCounter'>, running: boolean): number {
  return job.attemptsMade + (job.stalledCounter ?? 0) + (running ? 1 : 0);
}

/** BullMQ states (Job.getState) → Django's four statuses. "unknown" (no such job) → null. */
export function statusFromState(state: string): TaskStatus | null {
  switch (state) {
    case 'completed':
      return 'SUCCESSFUL';
    case 'failed':
      return 'FAILED';
    case 'active':
      return 'RUNNING';
    case 'waiting':
    case 'wait':
    case 'prioritized':
    case 'delayed':
    case 'paused':
    case 'waiting-children':
      return 'READY';
    default:
      return null;
  }
}

/**
 * Our priority (-100..100, higher runs first, Django's convention) → BullMQ's (1..201, LOWER runs first;
 * 0 would mean "no priority", which BullMQ serves before every prioritized job, so it is never used).
 */
export function bullPriority(priority: number): number {
  return 101 - priority;
}

/**
 * BullMQ job id of a task. Random ids are the framework's UUIDs. Idempotent tasks get an id derived from
 * the key, so BullMQ's own "a job with this id exists: add nothing" makes racing enqueues of one key
 * atomic. A hash, because BullMQ refuses ids that are whole numbers or contain ":" (job.js
 * validateOptions), and keys may contain both (e.g. "schedule:name:2026-01-01T00:00:00.000Z").
 */
export function jobIdFor(request: Pick<EnqueueRequest, 'id' | 'idempotencyKey'>): string {
  if (request.idempotencyKey === null) return request.id;
  return `k-${createHash('sha256').update(request.idempotencyKey).digest('hex').slice(0, 40)}`;
}

export function jobDataFor(request: EnqueueRequest): RedisJobData {
  const e = request.enqueuedAt.getTime();
  const r = request.runAfter.getTime();
  const data: { -readonly [K in keyof RedisJobData]: RedisJobData[K] } = { t: request.taskName, a: request.args, e };
  if (request.priority !== 0) data.p = request.priority;
  if (request.maxAttempts !== 1) {
    data.m = request.maxAttempts;
    data.b = request.backoff;
  }
  if (request.timeoutMs !== null) data.to = request.timeoutMs;
  if (request.idempotencyKey !== null) {
    data.k = request.idempotencyKey;
    data.rid = request.id;
  }
  if (r !== e) data.r = r;
  return data;
}

/** Longest schedule name used as its BullMQ job scheduler id unchanged (see schedulerIdFor). */
const MAX_PLAIN_SCHEDULER_ID = 60;

/**
 * BullMQ job scheduler id of a schedule. BullMQ names each tick's job "repeat:<scheduler id>:<tick ms>",
 * and that is a task id every surface must accept (TASK_ID_RE: at most 100 characters; issue 12: the
 * redis backend's id limit equals the framework's). Schedule names may be 200 characters long, so a long
 * name keeps a readable head and gets a hash of the whole name: 7 + 60 + 1 + 14 digits of tick ms ≤ 100.
 */
export function schedulerIdFor(scheduleName: string): string {
  if (scheduleName.length <= MAX_PLAIN_SCHEDULER_ID) return scheduleName;
  const hash = createHash('sha256').update(scheduleName).digest('hex').slice(0, 20);
  return `${scheduleName.slice(0, MAX_PLAIN_SCHEDULER_ID - hash.length - 1)}.${hash}`;
}

/** Job data of the runs a schedule's BullMQ job scheduler creates (times come from the job itself). */
export function scheduleJobData(spec: ScheduleSpec): RedisJobData {
  const t = spec.template;
  return { t: t.taskName, a: t.args, p: t.priority, m: t.maxAttempts, b: t.backoff, to: t.timeoutMs, k: null, s: spec.name };
}

/** The `err.stack` the processor throws for a failed attempt (see StoredAttemptError). */
export function encodeAttemptError(input: Omit<StoredAttemptError, 'sv'>): string {
  return JSON.stringify({ sv: 1, ...input } satisfies StoredAttemptError);
}

function decodeAttemptError(entry: string, index: number): StoredAttemptError {
  try {
    const parsed = JSON.parse(entry) as StoredAttemptError;
    if (parsed && parsed.sv === 1) return parsed;
  } catch {
    // Not ours (e.g. written by another BullMQ client): keep it as a plain stack below.
  }
  // BullMQ's own failures, e.g. "UnrecoverableError: job stalled more than allowable limit".
  const first = entry.split('\n', 1)[0] ?? entry;
  const named = /^([A-Za-z_$][\w$]*): (.*)$/.exec(first);
  const message = named ? named[2]! : first;
  const errorClass = message === STALLED_LIMIT_REASON ? 'WorkerLost' : (named?.[1] ?? 'Error');
  return { sv: 1, attempt: index + 1, errorClass, message, stack: entry, at: 0, startedAt: null, cancelled: false };
}

export interface RecordExtras {
  /** BullMQ state from Job.getState(). */
  readonly state: string;
  /** A cancel was requested for this (still RUNNING or READY) task. */
  readonly cancelRequested: boolean;
  /** When a delayed job becomes due (from the delayed set's score), if known. */
  readonly dueAt: number | null;
  /** A SUCCESSFUL value known to the caller (BullMQ's local job object turns falsy values into undefined). */
  readonly returnValue?: JsonValue;
}

const NO_STORED_ERRORS: readonly StoredAttemptError[] = Object.freeze([]);

/** A BullMQ job → the TaskRecord the port returns; null when the state says the job does not exist. */
export function recordFromJob(job: JobView, extras: RecordExtras): TaskRecord | null {
  const status = statusFromState(extras.state);
  if (status === null || job.id === undefined) return null;
  const d = job.data;
  // Most jobs have no failed attempt: no decoding arrays for them (this runs twice per attempt).
  const stored = job.stacktrace && job.stacktrace.length > 0 ? job.stacktrace.map(decodeAttemptError) : NO_STORED_ERRORS;
  const errors: TaskErrorInfo[] = stored.map((s) => ({
    attempt: s.attempt,
    errorClass: s.errorClass,
    message: s.message,
    stack: s.stack,
    at: new Date(s.at),
  }));
  const last = stored.at(-1);
  const attempts = attemptsOf(job, status === 'RUNNING');
  // Attempts whose worker died left no error of ours (no processor threw): BullMQ's stalled checker
  // only counted them. Fill the attempt numbers nobody reported as WorkerLost, so the history has no gaps.
  const lost = job.stalledCounter ?? 0;
  if (lost > 0) {
    const reported = new Set(errors.map((e) => e.attempt));
    // The attempt running now, or the one that succeeded, is not lost.
    const upTo = status === 'RUNNING' || status === 'SUCCESSFUL' ? attempts - 1 : attempts;
    let added = 0;
    for (let n = 1; n <= upTo && added < lost; n++) {
      if (reported.has(n)) continue;
      errors.push({ attempt: n, errorClass: 'WorkerLost', message: 'the worker running this attempt stopped renewing its lock (crashed or lost its connection)', stack: null, at: new Date(job.processedOn ?? job.timestamp) });
      added++;
    }
    errors.sort((a, b) => a.attempt - b.attempt);
  }
  const enqueuedAt = d.e ?? job.timestamp;
  // Waiting out a retry's backoff: due when the delayed set says. Otherwise when the enqueue asked
  // (BullMQ's own due time trails it by the enqueue's latency).
  const retrying = status === 'READY' && extras.dueAt !== null && job.attemptsMade > 0;
  const runAfter = retrying ? extras.dueAt! : (d.r ?? (d.s && tickOf(job)) ?? d.e ?? job.timestamp + (job.delay || 0));
  const firstStart = stored.find((s) => s.startedAt !== null)?.startedAt ?? job.processedOn ?? null;
  const cancelledByAttempt = status === 'FAILED' && last?.cancelled === true && job.failedReason === last.message;
  const cancelled = status === 'FAILED' ? cancelledByAttempt : extras.cancelRequested;
  return {
    id: job.id,
    taskName: d.t,
    queue: job.queueName,
    priority: d.p ?? 0,
    status,
    args: d.a,
    attempts,
    maxAttempts: d.m ?? 1,
    backoff: d.b ?? DEFAULT_BACKOFF,
    timeoutMs: d.to ?? null,
    idempotencyKey: d.k ?? (d.s ? scheduleKey(d.s, job) : null),
    enqueuedAt: new Date(enqueuedAt),
    runAfter: new Date(runAfter),
    startedAt: firstStart !== null ? new Date(firstStart) : null,
    lastAttemptedAt: job.processedOn ? new Date(job.processedOn) : null,
    finishedAt: (status === 'SUCCESSFUL' || status === 'FAILED') && job.finishedOn ? new Date(job.finishedOn) : null,
    errors,
    returnValue: status === 'SUCCESSFUL' ? (extras.returnValue !== undefined ? extras.returnValue : ((job.returnvalue ?? null) as JsonValue)) : undefined,
    deadLettered: status === 'FAILED' && !cancelled,
    cancelled,
    workerId: job.processedBy ?? null,
    progress: progressOf(job.progress),
  };
}

function tickOf(job: JobView): number | null {
  const tick = /^repeat:.*:(\d+)$/.exec(job.id ?? '')?.[1];
  return tick ? Number(tick) : null;
}

/** The tick a scheduler-created job belongs to: BullMQ names it "repeat:<scheduler id>:<tick ms>". */
function scheduleKey(scheduleName: string, job: JobView): string {
  return `schedule:${scheduleName}:${new Date(tickOf(job) ?? job.timestamp + (job.delay || 0)).toISOString()}`;
}

function progressOf(value: unknown): TaskProgress | null {
  if (!value || typeof value !== 'object') return null;
  const p = value as { fraction?: unknown; message?: unknown; at?: unknown };
  if (typeof p.fraction !== 'number' || typeof p.at !== 'number') return null;
  return { fraction: p.fraction, message: typeof p.message === 'string' ? p.message : null, at: new Date(p.at) };
}

/** What job.updateProgress stores (BullMQ keeps any JSON object). */
export function progressPayload(fraction: number, message: string | null, at: Date): { fraction: number; message: string | null; at: number } {
  return { fraction, message, at: at.getTime() };
}

/** A task record → the JSON kept for a cancelled READY task, whose BullMQ job was removed. */
export function serializeRecord(record: TaskRecord): string {
  return JSON.stringify(record);
}

export function deserializeRecord(text: string): TaskRecord {
  const r = JSON.parse(text) as Record<string, unknown> & { errors: Array<Record<string, unknown>>; progress: Record<string, unknown> | null };
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));
  return {
    ...(r as unknown as TaskRecord),
    enqueuedAt: date(r.enqueuedAt)!,
    runAfter: date(r.runAfter)!,
    startedAt: date(r.startedAt),
    lastAttemptedAt: date(r.lastAttemptedAt),
    finishedAt: date(r.finishedAt),
    errors: r.errors.map((e) => ({ ...(e as unknown as TaskErrorInfo), at: new Date(e.at as string) })),
    progress: r.progress ? { ...(r.progress as unknown as TaskProgress), at: new Date(r.progress.at as string) } : null,
    returnValue: undefined,
  };
}
