import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { RouteModule } from '../../http/server.ts';
import type { AppMetrics } from './metrics.registry.ts';

const TOKEN_HEADER = 'x-metrics-token';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `GET /metrics` in Prometheus' text format, for administrators or a scraper holding the configured
 * STORMVAULT_METRICS_TOKEN (sent as `X-Metrics-Token`, since a bearer token must be a user's credential).
 * Also times every request of the server: registered first, its hook sees all routes.
 */
export function metricsRoutes(deps: { metrics: AppMetrics; scrapeToken: string | undefined }): RouteModule {
  return (app) => {
    app.addHook('onResponse', async (request, reply) => {
      // The route pattern, never the URL: label values must stay few (a 404 has no pattern).
      const route = request.routeOptions.url ?? 'unmatched';
      deps.metrics.observeHttp(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    });

    const allowed = (request: FastifyRequest): void => {
      const token = request.headers[TOKEN_HEADER];
      if (typeof token === 'string' && token !== '') {
        if (!deps.scrapeToken || !sameSecret(token, deps.scrapeToken)) throw new AppError('unauthorized', 'invalid metrics token');
        return;
      }
      if (!request.principal) throw new AppError('unauthorized', `authentication required: an administrator's credentials or ${TOKEN_HEADER}`);
      if (!request.principal.isAdmin) throw new AppError('forbidden', 'metrics are for administrators and the configured scraper');
    };

    app.get(
      '/metrics',
      {
        // Public to the structural check only: the scrape token is not a user's credential, so this route checks callers itself.
        config: { access: 'public' },
        schema: {
          tags: ['admin'],
          summary: 'Prometheus metrics (administrators, or X-Metrics-Token = STORMVAULT_METRICS_TOKEN)',
          headers: { type: 'object', properties: { [TOKEN_HEADER]: { type: 'string', maxLength: 1024 } } },
        },
      },
      async (request, reply) => {
        allowed(request);
        const body = await deps.metrics.registry.metrics();
        return reply.header('content-type', deps.metrics.registry.contentType).header('cache-control', 'no-store').send(body);
      },
    );
  };
}
