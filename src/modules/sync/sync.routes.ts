import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { DevicesService } from '../devices/devices.service.ts';
import { changeJson, conflictJson, recordJson } from '../records/records.json.ts';
import type { SyncEvents } from './sync.events.ts';
import { encodeCursor } from './sync.cursor.ts';
import type { PushChange, PushResult, SyncService } from './sync.service.ts';

export interface SyncRouteDeps {
  sync: SyncService;
  devices: DevicesService;
  events: SyncEvents;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  /** Seconds between keep-alive comments on event streams. */
  heartbeatSeconds?: number;
}

const orgHeader = {
  type: 'object',
  properties: { 'x-organization': { type: 'string', description: 'organization id (default: your first organization)' } },
} as const;

function resultJson(r: PushResult) {
  const out: Record<string, unknown> = { mutation_id: r.mutationId, entity: r.entity, id: r.id, status: r.status };
  if (r.replayed) out.replayed = true;
  if (r.conflictId) out.conflict_id = r.conflictId;
  if (r.reason) out.reason = r.reason;
  if (r.record) {
    if (r.status === 'applied' && !r.replayed) {
      out.version = r.record.version;
      out.vector_clock = r.record.vectorClock;
      out.checksum = r.record.checksum;
      // Server-set values the device cannot know: it does not pull its own versions back (issue 12).
      out.updated_at = r.record.updatedAt;
      if (r.record.entity === 'comment') out.edited_at = r.record.editedAt;
    } else {
      // Not (or no longer known to be) what the device sent: the server's version, for the device to adopt.
      out.current = changeJson(r.record);
    }
  }
  return out;
}

export function syncRoutes(deps: SyncRouteDeps) {
  const { sync, contextOf } = deps;
  const maxBytes = sync.limits.maxPayloadBytes;
  return (app: FastifyInstance) => {
    app.post<{ Body: { device_id: string; changes: PushChange[]; cursor?: string } }>(
      '/api/v1/sync/push',
      {
        // Chunked bodies without Content-Length are still cut off at the limit by Fastify.
        bodyLimit: maxBytes,
        preParsing: async (request) => {
          const length = Number(request.headers['content-length'] ?? 0);
          if (length > maxBytes) throw new AppError('payload_too_large', `a push body is at most ${maxBytes} bytes`, { limit_bytes: maxBytes });
        },
        schema: {
          tags: ['sync'],
          summary: 'Push a batch of changes; applied in one transaction, idempotent per device mutation id',
          headers: orgHeader,
          body: {
            type: 'object',
            required: ['device_id', 'changes'],
            additionalProperties: false,
            properties: {
              device_id: { type: 'string', maxLength: 64 },
              cursor: { type: 'string', maxLength: 200, description: "the cursor of the device's last pull: older than the tombstone horizon → 410 resync_required" },
              changes: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['mutation_id', 'entity', 'op', 'id', 'vector_clock'],
                  additionalProperties: false,
                  properties: {
                    mutation_id: { type: 'integer', minimum: 1 },
                    entity: { type: 'string', enum: ['project', 'task', 'comment'] },
                    op: { type: 'string', enum: ['upsert', 'delete'] },
                    id: { type: 'string', minLength: 1, maxLength: 64 },
                    vector_clock: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
                    data: { type: ['object', 'null'] },
                  },
                },
              },
            },
          },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const { results, cursor } = await sync.push(ctx, request.body.device_id, request.body.changes, request.body.cursor);
        return { results: results.map(resultJson), cursor };
      },
    );

    app.get<{ Querystring: { device_id: string; since?: string; limit?: string } }>(
      '/api/v1/sync/pull',
      {
        schema: {
          tags: ['sync'],
          summary: "Changes after a cursor, without this device's own; 410 resync_required past the tombstone horizon",
          headers: orgHeader,
          querystring: {
            type: 'object',
            required: ['device_id'],
            additionalProperties: false,
            properties: {
              device_id: { type: 'string', maxLength: 64 },
              since: { type: 'string', maxLength: 200, description: 'cursor from the previous pull (omit for a full pull)' },
              limit: { type: 'string', pattern: '^[1-9]\\d{0,6}$', description: `1-${sync.limits.maxPullLimit} (STORMVAULT_SYNC_MAX_PULL_LIMIT), default the maximum` },
            },
          },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const q = request.query;
        const result = await sync.pull(ctx, q.device_id, q.since, q.limit === undefined ? undefined : Number(q.limit));
        return { changes: result.changes.map(changeJson), cursor: result.cursor, has_more: result.hasMore };
      },
    );

    app.get<{ Querystring: { status?: 'open' | 'resolved'; limit?: string; offset?: string } }>(
      '/api/v1/sync/conflicts',
      {
        schema: {
          tags: ['sync'],
          summary: "The organization's conflicts (both versions, both clocks)",
          headers: orgHeader,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              status: { type: 'string', enum: ['open', 'resolved'] },
              limit: { type: 'string', pattern: '^(?:[1-9]\\d?|1\\d\\d|200)$', description: '1-200, default 50' },
              offset: { type: 'string', pattern: '^\\d{1,9}$' },
            },
          },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        // The schema admits 1-200 only: out of range is a 400, never a silent default (issue 12).
        const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
        const offset = Number(request.query.offset ?? 0);
        const items = await sync.listConflicts(ctx, { status: request.query.status, limit: limit + 1, offset });
        return { items: items.slice(0, limit).map(conflictJson), limit, offset, next_offset: items.length > limit ? offset + limit : null };
      },
    );

    app.post<{ Params: { id: string }; Body: { strategy: 'local' | 'remote' | 'custom'; data?: Record<string, unknown> } }>(
      '/api/v1/sync/conflicts/:id/resolve',
      {
        schema: {
          tags: ['sync'],
          summary: 'Resolve a conflict: local | remote | custom (with data); writes a version dominating both clocks',
          headers: orgHeader,
          params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } },
          body: {
            type: 'object',
            required: ['strategy'],
            additionalProperties: false,
            properties: { strategy: { type: 'string', enum: ['local', 'remote', 'custom'] }, data: { type: 'object' } },
          },
        },
      },
      async (request) => {
        const ctx = await contextOf(request);
        const { conflict, record } = await sync.resolve(ctx, request.params.id, request.body.strategy, request.body.data);
        return { conflict: conflictJson(conflict), record: record ? recordJson(record) : null };
      },
    );

    app.get<{ Querystring: { limit?: string } }>(
      '/api/v1/sync/metrics',
      { schema: { tags: ['sync'], summary: 'Daily sync metrics of the organization (newest first)', headers: orgHeader, querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^(?:[1-9]\\d?|[12]\\d\\d|3[0-5]\\d|36[0-6])$', description: 'days, 1-366, default 30' } } } } },
      async (request) => {
        const ctx = await contextOf(request);
        const rows = await sync.listMetrics(ctx, request.query.limit === undefined ? 30 : Number(request.query.limit));
        return {
          days: rows.map((m) => ({ day: m.day, pushes: m.pushes, pulls: m.pulls, changes_pushed: m.changesPushed, changes_pulled: m.changesPulled, conflicts: m.conflicts })),
        };
      },
    );

    app.get<{ Querystring: { device_id: string } }>(
      '/api/v1/sync/events',
      {
        schema: {
          tags: ['sync'],
          summary: 'Server-Sent Events: "poke" with the new cursor whenever there is something for this device to pull',
          headers: orgHeader,
          querystring: { type: 'object', required: ['device_id'], additionalProperties: false, properties: { device_id: { type: 'string', maxLength: 64 } } },
        },
      },
      async (request, reply) => {
        const ctx = await contextOf(request);
        const device = await deps.devices.requireActive(ctx.userId, request.query.device_id);
        const cursor = await sync.currentCursor(ctx);
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
          'x-request-id': String(request.id),
        });
        res.write(`event: ready\ndata: ${JSON.stringify({ cursor })}\n\n`);
        const unsubscribe = deps.events.subscribe(ctx.organizationId, (notice) => {
          if (notice.originDeviceId === device.id) return;
          res.write(`event: poke\ndata: ${JSON.stringify({ cursor: encodeCursor(ctx.organizationId, notice.seq) })}\n\n`);
        });
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), (deps.heartbeatSeconds ?? 25) * 1000);
        let untrack = () => {};
        const end = () => {
          clearInterval(heartbeat);
          unsubscribe();
          untrack();
          if (!res.writableEnded) res.end();
        };
        untrack = deps.events.track(end);
        request.raw.on('close', end);
      },
    );
  };
}
