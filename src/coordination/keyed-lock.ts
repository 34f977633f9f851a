/**
 * One async critical section per key at a time. The files API takes one per user: uploads stream outside
 * the lock; only the short "check again, rename, update the index" step runs under it, so two concurrent
 * writes of one user cannot both pass a quota or If-Match check and then both commit.
 */
export interface KeyedMutex {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * KeyedMutex inside one process (the embedded default: one process on SQLite). Several processes on
 * one storage root need LeasedKeyedLock (createCoordination picks it on Redis or PostgreSQL).
 */
export class KeyedLock implements KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
