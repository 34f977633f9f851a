import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { Principal } from '../lib/principal.ts';

/**
 * Who may call a route, declared once on the route (`config: { access: 'public' }`) and enforced for
 * every route by one `onRequest` hook, before the body is read or anything is validated (issue 12:
 * authenticate → 401, authorise → 403, only then validate → 400). Routes that say nothing need a
 * signed-in user, so a new route is protected unless it opts out.
 */
export type RouteAccess = 'public' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, when a valid `Authorization: Bearer` was sent; null otherwise. */
    principal: Principal | null;
    /** True when `Authorization: Bearer` carried the route's own service token (config.serviceToken), not a user's credential. */
    serviceTokenAccepted: boolean;
  }
  interface FastifyContextConfig {
    /** Default 'user'. 'public' routes answer anonymous callers; 'admin' routes need the admin role. */
    access?: RouteAccess;
    /** Also accept `Authorization: Basic` (WebDAV, issue 13), resolved by the injected AuthenticateBasic. */
    basicAuth?: boolean;
    /**
     * Also accept a non-user bearer token on this route: true when `token` is it (compare in constant
     * time). Checked before user authentication; a match sets `request.serviceTokenAccepted` and leaves
     * `principal` null. For scrapers that can only send `Authorization: Bearer` (Prometheus' `authorization`).
     */
    serviceToken?: (token: string) => boolean;
  }
}

/**
 * Resolves a bearer token (API key or access JWT) to the caller, or null when it does not authenticate.
 * Built by the composition root from the auth feature, so the HTTP core never imports a feature module.
 */
export type Authenticate = (token: string) => Promise<Principal | null>;

/**
 * Resolves HTTP Basic credentials (username + password or API key) to the caller, or null. Only routes
 * that opt in with `config: { basicAuth: true }` accept Basic (WebDAV clients, issue 13); it may throw
 * rate_limited when the login throttle refuses.
 */
export type AuthenticateBasic = (username: string, secret: string, ip: string) => Promise<Principal | null>;

/** The OpenAPI extension carrying a route's access level, so clients (and the route-walk test) can read it. */
export const ACCESS_EXTENSION = 'x-access';

export function routeAccess(config: { access?: RouteAccess } | undefined): RouteAccess {
  return config?.access ?? 'user';
}

/**
 * Installs authentication and route-level authorisation. Must run before routes are registered (its
 * onRoute hook annotates each route's OpenAPI entry). A request without the header stays anonymous; a
 * header that does not authenticate is a 401 at once, on every route, so a typo in a key never silently
 * degrades to anonymous access.
 */
export function installAuth(app: FastifyInstance, authenticate: Authenticate, authenticateBasic?: AuthenticateBasic): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('serviceTokenAccepted', false);

  app.addHook('onRoute', (route) => {
    const access = routeAccess(route.config);
    const schema = (route.schema ??= {}) as Record<string, unknown>;
    // `security: []` alone used to mark a public route in the docs; now it must match the declared access,
    // or a route meant to be public would silently answer 401 (and one documented public, stay protected).
    if (Array.isArray(schema.security) && schema.security.length === 0 && access !== 'public') {
      throw new Error(`${String(route.method)} ${route.url}: schema.security [] says public; declare config: { access: 'public' } instead`);
    }
    schema[ACCESS_EXTENSION] = access;
    if (access === 'public') schema.security = [];
  });

  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization;
    const basic = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (basic && authenticateBasic && !request.is404 && request.routeOptions.config?.basicAuth) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 1) throw new AppError('unauthorized', 'Basic credentials must be "username:password"');
      request.principal = await authenticateBasic(decoded.slice(0, colon), decoded.slice(colon + 1), request.ip);
      if (!request.principal) throw new AppError('unauthorized', 'wrong username, password or API key');
    } else if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) throw new AppError('unauthorized', 'Authorization header must be "Bearer <api key or access token>"');
      const serviceToken = request.is404 ? undefined : request.routeOptions.config?.serviceToken;
      if (serviceToken?.(match[1]!)) request.serviceTokenAccepted = true;
      else request.principal = await authenticate(match[1]!);
      if (!request.principal && !request.serviceTokenAccepted) throw new AppError('unauthorized', 'invalid, expired or revoked credentials');
    }
    // No route matched: the 404 handler answers, whoever asks (it reveals nothing about protected routes).
    if (request.is404) return;
    const access = routeAccess(request.routeOptions.config);
    if (access === 'public') return;
    const principal = requireUser(request);
    if (access === 'admin' && !principal.isAdmin) throw new AppError('forbidden', 'this endpoint is for administrators');
  });
}

/** The caller of a route that is not public (the onRequest hook already refused anonymous callers). */
export function requireUser(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthorized', 'authentication required: send Authorization: Bearer <api key or access token>');
  return request.principal;
}

export function requireAdmin(request: FastifyRequest): Principal {
  const principal = requireUser(request);
  if (!principal.isAdmin) throw new AppError('forbidden', 'this endpoint is for administrators');
  return principal;
}
