import type { DbOrTx, DevicesTable } from '../../db/schema.ts';
import type { Device } from './devices.types.ts';

function toDevice(row: DevicesTable): Device {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    lastMutationId: Number(row.last_mutation_id),
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    retiredAt: row.retired_at,
  };
}

export class DevicesRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(device: Pick<Device, 'id' | 'userId' | 'name' | 'createdAt'>): Promise<Device> {
    const row: DevicesTable = {
      id: device.id,
      user_id: device.userId,
      name: device.name,
      last_mutation_id: 0,
      created_at: device.createdAt,
      last_seen_at: null,
      retired_at: null,
    };
    await this.db.insertInto('devices').values(row).execute();
    return toDevice(row);
  }

  async listForUser(userId: string): Promise<Device[]> {
    const rows = await this.db.selectFrom('devices').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toDevice);
  }

  async findForUser(userId: string, id: string): Promise<Device | undefined> {
    const row = await this.db.selectFrom('devices').selectAll().where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    return row && toDevice(row);
  }

  /** Rows are never deleted, only retired: that is what keeps device ids from ever being reused. */
  async retire(userId: string, id: string, now: string): Promise<void> {
    await this.db.updateTable('devices').set({ retired_at: now }).where('user_id', '=', userId).where('id', '=', id).where('retired_at', 'is', null).execute();
  }
}
