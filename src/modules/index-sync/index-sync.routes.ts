import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { requireUser } from '../../http/auth.ts';
import type { RouteModule } from '../../http/server.ts';
import { TaskWaitTimeoutError } from '../../tasks/errors.ts';
import type { TaskDefinition } from '../../tasks/framework.ts';
import type { JsonValue } from '../../tasks/types.ts';
import { SYNC_MODES } from './index-diff.ts';
import { RECONCILE_SCOPES, type IndexSyncService } from './index-sync.service.ts';
import type { RebuildIndexArgs } from './index-sync.tasks.ts';

/**
 * The caller's organization context (`X-Organization`, else the default membership; 400 for a malformed
 * header, 403 when not a member): the organizations module's `contextOf`, handed in by app.ts so this
 * module imports nothing of organizations.
 */
export type OrganizationContextOf = (request: FastifyRequest) => Promise<{ organizationId: string; role: string }>;

/**
 * `POST /api/v1/index/rebuild/`: validates at once (400 bad mode or destructive mode without force, 404
 * unknown user), enqueues `storage.rebuild_index`, and waits up to `waitMs` for it. Finished: 200 with the
 * stats in `result`. Still running: 202, poll `GET /api/v1/admin/tasks/{task_id}` (the admin task API;
 * /api/v1/tasks belongs to records sync).
 * Who: system administrators, any scope, and for backups every organization or one (`organization_id`).
 * An organization's admin: the backups scope of the organization they act in (`X-Organization`, else
 * their default organization, like every organization-scoped route) and nothing else. 401 → 403 → 400:
 * the role is checked before the body is read (onRequest), the scope and organization the body names
 * before it is validated (preValidation).
 */
export function indexSyncRoutes(deps: {
  indexSync: IndexSyncService;
  rebuildTask: TaskDefinition<RebuildIndexArgs, JsonValue>;
  waitMs?: number;
  /** Without it (tests of this module alone) only system administrators may call the route. */
  contextOf?: OrganizationContextOf;
}): RouteModule {
  const waitMs = deps.waitMs ?? 10_000;
  const forbidden = (why: string) =>
    new AppError('forbidden', `${why}: this endpoint is for administrators, and for an organization's admins on the backups scope of their organization`);
  /** The organization an org admin acts in, per request (set in onRequest, read in preValidation). */
  const actingIn = new WeakMap<FastifyRequest, string>();

  /** A caller who is not a system administrator must be an admin of the organization they act in. */
  const authoriseCaller = async (request: FastifyRequest) => {
    const me = requireUser(request);
    if (me.isAdmin) return;
    if (!deps.contextOf) throw forbidden('not an administrator');
    const ctx = await deps.contextOf(request).catch((err: unknown) => {
      // Not a member, or a malformed X-Organization (which cannot name an organization this caller
      // administers): the same 403 as a member without the admin role, before any 400 of the body.
      if (err instanceof AppError && (err.code === 'forbidden' || err.code === 'invalid_request')) throw forbidden('not an admin of that organization');
      throw err;
    });
    if (ctx.role !== 'admin') throw forbidden('not an admin of that organization');
    actingIn.set(request, ctx.organizationId);
  };

  /**
   * Parsed, not yet validated: an org admin's body must ask for the backups scope of their own
   * organization (or name none: it is pinned here), whatever else it holds.
   */
  const authoriseRequest = async (request: FastifyRequest) => {
    const org = actingIn.get(request);
    if (org === undefined) return; // a system administrator
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw forbidden('not an administrator');
    const b = body as Record<string, unknown>;
    if (b.scope !== 'backups') throw forbidden('not an administrator');
    if (b.organization_id !== undefined && b.organization_id !== org) throw forbidden('not an admin of that organization');
    b.organization_id = org;
  };

  return (app: FastifyInstance) => {
    app.post<{ Body: RebuildIndexArgs }>(
      '/api/v1/index/rebuild/',
      {
        // Signed-in users; org admins are narrowed to their organization's backups by the two hooks.
        config: { access: 'user' },
        onRequest: authoriseCaller,
        preValidation: authoriseRequest,
        schema: {
          tags: ['admin'],
          summary: 'Reconcile an index with its storage (administrators; org admins: their backups)',
          description:
            'audit reports; sync adds missing and updates stale rows; clean deletes orphaned rows (force required); full = sync then clean (force required). ' +
            'scope files (default), backups or publishing. System administrators: any scope; backups of every organization, or of one with organization_id. ' +
            "An organization's admin: scope backups of the organization they act in (X-Organization, else their default organization) only; anything else is 403. " +
            'Answers 200 with the stats when the task finished within the request, else 202: poll GET /api/v1/admin/tasks/{task_id} (administrators).',
          body: {
            type: 'object',
            required: ['mode'],
            additionalProperties: false,
            properties: {
              mode: { type: 'string', enum: [...SYNC_MODES] },
              scope: { type: 'string', enum: [...RECONCILE_SCOPES] },
              user_id: { type: 'string', minLength: 1, maxLength: 128 },
              organization_id: { type: 'string', minLength: 1, maxLength: 64 },
              path: { type: 'string', maxLength: 4096 },
              dry_run: { type: 'boolean' },
              force: { type: 'boolean' },
            },
          },
        },
      },
      async (request, reply) => {
        const me = requireUser(request);
        const body = request.body;
        // Refuse bad input here, with a 4xx, before anything is queued.
        await deps.indexSync.validate({
          mode: body.mode,
          scope: body.scope,
          userId: body.user_id,
          path: body.path,
          organizationId: body.organization_id,
          dryRun: body.dry_run,
          force: body.force,
        });
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
          // The admin task API is for system administrators; an org admin runs an audit again instead.
          poll: me.isAdmin ? `/api/v1/admin/tasks/${task.id}` : null,
        });
      },
    );
  };
}
