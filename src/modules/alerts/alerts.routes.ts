import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { orgRouteGuards } from '../organizations/org-route-guards.ts';
import { alertJson, type AlertsService } from './alerts.service.ts';
import { ALERT_STATUSES, type AlertStatus } from './alerts.types.ts';

export interface AlertsRouteDeps {
  alerts: AlertsService;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
}

/** `/api/v1/alerts`: the organization's alerts (members read, admins acknowledge). */
export function alertsRoutes(deps: AlertsRouteDeps) {
  // Authenticated and scoped before the schema looks at the input (auth first, then validate).
  const { member: scoped, ctxOf } = orgRouteGuards(deps.contextOf);
  return (app: FastifyInstance) => {
    app.get<{ Querystring: { status?: AlertStatus; kind?: string; limit?: string; cursor?: string } }>(
      '/api/v1/alerts',
      {
        preValidation: scoped,
        schema: {
          tags: ['alerts'],
          summary: 'Alerts of the current organization, newest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              status: { type: 'string', enum: [...ALERT_STATUSES] },
              kind: { type: 'string', maxLength: 100 },
              limit: { type: 'string', pattern: '^\\d{1,3}$' },
              cursor: { type: 'string', maxLength: 500 },
            },
          },
        },
      },
      async (request) => {
        const q = request.query;
        const page = await deps.alerts.list(ctxOf(request), { status: q.status, kind: q.kind, limit: q.limit === undefined ? undefined : Number(q.limit), cursor: q.cursor });
        return { alerts: page.alerts.map(alertJson), next_cursor: page.nextCursor };
      },
    );

    app.post<{ Params: { id: string } }>(
      '/api/v1/alerts/:id/acknowledge',
      {
        preValidation: scoped,
        schema: { tags: ['alerts'], summary: 'Acknowledge an alert (admins)', params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } },
      },
      async (request) => alertJson(await deps.alerts.acknowledge(ctxOf(request), request.params.id)),
    );
  };
}
