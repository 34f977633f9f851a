import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireUser } from '../../http/auth.ts';
import { header as headerValue, sendFile } from './file-response.ts';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type FilesService } from './files.service.ts';
import {
  dirListingSchema,
  fileMetaSchema,
  pathParams,
  transferBody,
  type PathParams,
  type TransferBody,
} from './files.schemas.ts';

const TAGS = ['files'];

/** Files API (issue 2): every path is relative to the caller's own root. */
export function filesRoutes(deps: { files: FilesService }) {
  const { files } = deps;
  return async (app: FastifyInstance) => {
    // Uploads live in their own encapsulated scope: every body is handed over as the raw stream, whatever
    // its content type, and is never buffered, so the JSON bodyLimit does not apply to them. JSON routes
    // elsewhere keep Fastify's parsers.
    await app.register(async (uploads) => {
      uploads.removeAllContentTypeParsers();
      uploads.addContentTypeParser('*', (_request, _payload, done) => done(null));
      // The bare '/api/v1/files' (the root) is routed too, so it gets a clear 400 invalid_path, not 404.
      for (const url of ['/api/v1/files', '/api/v1/files/*']) uploads.put<{ Params: PathParams }>(
        url,
        {
          schema: {
            tags: TAGS,
            summary: 'Upload a file (raw body, streamed); creates parent folders',
            description:
              '201 when created, 200 when replaced. If-Match (ETag) refuses a lost update with 412; If-None-Match: * refuses to replace. 413 over quota, 507 when the disk is below the free-space floor.',
            params: pathParams,
            response: { 200: fileMetaSchema, 201: fileMetaSchema },
          },
        },
        async (request, reply) => {
          const user = requireUser(request);
          const lengthHeader = headerValue(request, 'content-length');
          const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
          try {
            const { meta, created } = await files.put(user.userId, request.params['*'] ?? '', request.raw, {
              contentLength: Number.isSafeInteger(contentLength) ? contentLength : undefined,
              ifMatch: headerValue(request, 'if-match'),
              ifNoneMatch: headerValue(request, 'if-none-match'),
            });
            if (meta.etag) reply.header('etag', meta.etag);
            return reply.status(created ? 201 : 200).send(meta);
          } catch (err) {
            // Refused before the body was read: do not make the client (or us) push the rest through.
            if (!request.raw.readableEnded) reply.header('connection', 'close');
            throw err;
          }
        },
      );
    });

    for (const url of ['/api/v1/files', '/api/v1/files/*']) app.route<{ Params: PathParams }>({
      method: ['GET', 'HEAD'],
      url,
      exposeHeadRoute: false,
      schema: {
        tags: TAGS,
        summary: 'Download a file (Range, If-None-Match, If-Range supported)',
        params: pathParams,
      },
      handler: async (request, reply) => {
        const user = requireUser(request);
        const file = await files.open(user.userId, request.params['*'] ?? '');
        return sendFile(request, reply, file);
      },
    });

    for (const url of ['/api/v1/files', '/api/v1/files/*']) app.delete<{ Params: PathParams; Querystring: { recursive?: string } }>(
      url,
      {
        schema: {
          tags: TAGS,
          summary: 'Delete a file, or a folder (recursive=true for a non-empty one)',
          params: pathParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { recursive: { type: 'string', enum: ['true', 'false', '1', '0'] } },
          },
        },
      },
      async (request, reply) => {
        const user = requireUser(request);
        const recursive = request.query.recursive === 'true' || request.query.recursive === '1';
        await files.delete(user.userId, request.params['*'] ?? '', { recursive });
        return reply.status(204).send();
      },
    );

    for (const url of ['/api/v1/meta', '/api/v1/meta/*']) app.get<{ Params: PathParams }>(
      url,
      { schema: { tags: TAGS, summary: 'Metadata of a file or folder', params: pathParams, response: { 200: fileMetaSchema } } },
      async (request) => {
        const user = requireUser(request);
        return files.meta(user.userId, request.params['*'] ?? '');
      },
    );

    const listHandler = async (request: FastifyRequest<{ Params: Partial<PathParams>; Querystring: { limit?: string; cursor?: string } }>) => {
      const user = requireUser(request);
      const limit = request.query.limit === undefined ? undefined : Number(request.query.limit);
      return files.list(user.userId, request.params['*'] ?? '', { limit, cursor: request.query.cursor });
    };
    const listSchema = {
      tags: TAGS,
      summary: 'List a folder (empty path = your root), sorted by name, paginated',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: `1…${MAX_LIST_LIMIT}, default ${DEFAULT_LIST_LIMIT}` },
          cursor: { type: 'string', maxLength: 4096, description: 'next_cursor of the previous page' },
        },
      },
      response: { 200: dirListingSchema },
    };
    app.get('/api/v1/dirs', { schema: listSchema }, listHandler);
    app.get('/api/v1/dirs/*', { schema: { ...listSchema, params: pathParams } }, listHandler);

    app.post<{ Params: PathParams }>(
      '/api/v1/dirs/*',
      {
        schema: {
          tags: TAGS,
          summary: 'Create a folder and its parents (201 created, 200 already there)',
          params: pathParams,
          response: { 200: fileMetaSchema, 201: fileMetaSchema },
        },
      },
      async (request, reply) => {
        const user = requireUser(request);
        const { meta, created } = await files.mkdir(user.userId, request.params['*'] ?? '');
        return reply.status(created ? 201 : 200).send(meta);
      },
    );

    app.get(
      '/api/v1/usage',
      {
        schema: {
          tags: TAGS,
          summary: 'Bytes your files use, your quota (null = unlimited) and what is left of it',
          response: {
            200: {
              type: 'object',
              properties: { used_bytes: { type: 'integer' }, quota_bytes: { type: ['integer', 'null'] }, available_bytes: { type: ['integer', 'null'] } },
              required: ['used_bytes', 'quota_bytes', 'available_bytes'],
            },
          },
        },
      },
      async (request) => {
        const user = requireUser(request);
        const { usedBytes, quotaBytes } = await files.usage(user.userId);
        return { used_bytes: usedBytes, quota_bytes: quotaBytes, available_bytes: quotaBytes === null ? null : Math.max(0, quotaBytes - usedBytes) };
      },
    );

    app.post<{ Body: TransferBody }>(
      '/api/v1/move',
      { schema: { tags: TAGS, summary: 'Move or rename a file or folder (keeps its share links)', body: transferBody, response: { 200: fileMetaSchema } } },
      async (request) => {
        const user = requireUser(request);
        return files.move(user.userId, request.body.from, request.body.to, { overwrite: request.body.overwrite });
      },
    );

    app.post<{ Body: TransferBody }>(
      '/api/v1/copy',
      { schema: { tags: TAGS, summary: 'Copy a file or folder', body: transferBody, response: { 201: fileMetaSchema } } },
      async (request, reply) => {
        const user = requireUser(request);
        const meta = await files.copy(user.userId, request.body.from, request.body.to, { overwrite: request.body.overwrite });
        return reply.status(201).send(meta);
      },
    );
  };
}
