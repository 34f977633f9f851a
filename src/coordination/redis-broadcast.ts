import type { Redis } from 'ioredis';
import type { Broadcast } from './broadcast.port.ts';

/**
 * Broadcast over Redis pub/sub. Channels are `<prefix>:<channel>`, so deployments sharing one Redis
 * (STORMVAULT_REDIS_PREFIX) never hear each other. A subscribed connection can do nothing else, so this
 * takes two: `client` to publish (shared) and `subscriber` (owned: closed by close()).
 */
export class RedisBroadcast implements Broadcast {
  private readonly listeners = new Map<string, Set<(message: string) => void>>();

  constructor(
    private readonly client: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      for (const listener of this.listeners.get(channel) ?? []) listener(message);
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(`${this.prefix}:${channel}`, message);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    const full = `${this.prefix}:${channel}`;
    let set = this.listeners.get(full);
    if (!set) {
      set = new Set();
      this.listeners.set(full, set);
      // ioredis re-subscribes by itself after a reconnect.
      await this.subscriber.subscribe(full);
    }
    set.add(listener);
    return async () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(full) === set) {
        this.listeners.delete(full);
        await this.subscriber.unsubscribe(full).catch(() => undefined);
      }
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
