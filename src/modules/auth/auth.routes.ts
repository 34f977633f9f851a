import type { FastifyInstance } from 'fastify';
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

const refreshTokenBody = {
  type: 'object',
  required: ['refresh_token'],
  properties: { refresh_token: { type: 'string', minLength: 1, maxLength: 200 } },
  additionalProperties: false,
} as const;

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
  apiKeys: ApiKeysService;
  /** Registers a sync device for a user at login (`device_name`); resolves to the server-issued id. */
  registerDevice?: (userId: string, name: string) => Promise<string>;
}

export function authRoutes(deps: AuthRouteDeps) {
  return (app: FastifyInstance) => {
    app.post<{ Body: { username: string; password: string; device_name?: string } }>(
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
            },
            additionalProperties: true,
          },
          response: { 200: tokenPairSchema },
        },
      },
      async (request) => {
        const deviceName = request.body.device_name;
        const registerDevice = deps.registerDevice;
        let deviceId: string | undefined;
        // The device is registered only once the password checked out (issue 5: server-issued device ids).
        const device = deviceName && registerDevice ? async (userId: string) => (deviceId = await registerDevice(userId, deviceName)) : undefined;
        const { tokens } = await deps.auth.login(request.body.username, request.body.password, request.ip, { device });
        return deviceId ? { ...tokens, device_id: deviceId } : tokens;
      },
    );

    app.post<{ Body: { refresh_token: string } }>(
      '/api/v1/auth/refresh',
      {
        config: { access: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Rotate a refresh token into a new token pair',
          body: refreshTokenBody,
          response: { 200: tokenPairSchema },
        },
      },
      async (request) => (await deps.auth.refresh(request.body.refresh_token)).tokens,
    );

    app.post<{ Body: { refresh_token: string } }>(
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
        await deps.auth.logout(request.body.refresh_token);
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
