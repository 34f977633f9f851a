import type { Clock } from '../../clock.ts';
import type { DialectName } from '../../db/database.ts';
import type { Db } from '../../db/schema.ts';
import { assertStreamName, type StreamEntry, type StreamLog, type StreamPayload, type StreamReadOptions } from '../stream.port.ts';
import { StreamRepository } from './stream.repository.ts';

export interface DatabaseStreamOptions {
  db: Db;
  dialect: DialectName;
  clock: Clock;
  /** A pending entry older than this is handed to the next reader (default 60 s). */
  claimTimeoutMs?: number;
}

/**
 * The embedded default StreamLog: entries, groups and pending deliveries in the database (migration
 * 0012). Time comes from the injected Clock, so tests age pending entries without sleeping.
 */
export function databaseStream(options: DatabaseStreamOptions): StreamLog {
  const repo = new StreamRepository(options.db);
  const claimTimeoutMs = options.claimTimeoutMs ?? 60_000;
  const now = () => options.clock.now();
  return {
    kind: 'database',
    async append(stream: string, payload: StreamPayload): Promise<string> {
      assertStreamName('stream', stream);
      return String(await repo.append(stream, JSON.stringify(payload), now().toISOString()));
    },
    async createGroup(stream: string, group: string): Promise<void> {
      assertStreamName('stream', stream);
      assertStreamName('group', group);
      await repo.createGroup(stream, group, now().toISOString());
    },
    async read(stream: string, group: string, consumer: string, opts: StreamReadOptions = {}): Promise<StreamEntry[]> {
      assertStreamName('consumer', consumer);
      const count = opts.count ?? 100;
      const t = now();
      const rows = await repo.read(stream, group, consumer, count, t.toISOString(), new Date(t.getTime() - claimTimeoutMs).toISOString());
      return rows.map((r) => ({ id: String(r.id), payload: JSON.parse(r.payload) as StreamPayload, redelivered: r.redelivered }));
    },
    async ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
      const numeric = ids.filter((id) => /^\d{1,15}$/.test(id)).map(Number);
      return numeric.length ? repo.ack(stream, group, numeric) : 0;
    },
    pendingCount: (stream, group) => repo.pendingCount(stream, group),
    length: (stream) => repo.length(stream),
    trim: (stream) => repo.trim(stream),
    async close() {},
  };
}
