import type { Core, ModuleParts } from '../../core.ts';
import { probeVolume } from '../../storage/volume-probe.ts';
import { HealthRepository } from './health.repository.ts';
import { healthRoutes } from './health.routes.ts';
import { HealthService } from './health.service.ts';

export interface HealthModule extends ModuleParts {
  readonly health: HealthService;
}

export function createHealthModule(core: Core): HealthModule {
  const repository = new HealthRepository(core.db);
  const health = new HealthService({
    pingDatabase: () => repository.ping(),
    probeStorage: () => probeVolume(core.storage.root),
    minFreeBytes: core.config.files.minFreeBytes,
    logger: core.logger,
  });
  return { health, routes: [healthRoutes({ health })], tasks: [] };
}
