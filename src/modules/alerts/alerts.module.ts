import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { AlertsRepository } from './alerts.repository.ts';
import { alertsRoutes } from './alerts.routes.ts';
import { AlertsService, type AlertNotifier } from './alerts.service.ts';

export interface AlertsModule extends ModuleParts {
  readonly alerts: AlertsService;
}

/** Org-wide alerts: publishing raises them today, backups next; delivered to the org's webhooks. */
export function createAlertsModule(core: Core, deps: { contextOf: (request: FastifyRequest) => Promise<OrgContext>; notify: AlertNotifier }): AlertsModule {
  const alerts = new AlertsService(new AlertsRepository(core.db), core.clock, core.logger.child({ component: 'alerts' }), deps.notify);
  return { alerts, routes: [alertsRoutes({ alerts, contextOf: deps.contextOf })], tasks: [] };
}
