import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { TASK_PRIORITIES, TASK_STATUSES, type EntityName } from './records.entities.ts';
import { historyJson, recordJson } from './records.json.ts';
import type { RecordsService } from './records.service.ts';
import { TASK_ORDERS, type TaskOrder } from './records.types.ts';

export interface RecordsRouteDeps {
  records: RecordsService;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
}

const orgHeader = {
  type: 'object',
  properties: {
    'x-organization': { type: 'string', description: 'organization id (default: your first organization)' },
    'if-match': { type: 'string', description: 'the version you last read, e.g. "3": a different current version answers 412' },
  },
} as const;
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const page = {
  // Out of range is a 400, never a silent default (issue 12).
  limit: { type: 'string', pattern: '^(?:[1-9]\\d?|1\\d\\d|200)$', description: '1-200, default 50' },
  offset: { type: 'string', pattern: '^\\d{1,9}$', description: 'default 0' },
} as const;

const taskBody = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'client-generated UUID (optional on create)' },
    title: { type: 'string' },
    description: { type: 'string' },
    status: { type: 'string', enum: [...TASK_STATUSES] },
    priority: { type: 'string', enum: [...TASK_PRIORITIES] },
    due_date: { type: ['string', 'null'], description: 'YYYY-MM-DD or ISO-8601 date-time' },
    assignee_id: { type: ['string', 'null'], description: 'a member user id' },
    project_id: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    custom_fields: { type: 'object', additionalProperties: true },
  },
} as const;
const commentBody = {
  type: 'object',
  properties: { id: { type: 'string' }, task_id: { type: 'string' }, parent_id: { type: ['string', 'null'] }, body: { type: 'string' } },
} as const;
const projectBody = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, archived: { type: 'boolean' } } } as const;

function pageOf(query: { limit?: string; offset?: string }): { limit: number; offset: number } {
  const limit = query.limit === undefined ? 50 : Number(query.limit);
  if (limit < 1 || limit > 200) throw new AppError('invalid_request', 'limit must be 1-200');
  return { limit, offset: query.offset === undefined ? 0 : Number(query.offset) };
}

/** `If-Match: "3"` (or W/"3" or 3) → 3; absent → undefined. */
export function parseIfMatch(request: FastifyRequest): number | undefined {
  const header = request.headers['if-match'];
  if (header === undefined || String(header).trim() === '*') return undefined; // "*": any current version (RFC 9110 13.1.1)
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(String(header));
  if (!match) throw new AppError('invalid_request', 'If-Match must be the record version, e.g. "3"');
  return Number(match[1]);
}

function listed<T>(items: T[], p: { limit: number; offset: number }, map: (t: T) => unknown) {
  const hasMore = items.length > p.limit;
  return { items: items.slice(0, p.limit).map(map), limit: p.limit, offset: p.offset, next_offset: hasMore ? p.offset + p.limit : null };
}

function sendRecord(reply: FastifyReply, record: Parameters<typeof recordJson>[0], status = 200) {
  return reply.status(status).header('etag', `"${record.version}"`).send(recordJson(record));
}

export function recordsRoutes(deps: RecordsRouteDeps) {
  const { records, contextOf } = deps;
  return (app: FastifyInstance) => {
    const crud = (entity: EntityName, base: string, body: object, tag: string) => {
      app.post<{ Body: Record<string, unknown> }>(base, { schema: { tags: [tag], summary: `Create a ${entity}`, headers: orgHeader, body } }, async (request, reply) => {
        const ctx = await contextOf(request);
        return sendRecord(reply, await records.create(ctx, entity, request.body ?? {}), 201);
      });
      app.get<{ Params: { id: string } }>(`${base}/:id`, { schema: { tags: [tag], summary: `One ${entity}`, headers: orgHeader, params: idParams } }, async (request, reply) => {
        const ctx = await contextOf(request);
        return sendRecord(reply, await records.get(ctx, entity, request.params.id));
      });
      app.patch<{ Params: { id: string }; Body: Record<string, unknown> }>(
        `${base}/:id`,
        { schema: { tags: [tag], summary: `Change a ${entity} (If-Match: version → 412 when it moved on)`, headers: orgHeader, params: idParams, body } },
        async (request, reply) => {
          const ctx = await contextOf(request);
          const { id: _ignored, ...patch } = request.body ?? {};
          return sendRecord(reply, await records.update(ctx, entity, request.params.id, patch, parseIfMatch(request)));
        },
      );
      app.delete<{ Params: { id: string } }>(
        `${base}/:id`,
        { schema: { tags: [tag], summary: `Delete a ${entity} (kept as a tombstone for sync)`, headers: orgHeader, params: idParams } },
        async (request, reply) => {
          const ctx = await contextOf(request);
          await records.remove(ctx, entity, request.params.id, parseIfMatch(request));
          return reply.status(204).send();
        },
      );
    };

    app.get<{
      Querystring: { status?: string; project_id?: string; assignee_id?: string; tag?: string; updated_since?: string; order?: TaskOrder; include_deleted?: string; limit?: string; offset?: string };
    }>(
      '/api/v1/tasks',
      {
        schema: {
          tags: ['tasks'],
          summary: 'List tasks: filter, order, paginate',
          headers: orgHeader,
          querystring: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: [...TASK_STATUSES] },
              project_id: { type: 'string', maxLength: 64 },
              assignee_id: { type: 'string', maxLength: 64 },
              tag: { type: 'string', maxLength: 64 },
              updated_since: { type: 'string', maxLength: 40, description: 'ISO-8601 date-time' },
              order: { type: 'string', enum: [...TASK_ORDERS], description: 'field, "-" prefix for descending (default -updated_at)' },
              include_deleted: { type: 'string', enum: ['true', 'false'] },
              ...page,
            },
            additionalProperties: false,
          },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const q = request.query;
        if (q.updated_since !== undefined && Number.isNaN(Date.parse(q.updated_since))) throw new AppError('invalid_request', 'updated_since must be an ISO-8601 date-time');
        const p = pageOf(q);
        const items = await records.listTasks(ctx, {
          status: q.status,
          projectId: q.project_id,
          assigneeId: q.assignee_id,
          tag: q.tag,
          updatedSince: q.updated_since === undefined ? undefined : new Date(q.updated_since).toISOString(),
          includeDeleted: q.include_deleted === 'true',
          order: q.order ?? '-updated_at',
          limit: p.limit + 1,
          offset: p.offset,
        });
        return listed(items, p, recordJson);
      },
    );
    crud('task', '/api/v1/tasks', taskBody, 'tasks');

    app.get<{ Params: { id: string }; Querystring: { limit?: string; offset?: string } }>(
      '/api/v1/tasks/:id/history',
      { schema: { tags: ['tasks'], summary: "A task's change history (who, which device, which fields, old → new)", headers: orgHeader, params: idParams, querystring: { type: 'object', properties: page, additionalProperties: false } } },
      async (request) => {
        const ctx = await contextOf(request);
        const p = pageOf(request.query);
        return listed(await records.history(ctx, request.params.id, p.limit + 1, p.offset), p, historyJson);
      },
    );

    app.get<{ Params: { id: string }; Querystring: { limit?: string; offset?: string } }>(
      '/api/v1/tasks/:id/comments',
      { schema: { tags: ['tasks'], summary: "A task's comments, oldest first (parent_id links threads)", headers: orgHeader, params: idParams, querystring: { type: 'object', properties: page, additionalProperties: false } } },
      async (request) => {
        const ctx = await contextOf(request);
        const p = pageOf(request.query);
        return listed(await records.listComments(ctx, { taskId: request.params.id, limit: p.limit + 1, offset: p.offset }), p, recordJson);
      },
    );

    app.get<{ Querystring: { task_id?: string; limit?: string; offset?: string } }>(
      '/api/v1/comments',
      {
        schema: {
          tags: ['comments'],
          summary: 'List comments (optionally of one task)',
          headers: orgHeader,
          querystring: { type: 'object', properties: { task_id: { type: 'string', maxLength: 64 }, ...page }, additionalProperties: false },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const p = pageOf(request.query);
        return listed(await records.listComments(ctx, { taskId: request.query.task_id, limit: p.limit + 1, offset: p.offset }), p, recordJson);
      },
    );
    crud('comment', '/api/v1/comments', commentBody, 'comments');

    app.get<{ Querystring: { include_archived?: string; limit?: string; offset?: string } }>(
      '/api/v1/projects',
      {
        schema: {
          tags: ['projects'],
          summary: 'List projects',
          headers: orgHeader,
          querystring: { type: 'object', properties: { include_archived: { type: 'string', enum: ['true', 'false'] }, ...page }, additionalProperties: false },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const p = pageOf(request.query);
        return listed(await records.listProjects(ctx, { includeArchived: request.query.include_archived === 'true', limit: p.limit + 1, offset: p.offset }), p, recordJson);
      },
    );
    crud('project', '/api/v1/projects', projectBody, 'projects');
    app.post<{ Params: { id: string } }>(
      '/api/v1/projects/:id/archive',
      { schema: { tags: ['projects'], summary: 'Archive a project (admins only)', headers: orgHeader, params: idParams } },
      async (request, reply) => {
        const ctx = await contextOf(request);
        return sendRecord(reply, await records.archiveProject(ctx, request.params.id));
      },
    );
  };
}
