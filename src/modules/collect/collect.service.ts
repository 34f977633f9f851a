import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import { previousTick, scheduleProblem } from '../../lib/cron.ts';
import { patternsProblem } from '../../lib/line-patterns.ts';
import type { Logger } from '../../logger.ts';
import type { StreamLog } from '../../streams/stream.port.ts';
import type { TaskContext, TaskDefinition } from '../../tasks/framework.ts';
import type { TaskResult } from '../../tasks/task-result.ts';
import type { DeviceCollection, NetworkDevice } from '../backups/backups.types.ts';
import { DEVICE_RESULTS_STREAM, type DeviceResultEntry, type NetworkDevicesService } from '../backups/network-devices.service.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { CollectRepository } from './collect.repository.ts';
import { DEFAULT_ORG_SETTINGS, type CollectOrgSettings, type CollectTaskArgs, type CollectTaskResult, type DeviceCollectState } from './collect.types.ts';
import type { CollectFailureCode, CollectResult, CollectStage, Collector } from './collector.port.ts';
import type { CredentialsService } from './credentials.service.ts';
import type { ModelRegistry } from './model-registry.ts';

/** Failures another attempt will not fix, and that must not be repeated (a refused password could lock the account). */
const NOT_RETRIED: ReadonlySet<CollectFailureCode> = new Set(['host_key_mismatch', 'auth_failed', 'enable_failed', 'not_configured']);

/** A scheduled tick older than this is not collected any more (a scheduler down for hours does not replay them). */
const SCHEDULE_CATCH_UP_MS = 5 * 60_000;

export interface CollectServiceDeps {
  devices: NetworkDevicesService;
  credentials: CredentialsService;
  repo: CollectRepository;
  models: ModelRegistry;
  collector: Collector;
  streams: StreamLog;
  clock: Clock;
  logger: Logger;
  /** The `collect.device` task (defined by the module right after the service). */
  collectTask: () => TaskDefinition<CollectTaskArgs, CollectTaskResult>;
}

/**
 * Collection (issue 10): one `collect.device` task per device and tick (or per backup-now) logs in with
 * the device's model and credential, and puts the outcome — the configuration, or the stage and reason
 * of the failure — on `device:results`, where part 1's pipeline stores it and updates the device status.
 * Nothing here writes a backup: failures never reach storage.
 */
export class CollectService {
  constructor(private readonly deps: CollectServiceDeps) {}

  /** Checks a device's collection fields (injected into the backups module): model known, credential of this org. */
  async checkCollectionFields(ctx: OrgContext, c: DeviceCollection): Promise<void> {
    if (c.model !== null && !this.deps.models.get(c.model)) {
      throw new AppError('invalid_request', `model: unknown backup model "${c.model}"; GET /api/v1/backup-models lists them`);
    }
    if (c.credentialId !== null && !(await this.deps.credentials.exists(ctx.organizationId, c.credentialId))) {
      throw new AppError('invalid_request', 'credential_id names no credential of this organization');
    }
    if (c.commands !== null && c.model !== null && this.deps.models.get(c.model)!.mode !== 'exec') {
      throw new AppError('invalid_request', 'commands replace the commands of an exec model only (e.g. generic-exec)');
    }
  }

  /** POST …/backup-now and `backups collect`: one collection now; resolves with the task. */
  async backupNow(ctx: OrgContext, deviceId: string): Promise<TaskResult<CollectTaskResult>> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'collecting a backup needs the admin role in the organization');
    const device = await this.deps.devices.get(ctx, deviceId);
    assertCollectable(device);
    return this.deps.collectTask().enqueue({ organization_id: ctx.organizationId, network_device_id: device.id, trigger: 'manual' });
  }

  /**
   * Collects many devices now (`backups collect --all`, bench/collect): one query for the devices, then
   * every task enqueued in the same turn, which the database backend writes as one multi-row INSERT
   * (per 500) instead of a statement and a commit per device. All or nothing: an unknown id, or a device
   * disabled or without model or credential, refuses the whole batch before anything is enqueued.
   */
  async backupNowMany(ctx: OrgContext, deviceIds: readonly string[]): Promise<TaskResult<CollectTaskResult>[]> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'collecting a backup needs the admin role in the organization');
    if (!Array.isArray(deviceIds)) throw new AppError('invalid_request', 'network device ids must be a list');
    if (new Set(deviceIds).size !== deviceIds.length) throw new AppError('invalid_request', 'a network device is listed twice');
    const devices = await this.deps.devices.getMany(ctx, deviceIds);
    for (const d of devices) assertCollectable(d);
    const task = this.deps.collectTask();
    return Promise.all(devices.map((d) => task.enqueue({ organization_id: ctx.organizationId, network_device_id: d.id, trigger: 'manual' })));
  }

  async state(ctx: OrgContext, deviceId: string): Promise<DeviceCollectState> {
    const device = await this.deps.devices.get(ctx, deviceId);
    return (await this.deps.repo.findState(ctx.organizationId, device.id)) ?? emptyState(device.id);
  }

  /**
   * Trusts the key the device presented at its last host_key_mismatch (issue 10). `fingerprint`, when
   * given, must be that key: an admin accepts what they checked, not whatever the device shows later.
   */
  async acceptHostKey(ctx: OrgContext, deviceId: string, fingerprint: unknown): Promise<DeviceCollectState> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'accepting a host key needs the admin role in the organization');
    if (fingerprint !== undefined && (typeof fingerprint !== 'string' || !/^SHA256:[A-Za-z0-9+/]{43}$/.test(fingerprint))) {
      throw new AppError('invalid_request', 'fingerprint must be an SSH SHA256 fingerprint (SHA256:<43 base64 characters>)');
    }
    const device = await this.deps.devices.get(ctx, deviceId);
    const state = await this.deps.repo.findState(ctx.organizationId, device.id);
    const pending = state?.pendingHostKey ?? null;
    if (pending === null) throw new AppError('conflict', 'the device presented no changed host key: nothing to accept');
    if (fingerprint !== undefined && fingerprint !== pending) throw new AppError('conflict', `the device's changed key is ${pending}, not ${fingerprint}`);
    if (!(await this.deps.repo.acceptPendingHostKey(ctx.organizationId, device.id, pending))) throw new AppError('conflict', 'the pending host key changed meanwhile; look again');
    this.deps.logger.info({ networkDeviceId: device.id, hostKey: pending, by: ctx.userId }, 'collect: host key accepted');
    return (await this.deps.repo.findState(ctx.organizationId, device.id))!;
  }

  async orgSettings(ctx: OrgContext): Promise<CollectOrgSettings> {
    return (await this.deps.repo.findOrgSettings(ctx.organizationId)) ?? DEFAULT_ORG_SETTINGS;
  }

  async setOrgSettings(ctx: OrgContext, body: unknown): Promise<CollectOrgSettings> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'collection settings are managed by the admins of the organization');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError('invalid_request', 'settings must be a JSON object');
    const b = body as Record<string, unknown>;
    const unknown = Object.keys(b).filter((k) => k !== 'default_schedule' && k !== 'timezone');
    if (unknown.length) throw new AppError('invalid_request', `unknown field(s) ${unknown.join(', ')}; allowed: default_schedule, timezone`);
    const current = await this.orgSettings(ctx);
    const next: CollectOrgSettings = {
      defaultSchedule: b.default_schedule === undefined ? current.defaultSchedule : (b.default_schedule as string),
      timezone: b.timezone === undefined ? current.timezone : (b.timezone as string),
    };
    if (typeof next.defaultSchedule !== 'string' || next.defaultSchedule.trim().split(/\s+/).length !== 5) throw new AppError('invalid_request', 'default_schedule must be a 5-field cron expression');
    const problem = typeof next.timezone === 'string' ? scheduleProblem(next.defaultSchedule, next.timezone) : 'timezone must be a string';
    if (problem) throw new AppError('invalid_request', problem);
    await this.deps.repo.upsertOrgSettings(ctx.organizationId, next, this.deps.clock.now().toISOString());
    return next;
  }

  /**
   * One scheduler tick (the `collect.schedule` task, itself fired once a minute across all processes):
   * enqueues each enabled device with a model whose schedule had a tick in the last few minutes, keyed
   * by device and tick, so every process and every re-run of this tick enqueues it once.
   */
  async enqueueDue(now: Date = this.deps.clock.now()): Promise<{ due: number; devices: number }> {
    const settings = await this.deps.repo.allOrgSettings();
    // Most devices share a few (cron, zone) pairs (the org default): each tick is computed once per tick run.
    const ticks = new Map<string, Date | Error>();
    const tickOf = (cron: string, tz: string): Date | Error => {
      const key = `${tz} ${cron}`;
      let t = ticks.get(key);
      if (t === undefined) {
        try {
          t = previousTick(cron, tz, now);
        } catch (err) {
          t = err as Error;
        }
        ticks.set(key, t);
      }
      return t;
    };
    const task = this.deps.collectTask();
    let due = 0;
    let seen = 0;
    let after: string | null = null;
    for (;;) {
      const page = await this.deps.devices.collectable(after, 500);
      if (page.length === 0) break;
      after = page.at(-1)!.id;
      const enqueues: Promise<unknown>[] = [];
      for (const d of page) {
        seen++;
        if (d.collection.credentialId === null) continue;
        const org = settings.get(d.organizationId) ?? DEFAULT_ORG_SETTINGS;
        const cron = d.collection.schedule ?? org.defaultSchedule;
        const tz = d.collection.schedule !== null ? (d.collection.timezone ?? 'UTC') : org.timezone;
        const tick = tickOf(cron, tz);
        if (tick instanceof Error) {
          this.deps.logger.warn({ err: tick, networkDeviceId: d.id }, 'collect: bad schedule skipped');
          continue;
        }
        if (now.getTime() - tick.getTime() > SCHEDULE_CATCH_UP_MS) continue;
        // Enqueued in the same turn: the database backend writes the page's tasks as one INSERT.
        enqueues.push(task.enqueue({ organization_id: d.organizationId, network_device_id: d.id, trigger: 'schedule' }, { idempotencyKey: `collect:${d.id}:${tick.toISOString()}` }));
        due++;
      }
      await Promise.all(enqueues);
    }
    return { due, devices: seen };
  }

  /** The `collect.device` handler: one attempt at one device. */
  async runCollection(args: CollectTaskArgs, ctx: Pick<TaskContext, 'attempt' | 'signal' | 'taskResult'>): Promise<CollectTaskResult> {
    const org: OrgContext = { organizationId: args.organization_id, userId: 'collector', role: 'member' };
    let device: NetworkDevice;
    try {
      device = await this.deps.devices.get(org, args.network_device_id);
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') return { ok: false, skipped: 'deleted' };
      throw err;
    }
    // A device disabled after the enqueue is still never collected (issue 10).
    if (!device.enabled) return { ok: false, skipped: 'disabled' };
    if (device.collection.model === null) return { ok: false, skipped: 'no_model' };
    const taskIdentifier = ctx.taskResult.id;
    const startedAt = this.deps.clock.now().toISOString();
    // Read once: the collector checks the device's key against it, and the success write below needs it.
    const state = await this.deps.repo.findState(device.organizationId, device.id);
    const result = await this.#collect(device, state, ctx.signal);
    if (result.ok) {
      // One statement for the first-use trust and the success state (it writes nothing when another key
      // was stored meanwhile); then the entry. Per device: device, credential, state, this, the entry.
      const stored = await this.deps.repo.recordSuccess(device.organizationId, device.id, result.hostKey, {
        last_task_id: taskIdentifier,
        last_attempt_at: startedAt,
        last_success_at: startedAt,
        last_stage: null,
        last_code: null,
        last_message: null,
      });
      if (stored !== result.hostKey) {
        // Another collection trusted a different key between our handshake and now: do not store this one.
        return this.#finalFailure(device, taskIdentifier, startedAt, 'connect', 'host_key_mismatch', `host key changed during the collection: stored ${stored}, this session saw ${result.hostKey}`, result.hostKey);
      }
      const entry: DeviceResultEntry = {
        task_identifier: taskIdentifier,
        organization_id: device.organizationId,
        network_device_id: device.id,
        collected_at: this.deps.clock.now().toISOString(),
        content_b64: Buffer.from(result.content, 'utf8').toString('base64'),
        ...this.#ignorePatterns(device),
      };
      await this.deps.streams.append(DEVICE_RESULTS_STREAM, { ...entry });
      return { ok: true, task_identifier: taskIdentifier, bytes: Buffer.byteLength(result.content), host_key: result.hostKey, host_key_trusted_now: !state?.hostKey };
    }
    if (result.code === 'host_key_mismatch' && result.hostKey) {
      await this.deps.repo.upsertState(device.organizationId, device.id, { pending_host_key: result.hostKey });
    }
    const lastAttempt = ctx.attempt >= ctx.taskResult.maxAttempts;
    if (!lastAttempt && !NOT_RETRIED.has(result.code)) {
      await this.deps.repo.upsertState(device.organizationId, device.id, {
        last_task_id: taskIdentifier,
        last_attempt_at: startedAt,
        last_stage: result.stage,
        last_code: result.code,
        last_message: `attempt ${ctx.attempt} of ${ctx.taskResult.maxAttempts}: ${result.message}`,
      });
      // Thrown: the task framework retries with backoff; only the last attempt's outcome goes on the stream.
      throw new Error(`${result.stage}: ${result.message}`);
    }
    return this.#finalFailure(device, taskIdentifier, startedAt, result.stage, result.code, result.message, result.hostKey);
  }

  /**
   * The model's ignore_patterns that the storage side (RE2 syntax, lib/line-patterns) also reads. Worked
   * out once per loaded model (checking compiles each pattern: ~0.13 ms a device for cisco-ios's three).
   */
  #ignorePatterns(device: NetworkDevice): { ignore_patterns?: string[] } {
    const model = this.deps.models.get(device.collection.model!);
    if (!model) return {};
    let field = this.#ignoreFields.get(model);
    if (!field) {
      const patterns = model.ignore_patterns.filter((p) => patternsProblem([p], 'p') === null);
      this.#ignoreFields.set(model, (field = patterns.length ? { ignore_patterns: patterns } : {}));
    }
    return field.ignore_patterns ? { ignore_patterns: [...field.ignore_patterns] } : {};
  }

  readonly #ignoreFields = new WeakMap<object, { ignore_patterns?: string[] }>();

  async #collect(device: NetworkDevice, state: DeviceCollectState | undefined, signal: AbortSignal): Promise<CollectResult> {
    const c = device.collection;
    const model = this.deps.models.get(c.model!);
    if (!model) return notConfigured('connect', `the device's model "${c.model}" is not loaded (was a custom model removed?)`);
    if (c.credentialId === null) return notConfigured('auth', 'the device has no credential_id');
    const credential = await this.deps.credentials.open(device.organizationId, c.credentialId);
    if (!credential) return notConfigured('auth', 'the device\'s credential was deleted');
    return this.deps.collector.collect(
      { host: device.address, port: c.port, knownHostKey: state?.hostKey ?? null, scrubSecrets: c.scrubSecrets, ...(c.commands ? { commands: c.commands } : {}) },
      model,
      credential,
      signal,
    );
  }

  async #finalFailure(device: NetworkDevice, taskIdentifier: string, startedAt: string, stage: CollectStage, code: CollectFailureCode, message: string, hostKey: string | null): Promise<CollectTaskResult> {
    const entry: DeviceResultEntry = {
      task_identifier: taskIdentifier,
      organization_id: device.organizationId,
      network_device_id: device.id,
      collected_at: this.deps.clock.now().toISOString(),
      error: `${stage}: ${message}`.slice(0, 1000),
      failure: { stage, code, message: message.slice(0, 1000) },
    };
    await this.deps.streams.append(DEVICE_RESULTS_STREAM, { ...entry });
    await this.deps.repo.upsertState(device.organizationId, device.id, {
      last_task_id: taskIdentifier,
      last_attempt_at: startedAt,
      last_stage: stage,
      last_code: code,
      last_message: message.slice(0, 1000),
    });
    this.deps.logger.warn({ networkDeviceId: device.id, stage, code, hostKey }, `collect: ${device.name} failed: ${message}`);
    return { ok: false, task_identifier: taskIdentifier, stage, code, message };
  }
}

function assertCollectable(device: NetworkDevice): void {
  if (!device.enabled) throw new AppError('conflict', `network device "${device.name}" is disabled; enable it first`);
  if (device.collection.model === null) throw new AppError('conflict', `network device "${device.name}" has no model: set one to collect it`);
  if (device.collection.credentialId === null) throw new AppError('conflict', `network device "${device.name}" has no credential_id: set one to collect it`);
}

function notConfigured(stage: CollectStage, message: string): CollectResult {
  return { ok: false, stage, code: 'not_configured', message, hostKey: null };
}

function emptyState(deviceId: string): DeviceCollectState {
  return { networkDeviceId: deviceId, hostKey: null, pendingHostKey: null, lastTaskId: null, lastAttemptAt: null, lastSuccessAt: null, lastStage: null, lastCode: null, lastMessage: null };
}

export const stateJson = (s: DeviceCollectState) => ({
  network_device_id: s.networkDeviceId,
  host_key: s.hostKey,
  pending_host_key: s.pendingHostKey,
  last_task_id: s.lastTaskId,
  last_attempt_at: s.lastAttemptAt,
  last_success_at: s.lastSuccessAt,
  last_stage: s.lastStage,
  last_code: s.lastCode,
  last_message: s.lastMessage,
});
