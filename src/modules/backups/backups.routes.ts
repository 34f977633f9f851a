import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { AppError } from '../../errors.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { orgRouteGuards } from '../organizations/org-route-guards.ts';
import type { BackupLocationsService } from './backup-locations.service.ts';
import { validLimit } from './backups.schemas.ts';
import { backupJson, deviceJson, locationJson } from './backups.json.ts';
import type { NetworkDevicesService } from './network-devices.service.ts';
import type { StoredBackupsService } from './stored-backups.service.ts';

export interface BackupsRoutesDeps {
  locations: BackupLocationsService;
  devices: NetworkDevicesService;
  storedBackups: StoredBackupsService;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  maxBytes: number;
}

const TAGS = ['backups'];
const orgHeader = { type: 'object', properties: { 'x-organization': { type: 'string' } } } as const;
type IdParams = { Params: { id: string } };

/**
 * Backups API (issue 9), organization-scoped: admins manage, members read and download, another
 * organization's ids are 404. The org context and the role are checked in preValidation, so a caller
 * who may not make the request learns nothing about its body (DESIGN.md "Auth first").
 */
export function backupsRoutes(deps: BackupsRoutesDeps) {
  return async (app: FastifyInstance) => {
    await app.register(async (scope) => {
      const { member, admin, ctxOf } = orgRouteGuards(deps.contextOf, 'managing backups needs the admin role in the organization');
      const read = { preValidation: member };
      const write = { preValidation: admin };

      // ---- backup locations ----
      scope.get('/api/v1/backup-locations', { ...read, schema: { tags: TAGS, summary: 'Backup locations of the organization', headers: orgHeader } }, async (request) => ({
        backup_locations: (await deps.locations.list(ctxOf(request))).map(locationJson),
      }));
      scope.post('/api/v1/backup-locations', { ...write, schema: { tags: TAGS, summary: 'Create a backup location (git or fs)', headers: orgHeader } }, async (request, reply) =>
        reply.status(201).send(locationJson(await deps.locations.create(ctxOf(request), request.body))),
      );
      scope.get<IdParams>('/api/v1/backup-locations/:id', { ...read, schema: { tags: TAGS, summary: 'One backup location' } }, async (request) =>
        locationJson(await deps.locations.get(ctxOf(request), request.params.id)),
      );
      scope.patch<IdParams>('/api/v1/backup-locations/:id', { ...write, schema: { tags: TAGS, summary: 'Rename or reconfigure a backup location' } }, async (request) =>
        locationJson(await deps.locations.update(ctxOf(request), request.params.id, request.body)),
      );
      scope.delete<IdParams>('/api/v1/backup-locations/:id', { ...write, schema: { tags: TAGS, summary: 'Delete a backup location without devices (storage is kept)' } }, async (request, reply) => {
        await deps.locations.delete(ctxOf(request), request.params.id);
        return reply.status(204).send();
      });

      // ---- network devices ----
      scope.get<{ Querystring: { limit?: string; cursor?: string } }>(
        '/api/v1/network-devices',
        { ...read, schema: { tags: TAGS, summary: 'Network devices (routers, switches) of the organization, by name' } },
        async (request) => {
          const page = await deps.devices.list(ctxOf(request), validLimit(request.query.limit), request.query.cursor);
          return { network_devices: page.items.map(deviceJson), next_cursor: page.nextCursor };
        },
      );
      scope.post('/api/v1/network-devices', { ...write, schema: { tags: TAGS, summary: 'Add a network device' } }, async (request, reply) =>
        reply.status(201).send(deviceJson(await deps.devices.create(ctxOf(request), request.body))),
      );
      scope.get<IdParams>('/api/v1/network-devices/:id', { ...read, schema: { tags: TAGS, summary: 'One network device with its backup status' } }, async (request) =>
        deviceJson(await deps.devices.get(ctxOf(request), request.params.id)),
      );
      scope.patch<IdParams>('/api/v1/network-devices/:id', { ...write, schema: { tags: TAGS, summary: 'Change a network device' } }, async (request) =>
        deviceJson(await deps.devices.update(ctxOf(request), request.params.id, request.body)),
      );
      scope.delete<IdParams>('/api/v1/network-devices/:id', { ...write, schema: { tags: TAGS, summary: 'Delete a network device and its index rows (versions stay in storage)' } }, async (request, reply) => {
        await deps.devices.delete(ctxOf(request), request.params.id);
        return reply.status(204).send();
      });
      scope.get<IdParams & { Querystring: { limit?: string; cursor?: string } }>(
        '/api/v1/network-devices/:id/backups',
        { ...read, schema: { tags: TAGS, summary: 'Stored versions of a device, newest first (from the index)' } },
        async (request) => {
          const ctx = ctxOf(request);
          const device = await deps.devices.get(ctx, request.params.id);
          const page = await deps.storedBackups.history(ctx, device, validLimit(request.query.limit), request.query.cursor);
          return { stored_backups: page.items.map(backupJson), next_cursor: page.nextCursor };
        },
      );

      // Pushes take the raw body (any content type), read here with the configured limit.
      await scope.register(async (raw) => {
        raw.removeAllContentTypeParsers();
        raw.addContentTypeParser('*', (_request, _payload, done) => done(null));
        raw.post<IdParams>(
          '/api/v1/network-devices/:id/backups',
          { ...write, schema: { tags: TAGS, summary: 'Push a configuration collected by your own tools (raw body); 202 with the task identifier' } },
          async (request, reply) => {
            const ctx = ctxOf(request);
            await deps.devices.get(ctx, request.params.id); // 404 before reading a byte
            const content = await readLimited(request.raw, deps.maxBytes, reply);
            const { taskIdentifier } = await deps.devices.push(ctx, request.params.id, content);
            return reply.status(202).send({ task_identifier: taskIdentifier });
          },
        );
      });

      // ---- stored backups ----
      scope.get<IdParams>('/api/v1/stored-backups/:id', { ...read, schema: { tags: TAGS, summary: 'One stored version (from the index)' } }, async (request) =>
        backupJson(await deps.storedBackups.get(ctxOf(request), request.params.id)),
      );
      scope.get<IdParams>('/api/v1/stored-backups/:id/download', { ...read, schema: { tags: TAGS, summary: 'The content of a stored version (read by a storage worker; 504 when none answers)' } }, async (request, reply) => {
        const { backup, device, content } = await deps.storedBackups.content(ctxOf(request), request.params.id);
        const filename = `${device?.name ?? backup.networkDeviceId}_${backup.collectedAt.replace(/[-:]/g, '').replace(/\.\d+/, '')}.cfg`;
        return reply
          .header('content-type', 'text/plain; charset=utf-8')
          .header('content-disposition', `attachment; filename="${filename}"`)
          .header('x-content-sha256', backup.sha256)
          .send(content);
      });
      scope.get<IdParams & { Querystring: { against?: string; format?: string } }>(
        '/api/v1/stored-backups/:id/diff',
        { ...read, schema: { tags: TAGS, summary: 'Diff against another version of the same device, or the previous one (?format=json for hunks)' } },
        async (request, reply) => {
          const against = request.query.against ?? 'previous';
          const format = request.query.format ?? 'unified';
          if (format !== 'unified' && format !== 'json') throw new AppError('invalid_request', 'format must be "unified" or "json"');
          const d = await deps.storedBackups.diff(ctxOf(request), request.params.id, against, format);
          if ('hunks' in d) return { from: backupJson(d.from), to: backupJson(d.to), hunks: d.hunks };
          return reply.header('content-type', 'text/x-diff; charset=utf-8').send(d.unified);
        },
      );
    });
  };
}

/** Reads a request body into memory up to `limit` bytes; beyond it a 413 before reading the rest. */
async function readLimited(stream: Readable, limit: number, reply: FastifyReply): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      reply.header('connection', 'close');
      throw new AppError('payload_too_large', `a configuration may be at most ${limit} bytes`, { limit });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
