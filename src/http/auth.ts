import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { ApiKeysService } from '../modules/auth/api-keys.service.ts';
import { looksLikeJwt, verifyJwt } from '../modules/auth/jwt.ts';
import type { UsersRepository } from '../modules/users/users.repository.ts';
import type { Principal } from '../modules/users/users.types.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, when a valid `Authorization: Bearer` was sent; null otherwise. */
    principal: Principal | null;
  }
}

export interface AuthDeps {
  apiKeys: ApiKeysService;
  users: UsersRepository;
  jwtSecret: string;
  clock: Clock;
}

/**
 * Resolves `Authorization: Bearer <api key | access JWT>` on every request. A request without the header
 * stays anonymous (public routes such as /s/{token} work); a header that does not authenticate is a 401
 * at once, so a typo in a key never silently degrades to anonymous access. Routes then call
 * requireUser / requireAdmin.
 */
export function installAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization;
    if (header === undefined) return;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new AppError('unauthorized', 'Authorization header must be "Bearer <api key or access token>"');
    request.principal = await resolveBearer(match[1]!, deps);
    if (!request.principal) throw new AppError('unauthorized', 'invalid, expired or revoked credentials');
  });
}

async function resolveBearer(token: string, deps: AuthDeps): Promise<Principal | null> {
  if (looksLikeJwt(token)) {
    const claims = verifyJwt(token, deps.jwtSecret, deps.clock.now());
    if (!claims || claims.typ !== 'access') return null;
    const user = await deps.users.findById(claims.sub);
    return user ? { userId: user.id, username: user.username, isAdmin: user.isAdmin, via: 'jwt' } : null;
  }
  return deps.apiKeys.authenticate(token);
}

export function requireUser(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthorized', 'authentication required: send Authorization: Bearer <api key or access token>');
  return request.principal;
}

export function requireAdmin(request: FastifyRequest): Principal {
  const principal = requireUser(request);
  if (!principal.isAdmin) throw new AppError('forbidden', 'this endpoint is for administrators');
  return principal;
}
