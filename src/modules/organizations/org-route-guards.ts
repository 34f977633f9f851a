import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { OrgContext } from './organizations.types.ts';

/**
 * preValidation hooks of organization-scoped routes: the caller's organization and role are resolved
 * (and, for `admin`, the role checked) before the schema looks at the body, so a caller who may not make
 * the request learns nothing about its input (DESIGN.md "Auth first"). `ctxOf` hands a handler the
 * context its hook resolved.
 */
export function orgRouteGuards(contextOf: (request: FastifyRequest) => Promise<OrgContext>, adminOnlyMessage = 'this needs the admin role in the organization') {
  const contexts = new WeakMap<FastifyRequest, OrgContext>();
  return {
    member: async (request: FastifyRequest) => {
      contexts.set(request, await contextOf(request));
    },
    admin: async (request: FastifyRequest) => {
      const ctx = await contextOf(request);
      if (ctx.role !== 'admin') throw new AppError('forbidden', adminOnlyMessage);
      contexts.set(request, ctx);
    },
    ctxOf: (request: FastifyRequest): OrgContext => {
      const ctx = contexts.get(request);
      if (!ctx) throw new Error('organization context read on a route without an org guard');
      return ctx;
    },
  };
}
