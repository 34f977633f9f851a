import pg from 'pg';
import type { Logger } from '../logger.ts';
import { CHANNEL_RE, type SignalBus } from './signal-bus.port.ts';

/**
 * PostgreSQL LISTEN/NOTIFY. One dedicated connection listens (a pooled one would be handed to other
 * queries); NOTIFY goes through its own short query. A dropped listening connection is reopened after a
 * second; nudges sent meanwhile are lost, which the subscribers' polling covers.
 */
export function pgSignalBus(url: string, logger: Pick<Logger, 'warn'>): SignalBus {
  const listeners = new Map<string, Set<(payload: string) => void>>();
  let client: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | null = null;

  const connect = (): Promise<pg.Client> => {
    if (client) return Promise.resolve(client);
    if (connecting) return connecting;
    connecting = (async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('notification', (msg) => {
        for (const l of listeners.get(msg.channel) ?? []) l(msg.payload ?? '');
      });
      c.on('error', (err) => {
        logger.warn({ err }, 'signal bus: PostgreSQL listener connection lost; reconnecting');
        client = null;
        c.end().catch(() => {});
        if (!closed && !retry) {
          retry = setTimeout(() => {
            retry = null;
            connect()
              .then(async (again) => {
                for (const channel of listeners.keys()) await again.query(`LISTEN ${channel}`);
              })
              .catch(() => {});
          }, 1000);
          retry.unref();
        }
      });
      await c.connect();
      client = c;
      return c;
    })().finally(() => {
      connecting = null;
    });
    return connecting;
  };

  return {
    kind: 'postgres',
    async publish(channel, payload) {
      if (!CHANNEL_RE.test(channel)) throw new Error(`bad channel name ${channel}`);
      try {
        const c = await connect();
        await c.query('SELECT pg_notify($1, $2)', [channel, payload]);
      } catch (err) {
        logger.warn({ err }, 'signal bus: NOTIFY failed (listeners will see the change by polling)');
      }
    },
    async subscribe(channel, listener) {
      if (!CHANNEL_RE.test(channel)) throw new Error(`bad channel name ${channel}`);
      let set = listeners.get(channel);
      if (!set) {
        listeners.set(channel, (set = new Set()));
        const c = await connect();
        await c.query(`LISTEN ${channel}`);
      }
      set.add(listener);
      return () => set.delete(listener);
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      listeners.clear();
      const c = client ?? (connecting ? await connecting.catch(() => null) : null);
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
