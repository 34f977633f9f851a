import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { DialectName } from '../db/database.ts';
import type { Db } from '../db/schema.ts';
import { databaseStream } from './database/database-stream.ts';
import type { StreamLog } from './stream.port.ts';

/**
 * The StreamLog a process uses: Redis Streams when the redis tasks backend is configured (a storage
 * worker then needs no database), the database table otherwise (issue 9).
 */
export async function createStreamLog(deps: { config: Config; clock: Clock; db?: Db; dialect?: DialectName; claimTimeoutMs?: number }): Promise<StreamLog> {
  const t = deps.config.tasks;
  if (t.backend === 'redis') {
    // Loaded only when chosen, like the redis tasks backend.
    const { redisStream } = await import('./redis/redis-stream.ts');
    return redisStream({ url: t.redisUrl!, prefix: t.redisPrefix, claimTimeoutMs: deps.claimTimeoutMs });
  }
  if (!deps.db || !deps.dialect) throw new Error('the database stream adapter needs the database');
  return databaseStream({ db: deps.db, dialect: deps.dialect, clock: deps.clock, claimTimeoutMs: deps.claimTimeoutMs });
}
