import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { requireUser } from '../../http/auth.ts';
import type { ApiKeysService } from './api-keys.service.ts';
import type { AuthService } from './auth.service.ts';

const tokenPairSchema = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    refresh_token: { type: 'string' },
    token_type: { type: 'string' },
    expires_in: { type: 'integer' },
  },
  additionalProperties: true,
} as const;

// refresh_token may be left out by the web UI, whose refresh token is the HttpOnly cookie instead (issue 14).
const refreshTokenBody = {
  type: ['object', 'null'],
  properties: { refresh_token: { type: 'string', minLength: 1, maxLength: 200 } },
  additionalProperties: false,
} as const;

/**
 * The web UI's refresh token (issue 14): an HttpOnly, SameSite=Strict cookie scoped to /api/v1/auth, so
 * page scripts never see it and no other endpoint receives it; only refresh and logout read it, and
 * nothing authenticates with it (the HTTP core takes Bearer credentials only).
 */
export const REFRESH_COOKIE = 'sv_refresh';
const REFRESH_COOKIE_PATH = '/api/v1/auth';
/**
 * Refresh and logout accept the cookie only with this header: a cross-site form cannot set it (and a
 * cross-origin fetch that does needs a CORS preflight the server never grants), on top of SameSite=Strict.
 */
export const COOKIE_CSRF_HEADER = 'x-stormvault-session';

function cookieValue(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function setRefreshCookie(request: FastifyRequest, reply: FastifyReply, token: string | null, maxAgeSeconds: number): void {
  const attributes = [`Path=${REFRESH_COOKIE_PATH}`, 'HttpOnly', 'SameSite=Strict', `Max-Age=${token === null ? 0 : maxAgeSeconds}`];
  // request.protocol honours X-Forwarded-Proto from a trusted proxy (STORMVAULT_TRUST_PROXY).
  if (request.protocol === 'https') attributes.push('Secure');
  reply.header('set-cookie', `${REFRESH_COOKIE}=${token ?? ''}; ${attributes.join('; ')}`);
}

/** The refresh token of a refresh/logout call: the body's, else the cookie's (only with the CSRF header). */
function presentedRefreshToken(request: FastifyRequest<{ Body: { refresh_token?: string } | null }>): { token: string; viaCookie: boolean } | null {
  const fromBody = request.body?.refresh_token;
  if (fromBody) return { token: fromBody, viaCookie: false };
  const fromCookie = cookieValue(request, REFRESH_COOKIE);
  if (!fromCookie) return null;
  if (request.headers[COOKIE_CSRF_HEADER] !== '1') throw new AppError('unauthorized', `the session cookie is accepted only with the ${COOKIE_CSRF_HEADER}: 1 header`);
  return { token: fromCookie, viaCookie: true };
}

const apiKeySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    key_prefix: { type: 'string' },
    created_at: { type: 'string' },
    last_used_at: { type: ['string', 'null'] },
    revoked_at: { type: ['string', 'null'] },
  },
} as const;

export interface AuthRouteDeps {
  auth: AuthService;
  /** Lifetime of the refresh cookie (the refresh token's TTL). */
  refreshTokenTtlSeconds: number;
  apiKeys: ApiKeysService;
  /** Registers a sync device for a user at login (`device_name`); resolves to the server-issued id. */
  registerDevice?: (userId: string, name: string) => Promise<string>;
}

export function authRoutes(deps: AuthRouteDeps) {
  return (app: FastifyInstance) => {
    app.post<{ Body: { username: string; password: string; device_name?: string; session?: string } }>(
      '/api/v1/auth/login',
      {
        config: { access: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Exchange username and password for an access token (JWT) and a refresh token',
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: {
              username: { type: 'string', minLength: 1, maxLength: 64 },
              password: { type: 'string', minLength: 1, maxLength: 1024 },
              device_name: { type: 'string', minLength: 1, maxLength: 100, description: 'registers a sync device; the answer carries its device_id' },
              session: {
                type: 'string',
                enum: ['cookie'],
                description: 'cookie: the refresh token is set as an HttpOnly cookie (path /api/v1/auth) instead of being in the answer (the web UI)',
              },
            },
            additionalProperties: true,
          },
          response: { 200: tokenPairSchema },
        },
      },
      async (request, reply) => {
        const deviceName = request.body.device_name;
        const registerDevice = deps.registerDevice;
        let deviceId: string | undefined;
        // The device is registered only once the password checked out (issue 5: server-issued device ids).
        const device = deviceName && registerDevice ? async (userId: string) => (deviceId = await registerDevice(userId, deviceName)) : undefined;
        const { tokens } = await deps.auth.login(request.body.username, request.body.password, request.ip, { device });
        const answer = deviceId ? { ...tokens, device_id: deviceId } : tokens;
        if (request.body.session !== 'cookie') return answer;
        setRefreshCookie(request, reply, tokens.refresh_token, deps.refreshTokenTtlSeconds);
        const { refresh_token: _kept, ...withoutRefresh } = answer;
        return withoutRefresh;
      },
    );

    app.post<{ Body: { refresh_token?: string } | null }>(
      '/api/v1/auth/refresh',
      {
        config: { access: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Rotate a refresh token into a new token pair',
          description: `The refresh token is the body's, or else the ${REFRESH_COOKIE} cookie (with header ${COOKIE_CSRF_HEADER}: 1); a cookie is rotated in place and the new refresh token is not in the answer.`,
          body: refreshTokenBody,
          response: { 200: tokenPairSchema },
        },
      },
      async (request, reply) => {
        const presented = presentedRefreshToken(request);
        if (!presented) throw new AppError('unauthorized', 'no refresh token: send refresh_token or sign in again');
        try {
          const { tokens } = await deps.auth.refresh(presented.token);
          if (!presented.viaCookie) return tokens;
          setRefreshCookie(request, reply, tokens.refresh_token, deps.refreshTokenTtlSeconds);
          const { refresh_token: _kept, ...withoutRefresh } = tokens;
          return withoutRefresh;
        } catch (err) {
          // A dead cookie is dropped, so the browser stops presenting it.
          if (presented.viaCookie) setRefreshCookie(request, reply, null, 0);
          throw err;
        }
      },
    );

    app.post<{ Body: { refresh_token?: string } | null }>(
      '/api/v1/auth/logout',
      {
        // Public: the refresh token in the body is the credential (an expired access token must not stop a logout).
        config: { access: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Revoke the login a refresh token belongs to',
          body: refreshTokenBody,
        },
      },
      async (request, reply) => {
        const presented = presentedRefreshToken(request);
        if (!presented) throw new AppError('invalid_request', 'send refresh_token (or the session cookie)');
        await deps.auth.logout(presented.token);
        if (presented.viaCookie) setRefreshCookie(request, reply, null, 0);
        return reply.status(204).send();
      },
    );

    app.get('/api/v1/apikeys', { schema: { tags: ['auth'], summary: 'Your API keys (never the keys themselves)', response: { 200: { type: 'object', properties: { keys: { type: 'array', items: apiKeySchema } } } } } }, async (request) => {
      const me = requireUser(request);
      const keys = await deps.apiKeys.list(me.userId);
      return { keys: keys.map(toApiKeyJson) };
    });

    app.post<{ Body: { name?: string } }>(
      '/api/v1/apikeys',
      {
        schema: {
          tags: ['auth'],
          summary: 'Create an API key; the key is in this answer only',
          body: {
            type: 'object',
            properties: { name: { type: 'string', minLength: 1, maxLength: 100 } },
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const me = requireUser(request);
        const { key, record } = await deps.apiKeys.create(me.userId, request.body?.name ?? 'api');
        return reply.status(201).send({ ...toApiKeyJson(record), key });
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/apikeys/:id',
      { schema: { tags: ['auth'], summary: 'Revoke one of your API keys', params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } },
      async (request, reply) => {
        const me = requireUser(request);
        await deps.apiKeys.revoke(me.userId, request.params.id);
        return reply.status(204).send();
      },
    );
  };
}

function toApiKeyJson(record: { id: string; name: string; keyPrefix: string; createdAt: string; lastUsedAt: string | null; revokedAt: string | null }) {
  return {
    id: record.id,
    name: record.name,
    key_prefix: record.keyPrefix,
    created_at: record.createdAt,
    last_used_at: record.lastUsedAt,
    revoked_at: record.revokedAt,
  };
}
