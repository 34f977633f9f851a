import { createRequire } from 'node:module';
import type { RateLimiterRes as RateLimiterResType, RateLimiterStoreAbstract as StoreAbstractType } from 'rate-limiter-flexible';
import type { Clock } from '../clock.ts';
import type { RateLimitRow, RateLimitsRepository } from './rate-limits.repository.ts';

// The library's base class for stores is not re-exported by its index; its types are. Loading it by path
// keeps the library's own consume/reward/delete logic, with only the storage calls below being ours.
const require = createRequire(import.meta.url);
const RateLimiterStoreAbstract = require('rate-limiter-flexible/lib/RateLimiterStoreAbstract.js') as typeof StoreAbstractType;
// By path too, not through the index, which loads every store the package ships (issue 12, CLI start-up).
const RateLimiterRes = require('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof RateLimiterResType;
type RateLimiterRes = RateLimiterResType;

export interface DatabaseRateLimiterOptions {
  keyPrefix: string;
  points: number;
  /** Seconds of one window. */
  duration: number;
  repository: RateLimitsRepository;
  clock: Clock;
}

/**
 * A rate-limiter-flexible store on the app's own database (SQLite or PostgreSQL), through Kysely.
 *
 * Why not the library's RateLimiterSQLite / RateLimiterPostgres: the SQLite one runs synchronous statements
 * on the raw better-sqlite3 handle, so while a Kysely transaction is open on that same connection its
 * counter updates would silently join (and roll back with) someone else's transaction, and a second
 * connection would block the event loop on SQLite's write lock; both read `Date.now()` where the house rule
 * is an injected Clock (DESIGN.md), and create their tables themselves where ours is a migration (0008).
 * Every process of a deployment shares the table, so the throttle holds across `serve` processes.
 */
export class DatabaseRateLimiter extends RateLimiterStoreAbstract {
  private readonly repository: RateLimitsRepository;
  private readonly clock: Clock;

  constructor(options: DatabaseRateLimiterOptions) {
    super({ storeClient: options.repository, keyPrefix: options.keyPrefix, points: options.points, duration: options.duration });
    this.repository = options.repository;
    this.clock = options.clock;
  }

  /** Drops rows whose window ended over an hour ago. */
  pruneExpired(): Promise<number> {
    return this.repository.deleteExpired(this.clock.now().getTime() - 3_600_000);
  }

  // The four hooks RateLimiterStoreAbstract calls (see its source: _upsert, _get, _delete, _getRateLimiterRes).
  _upsert(rlKey: string, points: number, msDuration: number, forceExpire = false): Promise<RateLimitRow> {
    const now = this.clock.now().getTime();
    return this.repository.upsert(rlKey, points, msDuration > 0 ? now + msDuration : null, now, forceExpire);
  }

  _get(rlKey: string): Promise<RateLimitRow | null> {
    return this.repository.get(rlKey, this.clock.now().getTime());
  }

  _delete(rlKey: string): Promise<boolean> {
    return this.repository.delete(rlKey);
  }

  _getRateLimiterRes(_rlKey: string, changedPoints: number, row: RateLimitRow): RateLimiterRes {
    const isFirstInDuration = changedPoints === row.points;
    const consumed = isFirstInDuration ? changedPoints : row.points;
    const msBeforeNext = row.expire === null ? -1 : Math.max(row.expire - this.clock.now().getTime(), 0);
    return new RateLimiterRes(Math.max(this.points - consumed, 0), msBeforeNext, consumed, isFirstInDuration);
  }
}
