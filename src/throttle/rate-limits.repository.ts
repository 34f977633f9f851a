import { sql } from 'kysely';
import type { Db } from '../db/schema.ts';

export interface RateLimitRow {
  points: number;
  /** Epoch milliseconds when the window of this key ends; null = never. */
  expire: number | null;
}

/**
 * The `rate_limits` table (migration 0008): one row per throttled key, the window's points and its end.
 * Every write is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, so concurrent attempts on one
 * key are counted atomically on SQLite and PostgreSQL alike (issue 12: a burst beat the old check-then-record).
 */
export class RateLimitsRepository {
  constructor(private readonly db: Db) {}

  /**
   * Adds `points` to the key's window (a new window when none is open or it ended before `nowMs`), or with
   * `forceExpire` replaces the row outright. Returns the row after the change.
   */
  async upsert(key: string, points: number, expire: number | null, nowMs: number, forceExpire: boolean): Promise<RateLimitRow> {
    const open = sql<boolean>`(rate_limits.expire is null or rate_limits.expire > ${nowMs})`;
    const row = await this.db
      .insertInto('rate_limits')
      .values({ key, points, expire })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet(
          forceExpire
            ? { points, expire }
            : {
                points: sql<number>`case when ${open} then rate_limits.points + ${points} else ${points} end`,
                expire: sql<number | null>`case when ${open} then rate_limits.expire else ${expire} end`,
              },
        ),
      )
      .returning(['points', 'expire'])
      .executeTakeFirstOrThrow();
    return { points: Number(row.points), expire: row.expire === null ? null : Number(row.expire) };
  }

  async get(key: string, nowMs: number): Promise<RateLimitRow | null> {
    const row = await this.db
      .selectFrom('rate_limits')
      .select(['points', 'expire'])
      .where('key', '=', key)
      .where((eb) => eb.or([eb('expire', 'is', null), eb('expire', '>', nowMs)]))
      .executeTakeFirst();
    return row ? { points: Number(row.points), expire: row.expire === null ? null : Number(row.expire) } : null;
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.db.deleteFrom('rate_limits').where('key', '=', key).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Drops rows whose window ended before `beforeMs`; returns how many. */
  async deleteExpired(beforeMs: number): Promise<number> {
    const res = await this.db.deleteFrom('rate_limits').where('expire', '<', beforeMs).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
