import type { Core, ModuleParts } from '../../core.ts';
import { DevicesRepository } from './devices.repository.ts';
import { devicesRoutes } from './devices.routes.ts';
import { DevicesService } from './devices.service.ts';

export interface DevicesModule extends ModuleParts {
  readonly devices: DevicesService;
}

export function createDevicesModule(core: Core): DevicesModule {
  const devices = new DevicesService(new DevicesRepository(core.db), core.clock);
  return { devices, routes: [devicesRoutes({ devices })], tasks: [] };
}
