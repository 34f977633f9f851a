import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireUser } from '../../http/auth.ts';
import type { OrganizationsService } from './organizations.service.ts';
import type { Membership, OrgContext } from './organizations.types.ts';

/** The caller's organization context: `X-Organization` header or the default membership. */
export function orgContextOf(orgs: OrganizationsService) {
  return (request: FastifyRequest): Promise<OrgContext> => {
    const me = requireUser(request);
    const header = request.headers['x-organization'];
    return orgs.resolveContext(me.userId, Array.isArray(header) ? header[0] : header);
  };
}

export function membershipJson(m: Membership) {
  return { id: m.organization.id, name: m.organization.name, role: m.role, storage_quota_bytes: m.organization.storageQuotaBytes, storage_used_bytes: m.organization.storageUsedBytes, created_at: m.organization.createdAt };
}

const orgHeader = {
  type: 'object',
  properties: { 'x-organization': { type: 'string', description: 'organization id (default: your first organization)' } },
} as const;

export function organizationsRoutes(deps: { orgs: OrganizationsService }) {
  const contextOf = orgContextOf(deps.orgs);
  return (app: FastifyInstance) => {
    app.get('/api/v1/organizations', { schema: { tags: ['organizations'], summary: 'Organizations you belong to, with your role' } }, async (request) => {
      const me = requireUser(request);
      return { organizations: (await deps.orgs.listForUser(me.userId)).map(membershipJson) };
    });

    app.post<{ Body: { name: string; storage_quota_bytes?: number | null } }>(
      '/api/v1/organizations',
      {
        schema: {
          tags: ['organizations'],
          summary: 'Create an organization; you become its admin',
          body: {
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, storage_quota_bytes: { type: ['integer', 'null'], minimum: 0 } },
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const me = requireUser(request);
        const org = await deps.orgs.create(me.userId, { name: request.body.name, storageQuotaBytes: request.body.storage_quota_bytes });
        return reply.status(201).send(membershipJson({ organization: org, role: 'admin' }));
      },
    );

    app.get('/api/v1/organizations/members', { schema: { tags: ['organizations'], summary: 'Members of the current organization', headers: orgHeader } }, async (request) => {
      const ctx = await contextOf(request);
      const members = await deps.orgs.listMembers(ctx);
      return { organization_id: ctx.organizationId, members: members.map((m) => ({ user_id: m.userId, username: m.username, role: m.role, joined_at: m.joinedAt })) };
    });

    app.put<{ Body: { username: string; role: 'admin' | 'member' } }>(
      '/api/v1/organizations/members',
      {
        schema: {
          tags: ['organizations'],
          summary: 'Add a user to the current organization or change their role (admins only)',
          headers: orgHeader,
          body: {
            type: 'object',
            required: ['username', 'role'],
            properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, role: { type: 'string', enum: ['admin', 'member'] } },
            additionalProperties: false,
          },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const m = await deps.orgs.setMember(ctx, request.body.username, request.body.role);
        return { user_id: m.userId, username: m.username, role: m.role, joined_at: m.joinedAt };
      },
    );

    app.delete<{ Params: { userId: string } }>(
      '/api/v1/organizations/members/:userId',
      { schema: { tags: ['organizations'], summary: 'Remove a member (admins only)', headers: orgHeader, params: { type: 'object', properties: { userId: { type: 'string', maxLength: 64 } } } } },
      async (request, reply) => {
        const ctx = await contextOf(request);
        await deps.orgs.removeMember(ctx, request.params.userId);
        return reply.status(204).send();
      },
    );
  };
}
