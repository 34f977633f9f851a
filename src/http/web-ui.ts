import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * The web UI (issue 14): the files esbuild wrote to dist/web (scripts/build.mjs), served at `/`.
 *
 * - Asset names carry a content hash (`main-ABCD1234.js`), so they are cached for a year, immutable;
 *   index.html names the current ones and is never cached, so a new build is picked up on the next load.
 * - A strict Content-Security-Policy on the UI's own files: scripts, styles and connections to this
 *   origin only, nothing inline, no CDN, no framing. It is scoped to these routes (helmet is registered in
 *   this plugin's own scope): published sites under /p/ and shared files under /s/ are the users' content
 *   and keep their own headers.
 * - `wildcard: false`: one route per built file, found at start-up, so unknown paths still reach the
 *   JSON 404 handler instead of a catch-all.
 */
export const WEB_UI_CSP: Record<string, string[]> = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  // Previews are fetched with the access token and shown from blob: URLs.
  'img-src': ["'self'", 'blob:', 'data:'],
  'media-src': ["'self'", 'blob:'],
  'frame-src': ["'self'", 'blob:'],
  'connect-src': ["'self'"],
  'font-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

const HASHED_ASSET = /-[A-Z0-9]{8}\.(?:js|css|map)$/;

export async function registerWebUi(app: FastifyInstance, root: string | null): Promise<void> {
  await app.register(async (web) => {
    // Every file of the UI is public; the API calls it makes carry the access token.
    web.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'public' };
    });
    await web.register(helmet, {
      contentSecurityPolicy: { useDefaults: false, directives: WEB_UI_CSP },
      // The UI opens share links and blob previews in new tabs; it embeds nothing cross-origin.
      crossOriginEmbedderPolicy: false,
    });
    if (root === null) {
      // Not part of the API: hidden from the OpenAPI document, like the built UI's files (schemaHide).
      web.get('/', { schema: { hide: true } }, async (_request, reply) =>
        reply.status(503).type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send('The web UI is not built: run `npm run build` (npm start does it).\n'),
      );
      return;
    }
    await web.register(fastifyStatic, {
      root,
      prefix: '/',
      wildcard: false,
      index: ['index.html'],
      cacheControl: false,
      etag: true,
      lastModified: true,
      setHeaders: (res, file) => {
        res.setHeader('cache-control', HASHED_ASSET.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  });
}
