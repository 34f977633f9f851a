import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { DialectName } from '../db/database.ts';
import type { Db } from '../db/schema.ts';
import { LeaseLocks } from '../locks/lease-lock.ts';
import { LocksRepository } from '../locks/locks.repository.ts';
import type { Logger } from '../logger.ts';
import { KeyedLock, type KeyedMutex } from './keyed-lock.ts';
import { LeasedKeyedLock } from './leased-keyed-lock.ts';
import { localSignalBus, type SignalBus } from './signal-bus.port.ts';

/**
 * What several processes of one deployment share beyond the database's rows (issue 12; DESIGN.md
 * "Processes"; docs/operations.md "Running several processes").
 */
export interface Coordination {
  /**
   * Which store carries it: `redis` when STORMVAULT_REDIS_URL is set (pub/sub, SET NX leases),
   * `postgres` on PostgreSQL without Redis (LISTEN/NOTIFY, leases in the `locks` table), `process` on
   * SQLite (one process: nudges and the write lock stay in it; other processes poll the database file).
   */
  readonly kind: 'redis' | 'postgres' | 'process';
  /** Cross-process nudges: publishing settings, sync pokes. Every user also polls as the backstop. */
  readonly signals: SignalBus;
  /** The files API's per-user write lock. */
  readonly writeLock: KeyedMutex;
  /** Closes the connections it opened. */
  close(): Promise<void>;
}

export interface CoordinationDeps {
  config: Config;
  logger: Logger;
  clock: Clock;
  db: Db;
  dialect: DialectName;
}

/** Namespace of the files API's per-user write leases (`files-write:<user id>`). */
const FILES_WRITE = 'files-write';

/**
 * Picks the store as `kind` says. ioredis and pg are imported only when used, so the embedded default
 * (one `serve` on SQLite) loads neither.
 */
export async function createCoordination({ config, logger, clock, db, dialect }: CoordinationDeps): Promise<Coordination> {
  const log = logger.child({ component: 'coordination' });
  const url = config.tasks.redisUrl;
  if (url) {
    const [{ Redis }, { redisSignalBus }, { redisLeaseStore }] = await Promise.all([
      import('ioredis'),
      import('./redis-signal-bus.ts'),
      import('./redis-lease-store.ts'),
    ]);
    const prefix = config.tasks.redisPrefix;
    const signals = redisSignalBus(url, prefix, log);
    // Commands queue while disconnected (ioredis retries the connection), so a Redis restart delays writes instead of failing them.
    const client = new Redis(url, { maxRetriesPerRequest: null });
    client.on('error', (err) => log.warn({ err }, 'redis connection error'));
    return {
      kind: 'redis',
      signals,
      writeLock: new LeasedKeyedLock(redisLeaseStore(client, prefix), { namespace: FILES_WRITE, clock, logger: log }),
      async close() {
        await signals.close();
        await client.quit().catch(() => client.disconnect());
      },
    };
  }
  if (dialect === 'postgres') {
    const [{ pgSignalBus }, { databaseLeaseStore }] = await Promise.all([import('./pg-signal-bus.ts'), import('./database-lease-store.ts')]);
    const signals = pgSignalBus(config.database.url, clock, log);
    const store = databaseLeaseStore(new LocksRepository(db), clock, LeaseLocks.describe('files write lock'));
    return {
      kind: 'postgres',
      signals,
      writeLock: new LeasedKeyedLock(store, { namespace: FILES_WRITE, clock, logger: log }),
      close: () => signals.close(),
    };
  }
  const signals = localSignalBus();
  return { kind: 'process', signals, writeLock: new KeyedLock(), close: () => signals.close() };
}
