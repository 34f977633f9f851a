import type { FastifyInstance } from 'fastify';
import { requireAdmin, requireUser } from '../../http/auth.ts';
import type { UsersService } from './users.service.ts';
import type { User } from './users.types.ts';

export function toUserJson(user: User) {
  return {
    id: user.id,
    username: user.username,
    is_admin: user.isAdmin,
    quota_bytes: user.quotaBytes,
    created_at: user.createdAt,
  };
}

/** Extra fields for /users/me contributed by another feature. */
export type MeExtension = (user: User) => Promise<Record<string, unknown>>;

export interface UsersRouteDeps {
  users: UsersService;
  /** Extra fields for /users/me contributed by other features (e.g. organizations). */
  meExtensions?: readonly MeExtension[];
}

export function usersRoutes(deps: UsersRouteDeps) {
  return (app: FastifyInstance) => {
    app.get('/api/v1/users/me', { schema: { tags: ['users'], summary: 'The caller' } }, async (request) => {
      const me = requireUser(request);
      const user = await deps.users.get(me.userId);
      const extra = await Promise.all((deps.meExtensions ?? []).map((extend) => extend(user)));
      return Object.assign(toUserJson(user), ...extra);
    });

    app.get('/api/v1/users', { config: { access: 'admin' }, schema: { tags: ['users'], summary: 'All users (admin)' } }, async (request) => {
      requireAdmin(request);
      return { users: (await deps.users.list()).map(toUserJson) };
    });

    app.post<{ Body: { username: string; password?: string; is_admin?: boolean; quota_bytes?: number | null } }>(
      '/api/v1/users',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['users'],
          summary: 'Create a user (admin)',
          body: {
            type: 'object',
            required: ['username'],
            properties: {
              username: { type: 'string', minLength: 1, maxLength: 64 },
              password: { type: 'string', minLength: 8, maxLength: 1024 },
              is_admin: { type: 'boolean' },
              quota_bytes: { type: ['integer', 'null'], minimum: 0 },
            },
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        requireAdmin(request);
        const b = request.body;
        const user = await deps.users.create({ username: b.username, password: b.password, isAdmin: b.is_admin, quotaBytes: b.quota_bytes });
        return reply.status(201).send(toUserJson(user));
      },
    );
  };
}
