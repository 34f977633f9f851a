import type { Kysely } from 'kysely';
import { inTransaction } from '../../db/transaction.ts';
import type { Database, Db } from '../../db/schema.ts';

/** Tables of migration 0012 used by the database stream adapter (row types stay beside their SQL). */
type StreamTables = {
  stream_entries: { id: import('kysely').Generated<number>; stream: string; payload: string; created_at: string };
  stream_groups: { stream: string; group_name: string; last_id: number; created_at: string };
  stream_pending: { stream: string; group_name: string; entry_id: number; consumer: string; delivered_at: string; deliveries: number };
};
type StreamDb = Kysely<Database & StreamTables>;

export interface EntryRow {
  id: number;
  payload: string;
  redelivered: boolean;
}

/** SQL of the database stream adapter. Reads of one group are serialised by a lock on the group row. */
export class StreamRepository {
  readonly #db: StreamDb;
  readonly #base: Db;
  constructor(db: Db) {
    this.#base = db;
    this.#db = db.withTables<StreamTables>();
  }

  /**
   * A transaction through db/transaction.ts. Its first statement is always a write, so SQLite takes the
   * write lock at once (no read-then-upgrade failure between processes) and PostgreSQL locks the row.
   */
  #write<T>(fn: (db: StreamDb) => Promise<T>): Promise<T> {
    return inTransaction(this.#base, (tx) => fn(tx.withTables<StreamTables>()));
  }

  async append(stream: string, payload: string, now: string): Promise<number> {
    const row = await this.#db.insertInto('stream_entries').values({ stream, payload, created_at: now }).returning('id').executeTakeFirstOrThrow();
    return Number(row.id);
  }

  async createGroup(stream: string, group: string, now: string): Promise<void> {
    await this.#db
      .insertInto('stream_groups')
      .values({ stream, group_name: group, last_id: 0, created_at: now })
      .onConflict((oc) => oc.columns(['stream', 'group_name']).doNothing())
      .execute();
  }

  /** Claims timed-out pending entries, then hands out new ones; all in one transaction. */
  async read(stream: string, group: string, consumer: string, count: number, now: string, claimBefore: string): Promise<EntryRow[]> {
    return this.#write(async (db) => {
      // A no-op update first: it locks the group (SQLite: the database) before anything is read.
      const g = await db
        .updateTable('stream_groups')
        .set((eb) => ({ last_id: eb.ref('last_id') }))
        .where('stream', '=', stream)
        .where('group_name', '=', group)
        .returning('last_id')
        .executeTakeFirst();
      if (!g) throw new Error(`stream ${stream} has no consumer group ${group}`);

      const stale = await db
        .selectFrom('stream_pending')
        .select('entry_id')
        .where('stream', '=', stream)
        .where('group_name', '=', group)
        .where('delivered_at', '<', claimBefore)
        .orderBy('entry_id')
        .limit(count)
        .execute();
      const staleIds = stale.map((r) => Number(r.entry_id));
      const out: EntryRow[] = [];
      if (staleIds.length > 0) {
        await db
          .updateTable('stream_pending')
          .set((eb) => ({ consumer, delivered_at: now, deliveries: eb('deliveries', '+', 1) }))
          .where('stream', '=', stream)
          .where('group_name', '=', group)
          .where('entry_id', 'in', staleIds)
          .execute();
        const rows = await db.selectFrom('stream_entries').select(['id', 'payload']).where('id', 'in', staleIds).orderBy('id').execute();
        for (const r of rows) out.push({ id: Number(r.id), payload: r.payload, redelivered: true });
        // An entry trimmed away while pending (cannot happen through trim(), which keeps pending ones) is dropped.
        const found = new Set(rows.map((r) => Number(r.id)));
        const gone = staleIds.filter((id) => !found.has(id));
        if (gone.length) await db.deleteFrom('stream_pending').where('stream', '=', stream).where('group_name', '=', group).where('entry_id', 'in', gone).execute();
      }
      const room = count - out.length;
      if (room > 0) {
        const fresh = await db
          .selectFrom('stream_entries')
          .select(['id', 'payload'])
          .where('stream', '=', stream)
          .where('id', '>', Number(g.last_id))
          .orderBy('id')
          .limit(room)
          .execute();
        if (fresh.length > 0) {
          const pending = fresh.map((r) => ({ stream, group_name: group, entry_id: Number(r.id), consumer, delivered_at: now, deliveries: 1 }));
          // 6 columns a row: chunks of 500 stay far below either dialect's bound-parameter limit.
          for (let i = 0; i < pending.length; i += 500) await db.insertInto('stream_pending').values(pending.slice(i, i + 500)).execute();
          await db
            .updateTable('stream_groups')
            .set({ last_id: Number(fresh.at(-1)!.id) })
            .where('stream', '=', stream)
            .where('group_name', '=', group)
            .execute();
          for (const r of fresh) out.push({ id: Number(r.id), payload: r.payload, redelivered: false });
        }
      }
      return out;
    });
  }

  async ack(stream: string, group: string, ids: readonly number[]): Promise<number> {
    let total = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const r = await this.#db
        .deleteFrom('stream_pending')
        .where('stream', '=', stream)
        .where('group_name', '=', group)
        .where('entry_id', 'in', ids.slice(i, i + 500))
        .executeTakeFirst();
      total += Number(r.numDeletedRows);
    }
    return total;
  }

  async pendingCount(stream: string, group: string): Promise<number> {
    const r = await this.#db
      .selectFrom('stream_pending')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('stream', '=', stream)
      .where('group_name', '=', group)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async length(stream: string): Promise<number> {
    const r = await this.#db
      .selectFrom('stream_entries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('stream', '=', stream)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Deletes entries below every group's position and below every pending entry. */
  async trim(stream: string): Promise<number> {
    const groups = await this.#db.selectFrom('stream_groups').select('last_id').where('stream', '=', stream).execute();
    if (groups.length === 0) return 0;
    let keepFrom = Math.min(...groups.map((g) => Number(g.last_id))) + 1;
    const p = await this.#db
      .selectFrom('stream_pending')
      .select((eb) => eb.fn.min<number>('entry_id').as('m'))
      .where('stream', '=', stream)
      .executeTakeFirst();
    if (p?.m !== null && p?.m !== undefined) keepFrom = Math.min(keepFrom, Number(p.m));
    const r = await this.#db.deleteFrom('stream_entries').where('stream', '=', stream).where('id', '<', keepFrom).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
