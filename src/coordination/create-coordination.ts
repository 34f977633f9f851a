import type { Config } from '../config/config.ts';
import type { Logger } from '../logger.ts';
import type { Broadcast } from './broadcast.port.ts';
import { KeyedLock, type KeyedMutex } from './keyed-lock.ts';

/** What several processes of one deployment share beyond the database (issue 12; docs/operations.md). */
export interface Coordination {
  /** Which store carries it: `redis` when STORMVAULT_REDIS_URL is set, `process` otherwise (one process). */
  readonly kind: 'redis' | 'process';
  /** Cross-process messages (sync pokes); undefined when only this process would hear them. */
  readonly broadcast: Broadcast | undefined;
  /** The files API's per-user write lock. */
  readonly writeLock: KeyedMutex;
  close(): Promise<void>;
}

/**
 * Redis when configured (pub/sub for pokes, SET NX leases for the write lock), otherwise this process
 * alone: the embedded default (one `serve` on SQLite) needs nothing else. ioredis is imported only when
 * Redis is configured.
 */
export async function createCoordination(config: Config, logger: Logger): Promise<Coordination> {
  const url = config.tasks.redisUrl;
  if (!url) return { kind: 'process', broadcast: undefined, writeLock: new KeyedLock(), close: async () => {} };
  const [{ Redis }, { RedisBroadcast }, { RedisKeyedLock }] = await Promise.all([
    import('ioredis'),
    import('./redis-broadcast.ts'),
    import('./redis-keyed-lock.ts'),
  ]);
  const log = logger.child({ component: 'coordination' });
  // Commands queue while disconnected (ioredis retries the connection), so a Redis restart delays writes instead of failing them.
  const client = new Redis(url, { maxRetriesPerRequest: null });
  const subscriber = new Redis(url, { maxRetriesPerRequest: null });
  for (const c of [client, subscriber]) c.on('error', (err) => log.warn({ err }, 'redis connection error'));
  const prefix = config.tasks.redisPrefix;
  const broadcast = new RedisBroadcast(client, subscriber, prefix);
  return {
    kind: 'redis',
    broadcast,
    writeLock: new RedisKeyedLock(client, { prefix: `${prefix}:files-write`, logger: log }),
    async close() {
      await broadcast.close();
      await client.quit().catch(() => client.disconnect());
    },
  };
}
