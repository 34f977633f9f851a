import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Db } from '../../db/schema.ts';
import { checkWritable, freeBytes } from '../../storage/disk.ts';

export interface HealthDeps {
  db: Db;
  storageRoot: string;
  minFreeBytes: number;
}

export function healthRoutes(deps: HealthDeps) {
  return (app: FastifyInstance) => {
    app.get('/health', { schema: { tags: ['health'], summary: 'Liveness: the process answers', security: [] } }, async () => ({
      status: 'ok',
    }));

    app.get(
      '/api/v1/health',
      { schema: { tags: ['health'], summary: 'Readiness: database reachable, storage writable, free disk', security: [] } },
      async (_request, reply) => {
        const database = await sql`select 1 as ok`
          .execute(deps.db)
          .then(() => ({ ok: true }))
          .catch((err: Error) => ({ ok: false, error: err.message }));
        let storage: { ok: boolean; writable: boolean; free_bytes: number | null; min_free_bytes: number; error?: string };
        try {
          await checkWritable(deps.storageRoot);
          const free = await freeBytes(deps.storageRoot);
          storage = { ok: free >= deps.minFreeBytes, writable: true, free_bytes: free, min_free_bytes: deps.minFreeBytes };
          if (!storage.ok) storage.error = 'free space is below the configured floor (STORMVAULT_MIN_FREE_BYTES)';
        } catch (err) {
          storage = { ok: false, writable: false, free_bytes: null, min_free_bytes: deps.minFreeBytes, error: (err as Error).message };
        }
        const ok = database.ok && storage.ok;
        return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', database, storage });
      },
    );
  };
}
