/**
 * A best-effort, cross-process nudge: "something on channel X changed, look again". Used where a change
 * must reach every process quickly (publishing settings, issue 11: < 1 s) but where the truth stays in the
 * database: a nudge may be lost (a listener reconnecting, a process starting), so every user of a bus
 * also polls what it watches as a backstop. Payloads are short strings (a version number).
 * Adapters: PostgreSQL LISTEN/NOTIFY (pg-signal-bus.ts), Redis pub/sub (redis-signal-bus.ts), and the
 * in-process one below (SQLite deployments, where polling the database file is the cross-process path).
 */
export interface SignalBus {
  /** Which adapter, for logs and the docs' "how fast" table. */
  readonly kind: 'postgres' | 'redis' | 'local';
  /** Sends `payload` to every subscriber of `channel` in every process (this one included). Never throws. */
  publish(channel: string, payload: string): Promise<void>;
  /** Calls `listener` for each nudge on `channel` until the returned function is called. */
  subscribe(channel: string, listener: (payload: string) => void): Promise<() => void>;
  /** Stops listening and releases the connection. */
  close(): Promise<void>;
}

/** Channel names: letters, digits and "_" (PostgreSQL identifiers; safe in Redis too). */
export const CHANNEL_RE = /^[a-z][a-z0-9_]{0,62}$/;

/** Within one process only: what SQLite deployments get (other processes see changes by polling). */
export function localSignalBus(): SignalBus {
  const listeners = new Map<string, Set<(payload: string) => void>>();
  return {
    kind: 'local',
    async publish(channel, payload) {
      for (const l of listeners.get(channel) ?? []) l(payload);
    },
    async subscribe(channel, listener) {
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
