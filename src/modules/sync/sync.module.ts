import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { DevicesService } from '../devices/devices.service.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { RecordsSyncService } from '../records/records-sync.service.ts';
import type { SyncEvents } from './sync.events.ts';
import { SyncRepository } from './sync.repository.ts';
import { syncRoutes } from './sync.routes.ts';
import { SyncService, type SyncActivityObserver } from './sync.service.ts';
import { defineSyncTasks } from './sync.tasks.ts';

export interface SyncModule extends ModuleParts {
  readonly sync: SyncService;
}

export function createSyncModule(
  core: Core,
  deps: {
    records: { sync: RecordsSyncService };
    /** The change fan-out records publish to (app.ts hands the same instance to both). */
    events: SyncEvents;
    devices: DevicesService;
    contextOf: (request: FastifyRequest) => Promise<OrgContext>;
    observe?: SyncActivityObserver;
  },
): SyncModule {
  const { events } = deps;
  const sync = new SyncService(core.db, new SyncRepository(core.db, core.dialect), deps.records.sync, deps.devices, events, core.clock, core.config.sync, deps.observe);
  const tasks = defineSyncTasks(core.tasks, sync);
  return {
    sync,
    routes: [syncRoutes({ sync, devices: deps.devices, events, contextOf: deps.contextOf })],
    tasks,
    // Open event streams would hold http.close() until clients hang up.
    beforeClose: () => events.closeAll(),
  };
}
