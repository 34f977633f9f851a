import type { Core, ModuleParts } from '../../core.ts';
import { adminTasksRoutes } from './admin-tasks.routes.ts';

export function createAdminTasksModule(core: Core): ModuleParts {
  return { routes: [adminTasksRoutes({ tasks: core.tasks })], tasks: [] };
}
