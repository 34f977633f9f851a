import type { Db } from '../db/schema.ts';

/** Who holds a lock, as stored. */
export interface LockHolder {
  holder: string;
  description: string;
  acquiredAt: string;
  expiresAt: string;
}

/** The `locks` table (migration 0006): one row per held lease lock; the only SQL of src/locks. */
export class LocksRepository {
  constructor(private readonly db: Db) {}

  /**
   * Takes the named lock when it is free or its lease has expired (its holder died). One statement
   * (insert, or update only when expired), so two processes racing for it cannot both win.
   */
  async tryAcquire(name: string, holder: string, description: string, nowIso: string, expiresIso: string): Promise<boolean> {
    const result = await this.db
      .insertInto('locks')
      .values({ name, holder, description, acquired_at: nowIso, expires_at: expiresIso })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, description, acquired_at: nowIso, expires_at: expiresIso })
          .where('locks.expires_at', '<', nowIso),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async holderOf(name: string): Promise<LockHolder | undefined> {
    const row = await this.db.selectFrom('locks').selectAll().where('name', '=', name).executeTakeFirst();
    return row && { holder: row.holder, description: row.description, acquiredAt: row.acquired_at, expiresAt: row.expires_at };
  }

  /** Extends the lease; false when the lock is no longer ours (it expired and was taken over). */
  async renew(name: string, holder: string, expiresIso: string): Promise<boolean> {
    const r = await this.db.updateTable('locks').set({ expires_at: expiresIso }).where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.db.deleteFrom('locks').where('name', '=', name).where('holder', '=', holder).execute();
  }
}
