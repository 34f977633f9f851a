import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../../http/auth.ts';
import type { RouteModule } from '../../http/server.ts';
import type { TaskFramework } from '../../tasks/framework.ts';
import type { TaskResult } from '../../tasks/task-result.ts';
import { TASK_STATUSES, type TaskStatus } from '../../tasks/types.ts';

/**
 * Admin-only API over background tasks (issue 3). It lives under /api/v1/admin/tasks because
 * /api/v1/tasks belongs to the synced to-do tasks of records sync (issue 5; the lead's route decision).
 * Non-admins get 403. Stack traces of failed attempts are not sent (house rule: no stacks to clients);
 * `stormvault tasks show ID` prints them on the server.
 */
export function adminTasksRoutes(deps: { tasks: TaskFramework }): RouteModule {
  const { tasks } = deps;
  const name = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[a-z0-9][a-z0-9._-]*$' } as const;
  const idParams = {
    type: 'object',
    required: ['id'],
    additionalProperties: false,
    properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  } as const;

  return (app: FastifyInstance) => {
    app.get<{ Querystring: { status?: TaskStatus; queue?: string; name?: string; dead?: 'true' | 'false'; limit?: string } }>(
      '/api/v1/admin/tasks',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: 'List background tasks, newest first (admin only)',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              status: { type: 'string', enum: [...TASK_STATUSES] },
              queue: name,
              name,
              dead: { type: 'string', enum: ['true', 'false'], description: 'only dead-lettered (true) or only not (false)' },
              limit: { type: 'string', pattern: '^(?:[1-9]\\d{0,2}|1000)$', description: '1..1000, default 100' },
            },
          },
        },
      },
      async (request) => {
        requireAdmin(request);
        const q = request.query;
        const results = await tasks.list({
          status: q.status,
          queue: q.queue,
          taskName: q.name,
          deadLettered: q.dead === undefined ? undefined : q.dead === 'true',
          limit: q.limit === undefined ? undefined : Number(q.limit),
        });
        return { backend: tasks.backendKind, tasks: results.map(publicJson) };
      },
    );

    app.get<{ Params: { id: string } }>(
      '/api/v1/admin/tasks/:id',
      { config: { access: 'admin' }, schema: { tags: ['admin'], summary: 'One background task and its result (admin only)', params: idParams } },
      async (request) => {
        requireAdmin(request);
        return publicJson(await tasks.getResult(request.params.id));
      },
    );

    app.post<{ Params: { id: string } }>(
      '/api/v1/admin/tasks/:id/retry',
      { config: { access: 'admin' }, schema: { tags: ['admin'], summary: 'Requeue a FAILED (dead-lettered or cancelled) task (admin only); 409 otherwise', params: idParams } },
      async (request) => {
        requireAdmin(request);
        return publicJson(await tasks.retry(request.params.id));
      },
    );

    app.post<{ Params: { id: string } }>(
      '/api/v1/admin/tasks/:id/cancel',
      { config: { access: 'admin' }, schema: { tags: ['admin'], summary: 'Cancel a READY or RUNNING task (admin only); 409 when already finished', params: idParams } },
      async (request) => {
        requireAdmin(request);
        return publicJson(await tasks.cancel(request.params.id));
      },
    );
  };
}

function publicJson(result: TaskResult) {
  const json = result.toJSON();
  return { ...json, errors: json.errors.map(({ stack: _stack, ...rest }) => rest) };
}
