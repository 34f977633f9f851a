import { randomBytes } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { DevicesRepository } from './devices.repository.ts';
import { DEVICE_ID_PATTERN, type Device } from './devices.types.ts';

export { DEVICE_ID_PATTERN };

export class DevicesService {
  constructor(
    private readonly devices: DevicesRepository,
    private readonly clock: Clock,
  ) {}

  /** Registers a device for the user (at login with `device_name`, or POST /api/v1/devices). */
  async register(userId: string, name: string): Promise<Device> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100) throw new AppError('invalid_request', 'device name must be 1-100 characters');
    // 64 random bits; the primary key refuses the (astronomically unlikely) repeat, and retired rows stay.
    return this.devices.insert({
      id: `dev_${randomBytes(8).toString('hex')}`,
      userId,
      name: trimmed,
      createdAt: this.clock.now().toISOString(),
    });
  }

  list(userId: string): Promise<Device[]> {
    return this.devices.listForUser(userId);
  }

  async retire(userId: string, id: string): Promise<Device> {
    const device = await this.devices.findForUser(userId, id);
    if (!device) throw new AppError('not_found', 'no such device');
    if (!device.retiredAt) await this.devices.retire(userId, id, this.clock.now().toISOString());
    return (await this.devices.findForUser(userId, id))!;
  }

  /** The caller's active device; another user's device, an unknown or a retired one is refused. */
  async requireActive(userId: string, id: string | undefined): Promise<Device> {
    if (!id) throw new AppError('invalid_request', 'device_id is required (register one with POST /api/v1/devices)');
    if (!DEVICE_ID_PATTERN.test(id)) throw new AppError('invalid_request', 'device_id is not a device id');
    const device = await this.devices.findForUser(userId, id);
    if (!device) throw new AppError('forbidden', 'that device is not one of yours');
    if (device.retiredAt) throw new AppError('forbidden', 'that device was retired; register a new one');
    return device;
  }
}
