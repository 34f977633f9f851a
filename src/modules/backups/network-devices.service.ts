import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import type { StreamLog } from '../../streams/stream.port.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { BackupsRepository, DeviceWrite } from './backups.repository.ts';
import { checkKnownKeys, requireObject, validBoolean, validCommands, validName, validOptionalName, validPatterns, validPort, validSchedule, validText } from './backups.schemas.ts';
import type { DeviceCollection, NetworkDevice, Page } from './backups.types.ts';

/** The device results stream: collected configurations (part 2's collectors, or pushes) enter here. */
export const DEVICE_RESULTS_STREAM = 'device:results';

/** One entry of `device:results`. */
export interface DeviceResultEntry {
  task_identifier: string;
  organization_id: string;
  network_device_id: string;
  collected_at: string;
  /** The configuration, base64 (absent when collection failed). */
  content_b64?: string;
  /** Why collection failed (part 2: `<stage>: <message>`, what the device status shows). */
  error?: string;
  /** Part 2's collectors: the model's volatile lines, ignored (with the device's) when deciding "changed". */
  ignore_patterns?: string[];
  /** Part 2's collectors: where it failed, machine-readable. */
  failure?: { stage: string; code: string; message: string };
}

/**
 * Checks the collection fields against what only the collect module knows (the model exists, the
 * credential belongs to the organization); throws invalid_request. Injected by app.ts, so backups imports
 * nothing of collect (no cycle between the modules).
 */
export type CollectionFieldsCheck = (ctx: OrgContext, collection: DeviceCollection) => Promise<void>;

const COLLECTION_FIELDS = ['model', 'port', 'credential_id', 'schedule', 'timezone', 'scrub_secrets', 'commands'] as const;

const DEVICE_FIELDS = ['name', 'address', 'group', 'backup_location_id', 'enabled', 'strip_patterns', 'ignore_patterns', ...COLLECTION_FIELDS] as const;

/** Routers and switches whose configurations are backed up (never the sync "devices"). */
export class NetworkDevicesService {
  constructor(
    private readonly repo: BackupsRepository,
    private readonly streams: StreamLog,
    private readonly clock: Clock,
    private readonly maxBytes: number,
    private readonly checkCollection: CollectionFieldsCheck = async () => {},
  ) {}

  #requireAdmin(ctx: OrgContext): void {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'managing network devices needs the admin role in the organization');
  }

  async #parse(ctx: OrgContext, body: unknown, current: NetworkDevice | null): Promise<DeviceWrite> {
    const b = requireObject(body, 'body');
    checkKnownKeys(b, DEVICE_FIELDS, 'network device');
    const pick = <T>(key: string, fallback: T | undefined, parse: (v: unknown) => T): T => {
      if (b[key] !== undefined) return parse(b[key]);
      if (fallback !== undefined) return fallback;
      return parse(undefined);
    };
    const d: DeviceWrite = {
      name: pick('name', current?.name, (v) => validName(v, 'name')),
      address: pick('address', current?.address, (v) => validText(v, 'address', 255)),
      group: pick('group', current?.group ?? 'default', (v) => validName(v, 'group')),
      backupLocationId: pick('backup_location_id', current?.backupLocationId, (v) => {
        if (typeof v !== 'string' || v === '') throw new AppError('invalid_request', 'backup_location_id is required');
        return v;
      }),
      enabled: pick('enabled', current?.enabled ?? true, (v) => {
        if (typeof v !== 'boolean') throw new AppError('invalid_request', 'enabled must be true or false');
        return v;
      }),
      stripPatterns: pick('strip_patterns', current?.stripPatterns ?? [], (v) => validPatterns(v, 'strip_patterns')),
      ignorePatterns: pick('ignore_patterns', current?.ignorePatterns ?? [], (v) => validPatterns(v, 'ignore_patterns')),
      collection: this.#parseCollection(b, current?.collection),
    };
    await this.checkCollection(ctx, d.collection);
    if (!(await this.repo.findLocation(ctx.organizationId, d.backupLocationId))) throw new AppError('invalid_request', 'backup_location_id names no backup location of this organization');
    if (current && d.backupLocationId !== current.backupLocationId) {
      throw new AppError('invalid_request', 'a network device cannot move to another backup location (its history lives in the current one)');
    }
    return d;
  }

  #parseCollection(b: Record<string, unknown>, current: DeviceCollection | undefined): DeviceCollection {
    const has = (k: string) => b[k] !== undefined;
    const c: DeviceCollection = current ?? { model: null, port: 22, credentialId: null, schedule: null, timezone: null, scrubSecrets: true, commands: null };
    const schedule = has('schedule') || has('timezone') ? validSchedule(has('schedule') ? b.schedule : c.schedule, has('timezone') ? b.timezone : c.timezone) : { schedule: c.schedule, timezone: c.timezone };
    return {
      model: has('model') ? validOptionalName(b.model, 'model') : c.model,
      port: has('port') ? validPort(b.port) : c.port,
      credentialId: has('credential_id') ? validOptionalName(b.credential_id, 'credential_id') : c.credentialId,
      ...schedule,
      scrubSecrets: has('scrub_secrets') ? validBoolean(b.scrub_secrets, 'scrub_secrets') : c.scrubSecrets,
      commands: has('commands') ? validCommands(b.commands) : c.commands,
    };
  }

  /** Devices a scheduler may collect (enabled, with a model), every organization, by id. */
  collectable(afterId: string | null, limit: number): Promise<NetworkDevice[]> {
    return this.repo.collectableDevices(afterId, limit);
  }

  /** How many devices of the organization log in with this credential (a credential in use is not deleted). */
  countUsingCredential(organizationId: string, credentialId: string): Promise<number> {
    return this.repo.countDevicesWithCredential(organizationId, credentialId);
  }

  /**
   * Runs every check of create (`id` undefined) or update without writing anything: the CSV import
   * (issue 10) checks all rows before it changes one. Throws what create/update would throw.
   */
  async validate(ctx: OrgContext, body: unknown, id?: string): Promise<void> {
    this.#requireAdmin(ctx);
    if (id === undefined) {
      const d = await this.#parse(ctx, body, null);
      if (await this.repo.findDeviceByName(ctx.organizationId, d.name)) throw new AppError('already_exists', `a network device named "${d.name}" exists`);
      return;
    }
    const current = await this.get(ctx, id);
    const d = await this.#parse(ctx, body, current);
    if (d.group !== current.group) throw new AppError('invalid_request', 'the group of a network device cannot change (it is part of the backup path)');
    if (d.name !== current.name) throw new AppError('invalid_request', 'the name of a network device cannot change (it is part of the backup path)');
  }

  async create(ctx: OrgContext, body: unknown): Promise<NetworkDevice> {
    this.#requireAdmin(ctx);
    const d = await this.#parse(ctx, body, null);
    if (await this.repo.findDeviceByName(ctx.organizationId, d.name)) throw new AppError('already_exists', `a network device named "${d.name}" exists`);
    const id = randomUUID();
    try {
      await this.repo.insertDevice(id, ctx.organizationId, d, this.clock.now().toISOString());
    } catch (err) {
      if (await this.repo.findDeviceByName(ctx.organizationId, d.name)) throw new AppError('already_exists', `a network device named "${d.name}" exists`);
      throw err;
    }
    return this.get(ctx, id);
  }

  async update(ctx: OrgContext, id: string, body: unknown): Promise<NetworkDevice> {
    this.#requireAdmin(ctx);
    const current = await this.get(ctx, id);
    const d = await this.#parse(ctx, body, current);
    if (d.name !== current.name && (await this.repo.findDeviceByName(ctx.organizationId, d.name))) throw new AppError('already_exists', `a network device named "${d.name}" exists`);
    if (d.group !== current.group) throw new AppError('invalid_request', 'the group of a network device cannot change (it is part of the backup path)');
    if (d.name !== current.name) throw new AppError('invalid_request', 'the name of a network device cannot change (it is part of the backup path)');
    await this.repo.updateDevice(ctx.organizationId, id, d, this.clock.now().toISOString());
    return this.get(ctx, id);
  }

  /**
   * Creates (`id` undefined) and updates many devices in ONE transaction (the CSV import, issue 10):
   * every item is checked first as create/update would check it, then all are written together, so a bad
   * item, a name taken meanwhile or a crash midway leaves none of them written.
   */
  async saveAll(ctx: OrgContext, items: ReadonlyArray<{ id?: string; body: unknown }>): Promise<{ created: number; updated: number }> {
    this.#requireAdmin(ctx);
    const writes: { id: string; create: boolean; d: DeviceWrite }[] = [];
    const names = new Set<string>();
    for (const item of items) {
      if (item.id === undefined) {
        const d = await this.#parse(ctx, item.body, null);
        if (names.has(d.name) || (await this.repo.findDeviceByName(ctx.organizationId, d.name))) throw new AppError('already_exists', `a network device named "${d.name}" exists`);
        names.add(d.name);
        writes.push({ id: randomUUID(), create: true, d });
      } else {
        const current = await this.get(ctx, item.id);
        const d = await this.#parse(ctx, item.body, current);
        if (d.group !== current.group) throw new AppError('invalid_request', 'the group of a network device cannot change (it is part of the backup path)');
        if (d.name !== current.name) throw new AppError('invalid_request', 'the name of a network device cannot change (it is part of the backup path)');
        writes.push({ id: item.id, create: false, d });
      }
    }
    const now = this.clock.now().toISOString();
    try {
      await inTransaction(this.repo.handle, async (tx) => {
        const repo = this.repo.on(tx);
        for (const w of writes) {
          if (w.create) await repo.insertDevice(w.id, ctx.organizationId, w.d, now);
          else await repo.updateDevice(ctx.organizationId, w.id, w.d, now);
        }
      });
    } catch (err) {
      // Rolled back: nothing of this batch is written. A name taken since the checks is the likely cause.
      for (const w of writes) {
        if (w.create && (await this.repo.findDeviceByName(ctx.organizationId, w.d.name))) {
          throw new AppError('already_exists', `a network device named "${w.d.name}" was created meanwhile; nothing was written`);
        }
      }
      throw err;
    }
    const created = writes.filter((w) => w.create).length;
    return { created, updated: writes.length - created };
  }

  /** Removes the device and its index rows; the versions stay in the repository or folder. */
  async delete(ctx: OrgContext, id: string): Promise<void> {
    this.#requireAdmin(ctx);
    await this.get(ctx, id);
    // The device and its index rows go together; its versions stay in storage (rebuild-index reports them).
    await inTransaction(this.repo.handle, (tx) => this.repo.on(tx).deleteDevice(ctx.organizationId, id));
  }

  async get(ctx: OrgContext, id: string): Promise<NetworkDevice> {
    const d = typeof id === 'string' && id.length <= 64 ? await this.repo.findDevice(ctx.organizationId, id) : undefined;
    if (!d) throw new AppError('not_found', 'no such network device');
    return d;
  }

  /** Several devices of the organization by id, in the order given; not_found names the first unknown id. */
  async getMany(ctx: OrgContext, ids: readonly string[]): Promise<NetworkDevice[]> {
    const valid = ids.filter((id) => typeof id === 'string' && id.length <= 64);
    const found = new Map((await this.repo.findDevices(ctx.organizationId, [...new Set(valid)])).map((d) => [d.id, d]));
    return ids.map((id) => {
      const d = found.get(id);
      if (!d) throw new AppError('not_found', `no such network device: ${String(id).slice(0, 64)}`);
      return d;
    });
  }

  async getByName(ctx: OrgContext, name: string): Promise<NetworkDevice> {
    const d = await this.repo.findDeviceByName(ctx.organizationId, name);
    if (!d) throw new AppError('not_found', `no network device named "${name}"`);
    return d;
  }

  async list(ctx: OrgContext, limit: number, cursor: string | undefined): Promise<Page<NetworkDevice>> {
    const after = cursor === undefined ? null : Buffer.from(cursor, 'base64url').toString('utf8');
    const items = await this.repo.listDevices(ctx.organizationId, limit + 1, after);
    const more = items.length > limit;
    if (more) items.pop();
    return { items, nextCursor: more ? Buffer.from(items.at(-1)!.name).toString('base64url') : null };
  }

  /**
   * A configuration collected by the caller's own tools enters the pipeline (issue 9, step 1). Resolves
   * once the entry is durable on `device:results`, with the task identifier that follows it through.
   */
  async push(ctx: OrgContext, id: string, content: Buffer): Promise<{ taskIdentifier: string }> {
    this.#requireAdmin(ctx);
    const device = await this.get(ctx, id);
    if (content.length === 0) throw new AppError('invalid_request', 'the configuration is empty');
    if (content.length > this.maxBytes) throw new AppError('payload_too_large', `a configuration may be at most ${this.maxBytes} bytes`, { limit: this.maxBytes });
    const taskIdentifier = randomUUID();
    const entry: DeviceResultEntry = {
      task_identifier: taskIdentifier,
      organization_id: ctx.organizationId,
      network_device_id: device.id,
      collected_at: this.clock.now().toISOString(),
      content_b64: content.toString('base64'),
    };
    await this.streams.append(DEVICE_RESULTS_STREAM, { ...entry });
    return { taskIdentifier };
  }
}
