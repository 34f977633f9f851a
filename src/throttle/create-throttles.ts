import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/schema.ts';
import { AttemptLimiter, type PointsLimiter } from './attempt-limiter.ts';
import { DatabaseRateLimiter } from './database-rate-limiter.ts';
import { RateLimitsRepository } from './rate-limits.repository.ts';

export interface Throttles {
  /** Failed logins, keyed per client IP and per (lower-cased) username. */
  readonly login: AttemptLimiter;
  /** Wrong share-link passwords, keyed per link. */
  readonly sharePassword: AttemptLimiter;
  /** Which store holds the counters (every process of a deployment must use the same one). */
  readonly store: 'redis' | 'database';
  /** Drops expired counters (database store; Redis expires its keys itself). */
  prune(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The throttles, on a store every process shares (DESIGN.md: nothing that must hold across processes lives
 * in process memory): Redis when STORMVAULT_REDIS_URL is set (its keys under STORMVAULT_REDIS_PREFIX),
 * otherwise the database itself (SQLite or PostgreSQL, table `rate_limits`), so the embedded default needs
 * no other server.
 */
export async function createThrottles(deps: { config: Config; clock: Clock; db: Db }): Promise<Throttles> {
  const { auth, tasks } = deps.config;
  const window = { points: auth.loginMaxAttempts, duration: auth.loginWindowSeconds };
  if (tasks.redisUrl) {
    // Imported only when Redis is configured: a one-shot CLI command on the embedded default never loads them (issue 12, CLI start-up).
    const [{ Redis }, { RateLimiterRedis }] = await Promise.all([import('ioredis'), import('rate-limiter-flexible')]);
    const client = new Redis(tasks.redisUrl, { maxRetriesPerRequest: 3 });
    // A lost connection is retried by ioredis; meanwhile attempts fail (closed), they are not let through.
    client.on('error', () => {});
    const limiter = (purpose: string): PointsLimiter =>
      new RateLimiterRedis({ storeClient: client, keyPrefix: `${tasks.redisPrefix}:throttle:${purpose}`, ...window });
    return {
      login: new AttemptLimiter(limiter('login'), 'too many failed logins'),
      sharePassword: new AttemptLimiter(limiter('share'), 'too many wrong passwords for this link'),
      store: 'redis',
      prune: async () => 0,
      close: async () => {
        await client.quit().catch(() => client.disconnect());
      },
    };
  }
  const repository = new RateLimitsRepository(deps.db);
  const login = new DatabaseRateLimiter({ keyPrefix: 'login', repository, clock: deps.clock, ...window });
  const share = new DatabaseRateLimiter({ keyPrefix: 'share', repository, clock: deps.clock, ...window });
  return {
    login: new AttemptLimiter(login, 'too many failed logins'),
    sharePassword: new AttemptLimiter(share, 'too many wrong passwords for this link'),
    store: 'database',
    prune: () => login.pruneExpired(),
    close: async () => {},
  };
}
