import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { requireUser } from '../../http/auth.ts';
import { header, sendFile } from '../files/file-response.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { MirrorService } from './mirror.service.ts';
import type { PublishHealthService } from './publish-health.service.ts';
import { contentParams, fileJson, siteJson, siteParams, siteSettingsBody } from './publishing.schemas.ts';
import type { PublishingService } from './publishing.service.ts';
import type { Site, SiteSettingsInput } from './publishing.types.ts';
import type { SitesService } from './sites.service.ts';

export interface PublishingRouteDeps {
  sites: SitesService;
  content: PublishingService;
  mirror: MirrorService;
  health: PublishHealthService;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  publicUrl: string;
}

const TAGS = ['publishing'];
type SiteParams = { site: string };
type ContentParams = { site: string; '*'?: string };

/**
 * `/api/v1/sites…` (org members publish, org admins manage) and the public `GET /p/{site}/{path}`. Every
 * site route authenticates, finds the site and checks the caller's role in a preValidation hook, so a
 * caller who may not make the request learns nothing from validation errors (auth, then authorise, then
 * validate).
 */
export function publishingRoutes(deps: PublishingRouteDeps) {
  const { sites, content } = deps;
  const scoped = new WeakMap<FastifyRequest, { site: Site; ctx: OrgContext }>();
  const orgs = new WeakMap<FastifyRequest, OrgContext>();
  const siteAccess = (need: 'member' | 'admin') => async (request: FastifyRequest) => {
    const me = requireUser(request);
    scoped.set(request, await sites.access(me.userId, (request.params as SiteParams).site ?? '', need));
  };
  const orgScoped = (need: 'member' | 'admin') => async (request: FastifyRequest) => {
    const ctx = await deps.contextOf(request);
    if (need === 'admin' && ctx.role !== 'admin') throw new AppError('forbidden', 'creating a site needs the admin role in the organization');
    orgs.set(request, ctx);
  };
  const siteOf = (request: FastifyRequest) => scoped.get(request)!.site;
  const json = (site: Site) => siteJson(site, deps.publicUrl);

  return async (app: FastifyInstance) => {
    // ------------------------------------------------------------ sites
    app.get('/api/v1/sites', { preValidation: orgScoped('member'), schema: { tags: TAGS, summary: 'Sites of the current organization' } }, async (request) => ({
      sites: (await sites.list(orgs.get(request)!)).map(json),
    }));

    app.post<{ Body: SiteSettingsInput }>(
      '/api/v1/sites',
      { preValidation: orgScoped('admin'), schema: { tags: TAGS, summary: 'Create a site (organization admins)', body: siteSettingsBody(true) } },
      async (request, reply) => reply.status(201).send(json(await sites.create(orgs.get(request)!, request.body))),
    );

    app.get<{ Params: SiteParams }>('/api/v1/sites/:site', { preValidation: siteAccess('member'), schema: { tags: TAGS, summary: 'A site and its settings', params: siteParams } }, async (request) =>
      json(siteOf(request)),
    );

    app.patch<{ Params: SiteParams; Body: SiteSettingsInput }>(
      '/api/v1/sites/:site',
      { preValidation: siteAccess('admin'), schema: { tags: TAGS, summary: 'Change settings (admins); reaches every server process in under a second', params: siteParams, body: siteSettingsBody(false) } },
      async (request) => json(await sites.update(siteOf(request), request.body)),
    );

    app.delete<{ Params: SiteParams }>(
      '/api/v1/sites/:site',
      { preValidation: siteAccess('admin'), schema: { tags: TAGS, summary: 'Delete an empty site (admins)', params: siteParams } },
      async (request, reply) => {
        const site = siteOf(request);
        await sites.delete(site, (await content.list(site, '', { limit: 1 })).files.length);
        return reply.status(204).send();
      },
    );

    // ------------------------------------------------------------ content
    await app.register(async (uploads) => {
      // Raw, streamed bodies of any content type (never buffered, so the JSON body limit does not apply).
      uploads.removeAllContentTypeParsers();
      uploads.addContentTypeParser('*', (_request, _payload, done) => done(null));
      uploads.put<{ Params: ContentParams }>(
        '/api/v1/sites/:site/content/*',
        {
          preValidation: siteAccess('member'),
          schema: {
            tags: TAGS,
            summary: 'Publish a file (raw body, streamed, written atomically; the previous version is kept as .prev)',
            description: '201 created, 200 replaced. A .json body must be valid JSON (400). 507 when free disk would fall below the site floor. The mirror upload is queued.',
            params: contentParams,
          },
        },
        async (request, reply) => {
          const site = siteOf(request);
          const length = header(request, 'content-length');
          try {
            const { file, created } = await content.write(site, request.params['*'] ?? '', request.raw, {
              contentLength: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
            });
            return reply.status(created ? 201 : 200).send(fileJson(file, content.urlOf(site, file)));
          } catch (err) {
            // Refused before the whole body was read: do not make the client push the rest through.
            if (!request.raw.readableEnded) reply.header('connection', 'close');
            throw err;
          }
        },
      );
    });

    for (const url of ['/api/v1/sites/:site/content', '/api/v1/sites/:site/content/*']) {
      app.get<{ Params: ContentParams; Querystring: { limit?: string; cursor?: string } }>(
        url,
        {
          preValidation: siteAccess('member'),
          schema: {
            tags: TAGS,
            summary: 'Metadata of a published file with its mirror state, or a paginated listing of a folder',
            params: contentParams,
            querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^\\d{1,4}$' }, cursor: { type: 'string', maxLength: 8192 } } },
          },
        },
        async (request) => {
          const site = siteOf(request);
          const path = request.params['*'] ?? '';
          if (path === '' || (await content.isFolder(site, path))) {
            const page = await content.list(site, path, { limit: request.query.limit === undefined ? undefined : Number(request.query.limit), cursor: request.query.cursor });
            return { path, files: page.files.map((f) => fileJson(f, content.urlOf(site, f))), next_cursor: page.nextCursor };
          }
          const file = await content.meta(site, path);
          return fileJson(file, content.urlOf(site, file));
        },
      );
    }

    app.delete<{ Params: ContentParams; Querystring: { recursive?: string } }>(
      '/api/v1/sites/:site/content/*',
      {
        preValidation: siteAccess('member'),
        schema: {
          tags: TAGS,
          summary: 'Unpublish a file (and its .prev), or a folder with recursive=true; the bucket objects are removed by a queued task',
          params: contentParams,
          querystring: { type: 'object', additionalProperties: false, properties: { recursive: { type: 'string', enum: ['true', 'false', '1', '0'] } } },
        },
      },
      async (request, reply) => {
        const recursive = request.query.recursive === 'true' || request.query.recursive === '1';
        await content.delete(siteOf(request), request.params['*'] ?? '', { recursive });
        return reply.status(204).send();
      },
    );

    app.post<{ Params: ContentParams }>(
      '/api/v1/sites/:site/content/*',
      { preValidation: siteAccess('member'), schema: { tags: TAGS, summary: 'POST …/content/{path}/rollback: swap in the previous version (and mirror it)', params: contentParams } },
      async (request) => {
        const rest = request.params['*'] ?? '';
        if (!rest.endsWith('/rollback')) throw new AppError('not_found', 'the only POST on content is …/content/{path}/rollback');
        const site = siteOf(request);
        const file = await content.rollback(site, rest.slice(0, -'/rollback'.length));
        return fileJson(file, content.urlOf(site, file));
      },
    );

    // ------------------------------------------------------------ URLs
    app.get<{ Params: SiteParams; Querystring: { path: string } }>(
      '/api/v1/sites/:site/url',
      {
        preValidation: siteAccess('member'),
        schema: { tags: TAGS, summary: 'The URL to hand out for a file right now (CDN when enabled and verified, else local)', params: siteParams, querystring: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: { type: 'string', minLength: 1, maxLength: 4096 } } } },
      },
      async (request) => {
        const site = siteOf(request);
        const { url, source, file } = await content.resolveUrl(site, request.query.path);
        return { path: file.path, url, source, sha256: file.sha256, size: file.size, settings_version: site.settingsVersion };
      },
    );

    app.get<{ Params: SiteParams }>(
      '/api/v1/sites/:site/manifest',
      { preValidation: siteAccess('member'), schema: { tags: TAGS, summary: 'Every published file with its resolved URL, size and sha256', params: siteParams } },
      async (request, reply) => reply.type('application/json; charset=utf-8').header('cache-control', 'no-cache').send(Readable.from(content.manifest(siteOf(request)))),
    );

    // ------------------------------------------------------------ mirror and health
    app.post<{ Params: SiteParams }>(
      '/api/v1/sites/:site/resync',
      { preValidation: siteAccess('admin'), schema: { tags: TAGS, summary: 'Mirror every file again (admins)', params: siteParams } },
      async (request, reply) => reply.status(202).send({ queued: await deps.mirror.resync(siteOf(request)) }),
    );

    app.post<{ Params: SiteParams }>(
      '/api/v1/sites/:site/health-check',
      { preValidation: siteAccess('admin'), schema: { tags: TAGS, summary: 'Run the health check now, whatever the business hours (admins)', params: siteParams } },
      async (request) => deps.health.check(siteOf(request)),
    );

    // ------------------------------------------------------------ public
    app.route<{ Params: ContentParams }>({
      method: ['GET', 'HEAD'],
      url: '/p/:site/*',
      exposeHeadRoute: false,
      config: { access: 'public' },
      schema: { tags: TAGS, summary: 'Published content, public (ETag, Last-Modified, Range; Cache-Control from the site)', params: contentParams },
      handler: async (request, reply) => {
        const site = await sites.findPublic(request.params.site);
        if (!site) throw new AppError('not_found', 'no such published file');
        const file = await content.openPublic(site, request.params['*'] ?? '');
        return sendFile(request, reply, file, { cacheControl: site.cacheControl });
      },
    });
  };
}
