/**
 * A best-effort, cross-process nudge: "something on channel X changed, look again" (DESIGN.md
 * "Processes"; issues 11 and 12). Used where a change must reach every process quickly (publishing
 * settings, < 1 s; sync pokes to devices listening on another `serve`) but where the truth stays in the
 * database: a nudge may be lost (a listener reconnecting, a process starting), so every user of a bus
 * also polls what it watches as a backstop, and treats a nudge as a hint, never as the data itself.
 * Payloads are short strings (a version number, a small JSON notice; at most 4,000 bytes, half of
 * PostgreSQL's NOTIFY limit). createCoordination picks the adapter: Redis pub/sub (redis-signal-bus.ts)
 * when Redis is configured, else PostgreSQL LISTEN/NOTIFY (pg-signal-bus.ts) on PostgreSQL, else the
 * in-process one below (SQLite deployments, where polling the database file is the cross-process path).
 */
export interface SignalBus {
  /** Which adapter, for logs and the docs' "how fast" table. */
  readonly kind: 'postgres' | 'redis' | 'local';
  /** Sends `payload` to every subscriber of `channel` in every process (this one included). A transport failure is logged, never thrown: the subscribers' polling covers it (only a bad channel name or an oversized payload rejects). */
  publish(channel: string, payload: string): Promise<void>;
  /** Calls `listener` for each nudge on `channel` from any process until the returned function is called; resolves once listening. */
  subscribe(channel: string, listener: (payload: string) => void): Promise<() => void>;
  /** Stops listening and releases the connection. */
  close(): Promise<void>;
}

/** Channel names: letters, digits and "_" (PostgreSQL identifiers; safe in Redis too). */
export const CHANNEL_RE = /^[a-z][a-z0-9_]{0,62}$/;

/** Longest payload a bus carries (PostgreSQL's NOTIFY takes < 8,000 bytes; kept well below). */
export const MAX_PAYLOAD_BYTES = 4000;

/** Throws on a channel name or payload no adapter may carry (a programming error, so it is not swallowed). */
export function checkSignal(channel: string, payload?: string): void {
  if (!CHANNEL_RE.test(channel)) throw new Error(`bad channel name ${channel}`);
  if (payload !== undefined && Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) throw new Error(`signal payload on ${channel} is over ${MAX_PAYLOAD_BYTES} bytes`);
}

/** Within one process only: what SQLite deployments get (other processes see changes by polling). */
export function localSignalBus(): SignalBus {
  const listeners = new Map<string, Set<(payload: string) => void>>();
  return {
    kind: 'local',
    async publish(channel, payload) {
      checkSignal(channel, payload);
      for (const l of listeners.get(channel) ?? []) l(payload);
    },
    async subscribe(channel, listener) {
      checkSignal(channel);
      let set = listeners.get(channel);
      if (!set) listeners.set(channel, (set = new Set()));
      set.add(listener);
      return () => set.delete(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}
