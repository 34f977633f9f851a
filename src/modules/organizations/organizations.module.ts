import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { User } from '../users/users.types.ts';
import { OrganizationsRepository } from './organizations.repository.ts';
import { membershipJson, orgContextOf, organizationsRoutes } from './organizations.routes.ts';
import { OrganizationsService, type UserDirectory } from './organizations.service.ts';
import type { OrgContext } from './organizations.types.ts';

export interface OrganizationsModule extends ModuleParts {
  readonly organizations: OrganizationsService;
  /** The caller's organization context (`X-Organization` or the default membership), for other routes. */
  readonly contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  /** Adds the caller's organizations to `/api/v1/users/me`. */
  readonly meExtension: (user: User) => Promise<Record<string, unknown>>;
}

export function createOrganizationsModule(core: Core, deps: { users: UserDirectory }): OrganizationsModule {
  const organizations = new OrganizationsService(core.db, new OrganizationsRepository(core.db), deps.users, core.clock);
  return {
    organizations,
    contextOf: orgContextOf(organizations),
    meExtension: async (user) => ({ organizations: (await organizations.listForUser(user.id)).map(membershipJson) }),
    routes: [organizationsRoutes({ orgs: organizations })],
    tasks: [],
  };
}
