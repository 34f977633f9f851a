import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../../http/auth.ts';
import type { RouteModule } from '../../http/server.ts';
import { TaskWaitTimeoutError } from '../../tasks/errors.ts';
import type { TaskDefinition } from '../../tasks/framework.ts';
import type { JsonValue } from '../../tasks/types.ts';
import { SYNC_MODES } from './index-diff.ts';
import { RECONCILE_SCOPES, type IndexSyncService } from './index-sync.service.ts';
import type { RebuildIndexArgs } from './index-sync.tasks.ts';

/**
 * Admin-only `POST /api/v1/index/rebuild/`: validates at once (400 bad mode or destructive mode without
 * force, 404 unknown user), enqueues `storage.rebuild_index`, and waits up to `waitMs` for it. Finished:
 * 200 with the stats in `result`. Still running: 202, poll `GET /api/v1/admin/tasks/{task_id}` (the admin
 * task API; /api/v1/tasks belongs to records sync).
 */
export function indexSyncRoutes(deps: { indexSync: IndexSyncService; rebuildTask: TaskDefinition<RebuildIndexArgs, JsonValue>; waitMs?: number }): RouteModule {
  const waitMs = deps.waitMs ?? 10_000;
  return (app: FastifyInstance) => {
    app.post<{ Body: RebuildIndexArgs }>(
      '/api/v1/index/rebuild/',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: 'Reconcile the file index with the disk (admin only)',
          description:
            'audit reports; sync adds missing and updates stale rows; clean deletes orphaned rows (force required); full = sync then clean (force required). ' +
            'Answers 200 with the stats when the task finished within the request, else 202: poll GET /api/v1/admin/tasks/{task_id}.',
          body: {
            type: 'object',
            required: ['mode'],
            additionalProperties: false,
            properties: {
              mode: { type: 'string', enum: [...SYNC_MODES] },
              scope: { type: 'string', enum: [...RECONCILE_SCOPES] },
              user_id: { type: 'string', minLength: 1, maxLength: 128 },
              path: { type: 'string', maxLength: 4096 },
              dry_run: { type: 'boolean' },
              force: { type: 'boolean' },
            },
          },
        },
      },
      async (request, reply) => {
        requireAdmin(request);
        const body = request.body;
        // Refuse bad input here, with a 4xx, before anything is queued.
        await deps.indexSync.validate({ mode: body.mode, scope: body.scope, userId: body.user_id, path: body.path, dryRun: body.dry_run, force: body.force });
        // The body schema (additionalProperties: false) is exactly the task's arguments: enqueue it as is.
        const task = await deps.rebuildTask.enqueue(body);
        try {
          await task.wait({ timeoutMs: waitMs });
        } catch (err) {
          if (!(err instanceof TaskWaitTimeoutError)) throw err;
        }
        const finished = task.status === 'SUCCESSFUL' || task.status === 'FAILED';
        const lastError = task.errors.at(-1);
        return reply.status(finished ? 200 : 202).send({
          task_id: task.id,
          status: task.status,
          result: task.status === 'SUCCESSFUL' ? task.returnValue : null,
          ...(task.status === 'FAILED' && lastError ? { error: lastError.message } : {}),
          poll: `/api/v1/admin/tasks/${task.id}`,
        });
      },
    );
  };
}
