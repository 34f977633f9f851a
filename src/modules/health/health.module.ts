import type { Core, ModuleParts } from '../../core.ts';
import { healthRoutes } from './health.routes.ts';

export function createHealthModule(core: Core): ModuleParts {
  return { routes: [healthRoutes({ db: core.db, storageRoot: core.storage.root, minFreeBytes: core.config.files.minFreeBytes })], tasks: [] };
}
