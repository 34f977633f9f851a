/**
 * Streams (DESIGN.md "The core"): an append-only log with consumer groups and acknowledgement, the shape
 * of Redis Streams. Producers `append`; each consumer group sees every entry once, shared among the
 * group's consumers; an entry stays *pending* until a consumer acknowledges it, and a pending entry not
 * acknowledged within the adapter's claim timeout is handed to the next consumer that reads (so a consumer
 * killed mid-entry loses nothing). Delivery is therefore at-least-once: consumers must be idempotent
 * (backups key theirs by `task_identifier`, issue 9).
 *
 * Adapters: `database` (tables of migration 0012, the embedded default) and `redis`
 * (XADD / XREADGROUP / XACK / XAUTOCLAIM), chosen with the tasks backend. One conformance suite runs on
 * both (test/streams/conformance.test.ts).
 */

/** A JSON value: payloads are stored as JSON by every adapter. */
export type StreamPayload = null | boolean | number | string | StreamPayload[] | { [key: string]: StreamPayload };

/** One entry as handed to a consumer. */
export interface StreamEntry<T = StreamPayload> {
  /** The adapter's id; ids grow with append order within a stream. Pass it to `ack`. */
  readonly id: string;
  readonly payload: T;
  /** True when this entry was delivered before and its claim timed out (the earlier consumer may have died). */
  readonly redelivered: boolean;
}

export interface StreamReadOptions {
  /** Most entries to hand out (re-delivered ones first). Default 100. */
  readonly count?: number;
}

export interface StreamLog {
  /** `database` or `redis`. */
  readonly kind: string;

  /**
   * Appends one entry; resolves with its id once it is durable (committed / acknowledged by Redis).
   * @throws Error when the payload is not JSON-serialisable.
   */
  append(stream: string, payload: StreamPayload): Promise<string>;

  /**
   * Creates a consumer group that starts at the beginning of the stream (creating the stream if needed).
   * Idempotent: an existing group keeps its position.
   */
  createGroup(stream: string, group: string): Promise<void>;

  /**
   * Hands `consumer` up to `count` entries of `group`: first entries delivered earlier whose claim timed
   * out (pending longer than the adapter's `claimTimeoutMs`, now claimed by this consumer), then entries
   * no consumer of the group has seen, oldest first. Never blocks: an empty array means nothing to do.
   * Every entry handed out is pending for the group until acknowledged.
   * @throws Error when the group does not exist (call createGroup first).
   */
  read(stream: string, group: string, consumer: string, options?: StreamReadOptions): Promise<StreamEntry[]>;

  /** Acknowledges entries of the group; resolves with how many were pending. Unknown ids are ignored. */
  ack(stream: string, group: string, ids: readonly string[]): Promise<number>;

  /** How many entries of the group are delivered but not acknowledged. */
  pendingCount(stream: string, group: string): Promise<number>;

  /** Entries in the stream (acknowledged ones included until trimmed). */
  length(stream: string): Promise<number>;

  /**
   * Removes entries that every group of the stream has acknowledged (none pending, all groups past them),
   * so the log does not grow forever. Resolves with the number removed where the adapter knows it.
   */
  trim(stream: string): Promise<number>;

  /** Releases connections. */
  close(): Promise<void>;
}

/** Stream and group names: the same characters as task queue names. */
export const STREAM_NAME_RE = /^[a-z0-9][a-z0-9._:-]{0,99}$/;

export function assertStreamName(kind: 'stream' | 'group' | 'consumer', name: string): void {
  const re = kind === 'consumer' ? /^[\w.:@-]{1,200}$/ : STREAM_NAME_RE;
  if (typeof name !== 'string' || !re.test(name)) throw new Error(`${kind} name ${JSON.stringify(name)} must match ${re}`);
}
