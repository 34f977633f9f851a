import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { orgRouteGuards } from '../organizations/org-route-guards.ts';
import type { WebhooksService } from './webhooks.service.ts';
import { WEBHOOK_EVENTS, type Webhook } from './webhooks.types.ts';

export function webhookJson(w: Webhook) {
  // The secret is write-only: never part of an answer.
  return { id: w.id, url: w.url, events: w.events, created_at: w.createdAt, last_delivery_at: w.lastDeliveryAt, last_delivery_status: w.lastDeliveryStatus };
}

/** `/api/v1/webhooks`: the organization's webhooks (admins only). */
export function webhooksRoutes(deps: { webhooks: WebhooksService; contextOf: (request: FastifyRequest) => Promise<OrgContext> }) {
  // Authenticated, scoped and authorised before the schema looks at the body.
  const { admin: adminScoped, ctxOf } = orgRouteGuards(deps.contextOf, 'webhooks are managed by the admins of the organization');
  return (app: FastifyInstance) => {
    app.get('/api/v1/webhooks', { preValidation: adminScoped, schema: { tags: ['webhooks'], summary: 'Webhooks of the current organization' } }, async (request) => ({
      webhooks: (await deps.webhooks.list(ctxOf(request))).map(webhookJson),
    }));

    app.post<{ Body: { url: string; events: string[]; secret: string } }>(
      '/api/v1/webhooks',
      {
        preValidation: adminScoped,
        schema: {
          tags: ['webhooks'],
          summary: 'Add a webhook: events are POSTed as JSON, signed in X-Stormvault-Signature (HMAC-SHA256)',
          body: {
            type: 'object',
            required: ['url', 'events', 'secret'],
            additionalProperties: false,
            properties: {
              url: { type: 'string', minLength: 1, maxLength: 2000 },
              events: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'string', enum: ['*', ...WEBHOOK_EVENTS] } },
              secret: { type: 'string', minLength: 16, maxLength: 256 },
            },
          },
        },
      },
      async (request, reply) => reply.status(201).send(webhookJson(await deps.webhooks.create(ctxOf(request), request.body))),
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/webhooks/:id',
      { preValidation: adminScoped, schema: { tags: ['webhooks'], summary: 'Remove a webhook', params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } },
      async (request, reply) => {
        await deps.webhooks.delete(ctxOf(request), request.params.id);
        return reply.status(204).send();
      },
    );
  };
}
