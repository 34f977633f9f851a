import { Redis } from 'ioredis';
import { assertStreamName, type StreamEntry, type StreamLog, type StreamPayload, type StreamReadOptions } from '../stream.port.ts';

export interface RedisStreamOptions {
  url: string;
  /** Key prefix (the tasks backend's STORMVAULT_REDIS_PREFIX): stream `s` lives at `<prefix>:stream:<s>`. */
  prefix: string;
  /** A pending entry idle this long is claimed by the next reader with XAUTOCLAIM (default 60 s). */
  claimTimeoutMs?: number;
}

type RawEntry = [id: string, fields: string[]] | null;

/**
 * Redis Streams adapter of the StreamLog port: XADD, XGROUP CREATE … MKSTREAM, XAUTOCLAIM then
 * XREADGROUP `>`, XACK, XTRIM MINID. Idle time is Redis's own clock (XAUTOCLAIM's min-idle-time).
 * Used whenever the redis tasks backend is configured, so a storage worker needs no database at all.
 */
export function redisStream(options: RedisStreamOptions): StreamLog {
  const client = new Redis(options.url, { maxRetriesPerRequest: 3, lazyConnect: false });
  client.on('error', () => {}); // reconnects on its own; commands fail with the error meanwhile
  const claimTimeoutMs = options.claimTimeoutMs ?? 60_000;
  const key = (stream: string) => {
    assertStreamName('stream', stream);
    return `${options.prefix}:stream:${stream}`;
  };
  const toEntry = (raw: RawEntry, redelivered: boolean): StreamEntry | null => {
    if (!raw) return null; // deleted while pending (Redis < 7 reports them as nil)
    const [id, fields] = raw;
    const i = fields.indexOf('payload');
    return { id, payload: JSON.parse(fields[i + 1] ?? 'null') as StreamPayload, redelivered };
  };

  return {
    kind: 'redis',
    async append(stream: string, payload: StreamPayload): Promise<string> {
      const id = await client.xadd(key(stream), '*', 'payload', JSON.stringify(payload));
      return id!;
    },
    async createGroup(stream: string, group: string): Promise<void> {
      assertStreamName('group', group);
      try {
        await client.xgroup('CREATE', key(stream), group, '0', 'MKSTREAM');
      } catch (err) {
        if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
      }
    },
    async read(stream: string, group: string, consumer: string, opts: StreamReadOptions = {}): Promise<StreamEntry[]> {
      assertStreamName('group', group);
      assertStreamName('consumer', consumer);
      const k = key(stream);
      const count = opts.count ?? 100;
      const out: StreamEntry[] = [];
      // XAUTOCLAIM walks the pending list with a cursor; "0-0" back means it reached the end.
      let cursor = '0-0';
      for (let round = 0; round < 100 && out.length < count; round++) {
        const [next, claimed] = (await client.xautoclaim(k, group, consumer, claimTimeoutMs, cursor, 'COUNT', count - out.length)) as [string, RawEntry[], string[]?];
        for (const raw of claimed) {
          const e = toEntry(raw, true);
          if (e) out.push(e);
        }
        cursor = next;
        if (cursor === '0-0') break;
      }
      if (out.length < count) {
        const res = (await client.xreadgroup('GROUP', group, consumer, 'COUNT', count - out.length, 'STREAMS', k, '>')) as [string, RawEntry[]][] | null;
        for (const raw of res?.[0]?.[1] ?? []) {
          const e = toEntry(raw, false);
          if (e) out.push(e);
        }
      }
      return out;
    },
    async ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
      if (ids.length === 0) return 0;
      const valid = ids.filter((id) => /^\d+-\d+$/.test(id));
      return valid.length ? client.xack(key(stream), group, ...valid) : 0;
    },
    async pendingCount(stream: string, group: string): Promise<number> {
      const summary = (await client.xpending(key(stream), group)) as [number, string | null, string | null, unknown];
      return Number(summary[0]);
    },
    async length(stream: string): Promise<number> {
      return client.xlen(key(stream));
    },
    async trim(stream: string): Promise<number> {
      const k = key(stream);
      const groups = (await client.xinfo('GROUPS', k).catch(() => [])) as unknown[][];
      if (groups.length === 0) return 0;
      let keepFrom: string | null = null;
      for (const g of groups) {
        const info = new Map<string, unknown>();
        for (let i = 0; i < g.length; i += 2) info.set(String(g[i]), g[i + 1]);
        let candidate = String(info.get('last-delivered-id'));
        if (Number(info.get('pending')) > 0) {
          const summary = (await client.xpending(k, String(info.get('name')))) as [number, string | null];
          if (summary[1]) candidate = summary[1];
        }
        if (keepFrom === null || compareIds(candidate, keepFrom) < 0) keepFrom = candidate;
      }
      if (!keepFrom || keepFrom === '0-0') return 0;
      return client.xtrim(k, 'MINID', keepFrom);
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? (as < bs ? -1 : as > bs ? 1 : 0) : am < bm ? -1 : 1;
}
