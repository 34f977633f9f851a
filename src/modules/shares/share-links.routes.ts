import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireUser } from '../../http/auth.ts';
import { sendFile } from '../files/file-response.ts';
import type { ShareLinksService } from './share-links.service.ts';

const TAGS = ['shares'];

const shareView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    path: { type: 'string' },
    is_directory: { type: 'boolean' },
    has_password: { type: 'boolean' },
    expires_at: { type: ['string', 'null'] },
    max_downloads: { type: ['integer', 'null'] },
    download_count: { type: 'integer' },
    created_at: { type: 'string' },
    status: { type: 'string', enum: ['active', 'expired', 'exhausted', 'revoked'] },
  },
} as const;

interface CreateBody {
  path: string;
  expires_at?: string | null;
  password?: string | null;
  max_downloads?: number | null;
}

interface PublicParams {
  token: string;
  '*'?: string;
}

interface PublicQuery {
  limit?: string;
  cursor?: string;
}

/** Share links: management under /api/v1/shares (authenticated), public access under /s/{token}. */
export function shareLinksRoutes(deps: { shares: ShareLinksService }) {
  const { shares } = deps;
  return (app: FastifyInstance) => {
    app.post<{ Body: CreateBody }>(
      '/api/v1/shares',
      {
        schema: {
          tags: TAGS,
          summary: 'Create a share link for a file or folder (the token is shown only in this answer)',
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['path'],
            properties: {
              path: { type: 'string', maxLength: 4096 },
              expires_at: { type: ['string', 'null'], maxLength: 64, description: 'ISO-8601 date-time in the future' },
              password: { type: ['string', 'null'], maxLength: 1024 },
              max_downloads: { type: ['integer', 'null'], minimum: 1 },
            },
          },
          response: {
            201: { ...shareView, properties: { ...shareView.properties, token: { type: 'string' }, url: { type: 'string' } } },
          },
        },
      },
      async (request, reply) => {
        const user = requireUser(request);
        const b = request.body;
        const created = await shares.create(user.userId, {
          path: b.path,
          expiresAt: b.expires_at,
          password: b.password,
          maxDownloads: b.max_downloads,
        });
        return reply.status(201).send(created);
      },
    );

    app.get(
      '/api/v1/shares',
      { schema: { tags: TAGS, summary: 'Your share links (tokens are not retrievable)', response: { 200: { type: 'object', properties: { shares: { type: 'array', items: shareView } } } } } },
      async (request) => {
        const user = requireUser(request);
        return { shares: await shares.list(user.userId) };
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/shares/:id',
      {
        schema: {
          tags: TAGS,
          summary: 'Revoke a share link',
          params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        },
      },
      async (request, reply) => {
        const user = requireUser(request);
        await shares.revoke(user.userId, request.params.id);
        return reply.status(204).send();
      },
    );

    const publicHandler = async (request: FastifyRequest<{ Params: PublicParams; Querystring: PublicQuery }>, reply: import('fastify').FastifyReply) => {
      const password = request.headers['x-share-password'];
      const limit = request.query.limit === undefined ? undefined : Number(request.query.limit);
      const target = await shares.open(request.params.token, Array.isArray(password) ? password[0] : password, request.params['*'], {
        limit,
        cursor: request.query.cursor,
      });
      // Visitors must not cache a link that can be revoked or expire.
      reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
      if (target.kind === 'folder') return reply.send(target.listing);
      // Only a delivered download (200/206) spends one of max_downloads; a 304, 416 or HEAD does not (issue 12).
      return sendFile(request, reply, target.file, { attachment: true, cacheControl: 'no-store', beforeDelivery: target.consume });
    };
    const publicSchema = {
      tags: TAGS,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
          cursor: { type: 'string', maxLength: 4096 },
        },
      },
    };
    app.route<{ Params: PublicParams; Querystring: PublicQuery }>({
      method: ['GET', 'HEAD'],
      url: '/s/:token',
      exposeHeadRoute: false,
      config: { access: 'public' },
      schema: { ...publicSchema, summary: 'Public: download a shared file, or list a shared folder (X-Share-Password when protected)' },
      handler: publicHandler,
    });
    app.route<{ Params: PublicParams; Querystring: PublicQuery }>({
      method: ['GET', 'HEAD'],
      url: '/s/:token/*',
      exposeHeadRoute: false,
      config: { access: 'public' },
      schema: { ...publicSchema, summary: 'Public: download a file (or list a folder) inside a shared folder' },
      handler: publicHandler,
    });
  };
}

