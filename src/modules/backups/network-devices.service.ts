import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import type { StreamLog } from '../../streams/stream.port.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { BackupsRepository, DeviceWrite } from './backups.repository.ts';
import { checkKnownKeys, requireObject, validName, validPatterns, validText } from './backups.schemas.ts';
import type { NetworkDevice, Page } from './backups.types.ts';

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
  /** Why collection failed (part 2: `{stage, message}` flattened to text). */
  error?: string;
}

const DEVICE_FIELDS = ['name', 'address', 'group', 'backup_location_id', 'enabled', 'strip_patterns', 'ignore_patterns'] as const;

/** Routers and switches whose configurations are backed up (never the sync "devices"). */
export class NetworkDevicesService {
  constructor(
    private readonly repo: BackupsRepository,
    private readonly streams: StreamLog,
    private readonly clock: Clock,
    private readonly maxBytes: number,
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
    };
    if (!(await this.repo.findLocation(ctx.organizationId, d.backupLocationId))) throw new AppError('invalid_request', 'backup_location_id names no backup location of this organization');
    if (current && d.backupLocationId !== current.backupLocationId) {
      throw new AppError('invalid_request', 'a network device cannot move to another backup location (its history lives in the current one)');
    }
    return d;
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
