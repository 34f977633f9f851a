import pg from 'pg';
import type { Clock, Timer } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { checkSignal, type SignalBus } from './signal-bus.port.ts';

/** How long a lost listening connection waits before it is reopened. */
const RECONNECT_MS = 1000;

/**
 * PostgreSQL LISTEN/NOTIFY: what a deployment on PostgreSQL without Redis carries its nudges on (issue 12).
 * One dedicated connection listens (a pooled one would be handed to other queries) and also sends the
 * NOTIFYs. A dropped listening connection is reopened after a second, on the app's Clock (DESIGN.md: no
 * global timers); nudges sent meanwhile are lost, which the subscribers' polling covers. Channels are
 * per database, so deployments on separate databases never hear each other.
 */
export function pgSignalBus(url: string, clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>, logger: Pick<Logger, 'warn'>): SignalBus {
  const listeners = new Map<string, Set<(payload: string) => void>>();
  let client: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let closed = false;
  let retry: Timer | null = null;

  // Reopens the listening connection (and every LISTEN) a second after it was lost, again and again
  // while PostgreSQL stays away.
  const scheduleReconnect = () => {
    if (closed || retry) return;
    retry = clock.setTimeout(() => {
      retry = null;
      connect()
        .then(async (again) => {
          for (const channel of listeners.keys()) await again.query(`LISTEN ${channel}`);
        })
        .catch((err: unknown) => {
          logger.warn({ err }, 'signal bus: could not reopen the PostgreSQL listener connection; trying again');
          scheduleReconnect();
        });
    }, RECONNECT_MS);
    // A pending reconnect must never keep a finished process alive.
    retry.unref();
  };

  const lost = (c: pg.Client, err: unknown) => {
    if (client !== c) return;
    client = null;
    c.end().catch(() => {});
    if (closed) return;
    logger.warn({ err }, 'signal bus: PostgreSQL listener connection lost; reconnecting');
    scheduleReconnect();
  };

  const connect = (): Promise<pg.Client> => {
    if (client) return Promise.resolve(client);
    if (connecting) return connecting;
    connecting = (async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('notification', (msg) => {
        for (const l of listeners.get(msg.channel) ?? []) l(msg.payload ?? '');
      });
      c.on('error', (err) => lost(c, err));
      c.on('end', () => lost(c, new Error('connection ended')));
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
      checkSignal(channel, payload);
      try {
        const c = await connect();
        await c.query('SELECT pg_notify($1, $2)', [channel, payload]);
      } catch (err) {
        logger.warn({ err }, 'signal bus: NOTIFY failed (listeners will see the change by polling)');
      }
    },
    async subscribe(channel, listener) {
      checkSignal(channel);
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
      if (retry) clock.clearTimeout(retry);
      listeners.clear();
      const c = client ?? (connecting ? await connecting.catch(() => null) : null);
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
