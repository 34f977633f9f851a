import type { Core, ModuleParts } from '../../core.ts';
import { UsersRepository } from './users.repository.ts';
import { usersRoutes, type UsersRouteDeps } from './users.routes.ts';
import { UsersService } from './users.service.ts';

export interface UsersModule extends ModuleParts {
  readonly users: UsersService;
}

export function createUsersModule(core: Core, deps: Pick<UsersRouteDeps, 'meExtensions'> = {}): UsersModule {
  const repository = new UsersRepository(core.db);
  const users = new UsersService(repository, core.clock, core.config.files.defaultQuotaBytes);
  return { users, routes: [usersRoutes({ users, meExtensions: deps.meExtensions })], tasks: [] };
}
