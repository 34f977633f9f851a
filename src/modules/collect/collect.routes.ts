import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { orgRouteGuards } from '../organizations/org-route-guards.ts';
import { stateJson, type CollectService } from './collect.service.ts';
import { credentialJson, type CredentialsService } from './credentials.service.ts';
import type { DeviceImport } from './device-import.ts';
import type { ModelRegistry } from './model-registry.ts';

export interface CollectRoutesDeps {
  collect: CollectService;
  credentials: CredentialsService;
  imports: DeviceImport;
  models: ModelRegistry;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
}

const TAGS = ['backups'];
type IdParams = { Params: { id: string } };

/**
 * Collection API (issue 10), organization-scoped like the backups API: the org context and role are
 * checked in preValidation, before the body is parsed (DESIGN.md "Auth first"). Credentials are for
 * admins only, reading included.
 */
export function collectRoutes(deps: CollectRoutesDeps) {
  return async (app: FastifyInstance) => {
    await app.register(async (scope) => {
      const { member, admin, ctxOf } = orgRouteGuards(deps.contextOf);
      const read = { preValidation: member };
      const write = { preValidation: admin };

      scope.get('/api/v1/backup-models', { ...read, schema: { tags: TAGS, summary: 'Device models a network device can use (shipped and custom)' } }, async () => ({
        backup_models: deps.models.list().map(({ model, source }) => ({
          name: model.name,
          description: model.description,
          mode: model.mode,
          source,
          comment: model.comment,
          commands: model.commands.map((c) => ({ cmd: c.cmd, as: c.as })),
        })),
      }));

      // ---- credentials ----
      scope.get('/api/v1/credentials', { ...write, schema: { tags: TAGS, summary: 'Device credentials of the organization (secrets are never returned)' } }, async (request) => ({
        credentials: (await deps.credentials.list(ctxOf(request))).map(credentialJson),
      }));
      scope.post('/api/v1/credentials', { ...write, schema: { tags: TAGS, summary: 'Add a device credential {name, username, password? | private_key?, passphrase?, enable_password?}' } }, async (request, reply) =>
        reply.status(201).send(credentialJson(await deps.credentials.create(ctxOf(request), request.body))),
      );
      scope.get<IdParams>('/api/v1/credentials/:id', { ...write, schema: { tags: TAGS, summary: 'One device credential (without its secrets)' } }, async (request) =>
        credentialJson(await deps.credentials.get(ctxOf(request), request.params.id)),
      );
      scope.patch<IdParams>('/api/v1/credentials/:id', { ...write, schema: { tags: TAGS, summary: 'Change a credential; a secret set to null is removed' } }, async (request) =>
        credentialJson(await deps.credentials.update(ctxOf(request), request.params.id, request.body)),
      );
      scope.delete<IdParams>('/api/v1/credentials/:id', { ...write, schema: { tags: TAGS, summary: 'Delete a credential no device uses' } }, async (request, reply) => {
        await deps.credentials.delete(ctxOf(request), request.params.id);
        return reply.status(204).send();
      });

      // ---- collection of one device ----
      scope.post<IdParams>('/api/v1/network-devices/:id/backup-now', { ...write, schema: { tags: TAGS, summary: 'Collect the device now; 202 with the task id' } }, async (request, reply) => {
        const task = await deps.collect.backupNow(ctxOf(request), request.params.id);
        return reply.status(202).send({ task_id: task.id, status: task.status });
      });
      scope.get<IdParams>('/api/v1/network-devices/:id/collection', { ...read, schema: { tags: TAGS, summary: 'Host key and how the last collection ended (stage, code, message)' } }, async (request) =>
        stateJson(await deps.collect.state(ctxOf(request), request.params.id)),
      );
      scope.post<IdParams & { Body: { fingerprint?: string } | null }>(
        '/api/v1/network-devices/:id/accept-host-key',
        { ...write, schema: { tags: TAGS, summary: "Trust the device's changed SSH host key (optionally: only if it is {fingerprint})" } },
        async (request) => {
          const body = request.body ?? {};
          if (typeof body !== 'object' || Array.isArray(body)) throw new AppError('invalid_request', 'body must be a JSON object {fingerprint?}');
          return stateJson(await deps.collect.acceptHostKey(ctxOf(request), request.params.id, (body as { fingerprint?: unknown }).fingerprint));
        },
      );

      // ---- organization default schedule ----
      scope.get('/api/v1/collect-settings', { ...read, schema: { tags: TAGS, summary: "The organization's default collection schedule" } }, async (request) => settingsJson(await deps.collect.orgSettings(ctxOf(request))));
      scope.put('/api/v1/collect-settings', { ...write, schema: { tags: TAGS, summary: 'Set the default schedule {default_schedule, timezone}' } }, async (request) =>
        settingsJson(await deps.collect.setOrgSettings(ctxOf(request), request.body)),
      );

      // ---- CSV inventory import (text/csv body) ----
      await scope.register(async (csv) => {
        csv.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string', bodyLimit: 8 * 1024 * 1024 }, (_request, body, done) => done(null, body));
        csv.post<{ Querystring: { dry_run?: string; location?: string } }>(
          '/api/v1/network-devices/import',
          { ...write, schema: { tags: TAGS, summary: 'Create/update devices by name from CSV (name,address,model,group,credential); any bad row refuses the file' } },
          async (request, reply) => {
            if (typeof request.body !== 'string') throw new AppError('invalid_request', 'send the CSV with content-type text/csv');
            const dry = request.query.dry_run;
            if (dry !== undefined && dry !== 'true' && dry !== 'false') throw new AppError('invalid_request', 'dry_run must be true or false');
            const report = await deps.imports.run(ctxOf(request), request.body, { dryRun: dry === 'true', location: request.query.location });
            return reply.status(report.errors > 0 ? 400 : 200).send(report.errors > 0 ? { error: { code: 'invalid_request', message: `${report.errors} row(s) are invalid; nothing was imported` }, ...report } : report);
          },
        );
      });
    });
  };
}

const settingsJson = (s: { defaultSchedule: string; timezone: string }) => ({ default_schedule: s.defaultSchedule, timezone: s.timezone });
