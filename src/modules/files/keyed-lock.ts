/**
 * Serialises async critical sections per key (here: per user) inside one process. Uploads stream
 * outside the lock; only the short "check again, rename, update the index" step runs under it, so two
 * concurrent writes of one user cannot both pass a quota or If-Match check and then both commit.
 * (Several server processes on one storage root would need a database lock instead; not supported yet.)
 */
export class KeyedLock {
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
