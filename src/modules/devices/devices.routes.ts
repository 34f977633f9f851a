import type { FastifyInstance } from 'fastify';
import { requireUser } from '../../http/auth.ts';
import type { DevicesService } from './devices.service.ts';
import type { Device } from './devices.types.ts';

export function deviceJson(d: Device) {
  return { id: d.id, name: d.name, created_at: d.createdAt, last_seen_at: d.lastSeenAt, retired_at: d.retiredAt, last_mutation_id: d.lastMutationId };
}

export function devicesRoutes(deps: { devices: DevicesService }) {
  return (app: FastifyInstance) => {
    app.get('/api/v1/devices', { schema: { tags: ['devices'], summary: 'Your devices (retired ones included)' } }, async (request) => {
      const me = requireUser(request);
      return { devices: (await deps.devices.list(me.userId)).map(deviceJson) };
    });

    app.post<{ Body: { name: string } }>(
      '/api/v1/devices',
      {
        schema: {
          tags: ['devices'],
          summary: 'Register a device; its server-issued id keys its vector clock entries and is never reused',
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 } }, additionalProperties: false },
        },
      },
      async (request, reply) => {
        const me = requireUser(request);
        return reply.status(201).send(deviceJson(await deps.devices.register(me.userId, request.body.name)));
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/devices/:id',
      { schema: { tags: ['devices'], summary: 'Retire a device: it can no longer push or pull', params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } },
      async (request) => {
        const me = requireUser(request);
        return deviceJson(await deps.devices.retire(me.userId, request.params.id));
      },
    );
  };
}
