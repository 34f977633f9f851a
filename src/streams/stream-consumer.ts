import type { Logger } from '../logger.ts';
import type { StreamEntry, StreamLog, StreamPayload } from './stream.port.ts';

export interface StreamConsumerOptions<T> {
  log: StreamLog;
  stream: string;
  group: string;
  /** This consumer's name within the group (unique per process: host:pid:random). */
  consumer: string;
  /** Handles one entry; resolving acknowledges it, throwing leaves it pending for re-delivery. Must be idempotent. */
  handle: (entry: StreamEntry<T>) => Promise<void>;
  logger: Logger;
  /** Entries per read (default 100). */
  batch?: number;
  /** Idle wait between empty reads (default 200 ms). */
  pollMs?: number;
  /** Trim after this many acknowledgements even while entries keep coming (default 500; also on every idle read). */
  trimEvery?: number;
}

/**
 * Runs one consumer of a group: read a batch, handle each entry, acknowledge the handled ones. A handler
 * that throws leaves its entry pending; the stream re-delivers it after the claim timeout (to this or
 * another consumer). Tests drive it with `runOnce()`; `start()` loops until `stop()`.
 */
export class StreamConsumer<T = StreamPayload> {
  readonly #o: StreamConsumerOptions<T>;
  #ready: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #ackedSinceTrim = 0;

  constructor(options: StreamConsumerOptions<T>) {
    this.#o = options;
  }

  get name(): string {
    return this.#o.consumer;
  }

  #ensureGroup(): Promise<void> {
    return (this.#ready ??= this.#o.log.createGroup(this.#o.stream, this.#o.group).catch((err) => {
      this.#ready = undefined;
      throw err;
    }));
  }

  /** One read-handle-ack round; resolves with the number of entries acknowledged. */
  async runOnce(): Promise<number> {
    await this.#ensureGroup();
    const entries = await this.#o.log.read(this.#o.stream, this.#o.group, this.#o.consumer, { count: this.#o.batch ?? 100 });
    const done: string[] = [];
    for (const entry of entries) {
      try {
        await this.#o.handle(entry as StreamEntry<T>);
        done.push(entry.id);
      } catch (err) {
        this.#o.logger.error({ err, stream: this.#o.stream, entry: entry.id }, 'stream entry failed; left pending for re-delivery');
      }
    }
    if (done.length) await this.#o.log.ack(this.#o.stream, this.#o.group, done);
    this.#ackedSinceTrim += done.length;
    // Trimmed when the stream runs dry, and during a long backlog too: waiting for an empty read kept every
    // entry of a 10,000-push burst (each a whole configuration) in the table or in Redis until the end.
    if (this.#ackedSinceTrim > 0 && (entries.length === 0 || this.#ackedSinceTrim >= (this.#o.trimEvery ?? 500))) {
      this.#ackedSinceTrim = 0;
      await this.#o.log.trim(this.#o.stream).catch((err) => this.#o.logger.warn({ err, stream: this.#o.stream }, 'stream trim failed'));
    }
    return done.length;
  }

  /** runOnce() until a round acknowledges nothing (test helper). */
  async drain(): Promise<number> {
    let total = 0;
    for (let i = 0; i < 10_000; i++) {
      const n = await this.runOnce();
      if (n === 0) return total;
      total += n;
    }
    throw new Error('drain(): still finding entries after 10000 rounds');
  }

  /** Loops in the background until stop(). */
  start(): void {
    if (this.#loop) return;
    this.#stopping = false;
    this.#loop = (async () => {
      while (!this.#stopping) {
        let handled = 0;
        try {
          handled = await this.runOnce();
        } catch (err) {
          this.#o.logger.error({ err, stream: this.#o.stream }, 'stream read failed');
        }
        if (handled === 0 && !this.#stopping) await this.#idle();
      }
    })();
  }

  #idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.#o.pollMs ?? 200);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Finishes the current round and stops. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
  }
}
