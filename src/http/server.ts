import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { installAuth, type Authenticate, type AuthenticateBasic } from './auth.ts';
import { installErrorHandling, routerError } from './error-handler.ts';
import { registerWebUi } from './web-ui.ts';

/** A feature's routes; registered inside the root scope after auth and error handling are installed. */
export type RouteModule = (app: FastifyInstance) => Promise<void> | void;

export interface HttpServerDeps {
  config: Config;
  logger: Logger;
  /** Bearer token → caller; built by app.ts from the auth feature (the HTTP core imports no module). */
  authenticate: Authenticate;
  /** Username + password or API key → caller, for routes that accept Basic auth (WebDAV). */
  authenticateBasic?: AuthenticateBasic;
  routes: RouteModule[];
  /** The built web UI (dist/web), served at `/`; null when it has not been built (then `/` says so). */
  webRoot: string | null;
}

/** Fastify takes a hop count as a number although its types omit it (docs: Server › trustProxy). */
function trustProxyOption(value: boolean | number | readonly string[]): boolean | string[] {
  return (typeof value === 'object' ? [...value] : value) as boolean | string[];
}

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.server.bodyLimitBytes,
    // Behind a reverse proxy, request.ip (throttle keys) is the client's address only if the proxy is trusted.
    trustProxy: trustProxyOption(deps.config.server.trustProxy),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    // Trailing slashes are optional on every route (sync clients send both forms).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, maxParamLength: 4096 },
    frameworkErrors: routerError,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  installErrorHandling(app);
  // Before any route is added: its onRoute hook annotates every route, the docs' routes included.
  installAuth(app, deps.authenticate, deps.authenticateBasic);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Stormvault API', version: '1' },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key (sv_…) or access JWT' } },
      },
      security: [{ bearer: [] }],
    },
  });
  // The API docs are public: a scope whose routes all declare `access: 'public'`.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/api/docs' });
  });

  for (const register of deps.routes) await register(app);
  await registerWebUi(app, deps.webRoot);
  return app;
}
