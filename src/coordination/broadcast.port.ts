/**
 * Fan-out of small messages to every process of a deployment (DESIGN.md "Processes": what must hold
 * across several serve/worker processes goes through the database or Redis). Delivery is best effort:
 * a message published while a process is disconnected is lost to it, so every user of a Broadcast keeps
 * a backstop (sync events poll the database) and treats a message as a hint, never as the data itself.
 * Adapters: Redis pub/sub (redis-broadcast.ts), PostgreSQL LISTEN/NOTIFY (postgres-broadcast.ts).
 */
export interface Broadcast {
  /** Sends `message` (a short string, at most 4,000 bytes: PostgreSQL's NOTIFY limit is 8,000) to every subscriber of `channel`, this process included. */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `listener` for each message on `channel` from any process; resolves once listening, to the unsubscribe function. */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  /** Stops listening and releases the connections. */
  close(): Promise<void>;
}

/** Timers of the Clock (src/clock.ts gains them in issue 8); the system ones by default. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(timer: unknown): void;
}

/** Node's timers, unref'd: coordination must never keep a finished process alive. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
};
