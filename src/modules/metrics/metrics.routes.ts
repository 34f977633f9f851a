import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { RouteModule } from '../../http/server.ts';
import type { AppMetrics } from './metrics.registry.ts';

const TOKEN_HEADER = 'x-metrics-token';

/** Constant-time comparison; hashing first gives equal lengths, so not even the token's length shows in the timing. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * `GET /metrics` in Prometheus' text format, for administrators or a scraper holding the configured
 * STORMVAULT_METRICS_TOKEN, sent as `X-Metrics-Token` or as `Authorization: Bearer <token>` (what
 * Prometheus' `authorization` / `bearer_token` settings send; issue 12). The bearer form reaches the route
 * through the auth hook's per-route `serviceToken` check, so any other bearer is still a user's credential.
 * Also times every request of the server: registered first, its hook sees all routes.
 */
export function metricsRoutes(deps: { metrics: AppMetrics; scrapeToken: string | undefined }): RouteModule {
  return (app) => {
    app.addHook('onResponse', async (request, reply) => {
      // The route pattern, never the URL: label values must stay few (a 404 has no pattern).
      const route = request.routeOptions.url ?? 'unmatched';
      deps.metrics.observeHttp(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    });

    const isScrapeToken = (token: string): boolean => deps.scrapeToken !== undefined && sameSecret(token, deps.scrapeToken);

    const allowed = (request: FastifyRequest): void => {
      if (request.serviceTokenAccepted) return;
      const token = request.headers[TOKEN_HEADER];
      if (typeof token === 'string' && token !== '') {
        if (!isScrapeToken(token)) throw new AppError('unauthorized', 'invalid metrics token');
        return;
      }
      if (!request.principal) throw new AppError('unauthorized', `authentication required: an administrator's credentials or ${TOKEN_HEADER}`);
      if (!request.principal.isAdmin) throw new AppError('forbidden', 'metrics are for administrators and the configured scraper');
    };

    app.get(
      '/metrics',
      {
        // Public to the structural check only: the scrape token is not a user's credential, so this route checks callers itself.
        config: { access: 'public', serviceToken: isScrapeToken },
        schema: {
          tags: ['admin'],
          summary: 'Prometheus metrics (administrators, or STORMVAULT_METRICS_TOKEN as X-Metrics-Token or Authorization: Bearer)',
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
