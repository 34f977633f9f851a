import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { installAuth, type AuthDeps } from './auth.ts';
import { installErrorHandling } from './error-handler.ts';

/** A feature's routes; registered inside the root scope after auth and error handling are installed. */
export type RouteModule = (app: FastifyInstance) => Promise<void> | void;

export interface HttpServerDeps {
  config: Config;
  logger: Logger;
  auth: AuthDeps;
  routes: RouteModule[];
}

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.server.bodyLimitBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    // Trailing slashes are optional on every route (sync clients send both forms).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, maxParamLength: 4096 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  installErrorHandling(app);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Stormvault API', version: '1' },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key (sv_…) or access JWT' } },
      },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });

  installAuth(app, deps.auth);
  for (const register of deps.routes) await register(app);
  return app;
}
