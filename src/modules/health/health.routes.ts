import type { FastifyInstance } from 'fastify';
import type { HealthService } from './health.service.ts';

export function healthRoutes(deps: { health: HealthService }) {
  return (app: FastifyInstance) => {
    app.get('/health', { config: { access: 'public' }, schema: { tags: ['health'], summary: 'Liveness: the process answers' } }, async () => ({
      status: 'ok',
    }));

    app.get(
      '/api/v1/health',
      {
        config: { access: 'public' },
        schema: {
          tags: ['health'],
          summary: 'Readiness: 200 {"status":"ok"} or 503 {"status":"unavailable"}; administrators also get the database and storage details',
        },
      },
      async (request, reply) => {
        const report = await deps.health.check();
        const status = report.ok ? 'ok' : 'unavailable';
        // Anonymous and ordinary callers learn up or down, nothing about the server's disks (issue 12).
        const body = request.principal?.isAdmin ? { status, database: report.database, storage: report.storage } : { status };
        return reply.status(report.ok ? 200 : 503).send(body);
      },
    );
  };
}
