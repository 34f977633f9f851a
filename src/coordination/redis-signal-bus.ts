import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { checkSignal, type SignalBus } from './signal-bus.port.ts';

/**
 * Redis pub/sub (when the deployment runs Redis, STORMVAULT_REDIS_URL). A subscribed connection can do
 * nothing else, so there are two: one subscribes, one publishes. Channels carry the deployment's prefix
 * (STORMVAULT_REDIS_PREFIX), `<prefix>:signal:<channel>`, so deployments sharing a Redis do not nudge
 * each other. ioredis resubscribes after a reconnect.
 */
export function redisSignalBus(url: string, prefix: string, logger: Pick<Logger, 'warn'>): SignalBus {
  const listeners = new Map<string, Set<(payload: string) => void>>();
  const options = { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true } as const;
  const sub = new Redis(url, options);
  const pub = new Redis(url, options);
  for (const conn of [sub, pub]) conn.on('error', (err) => logger.warn({ err }, 'signal bus: Redis connection error'));
  const full = (channel: string) => `${prefix}:signal:${channel}`;
  sub.on('message', (ch: string, payload: string) => {
    const channel = ch.slice(`${prefix}:signal:`.length);
    for (const l of listeners.get(channel) ?? []) l(payload);
  });
  let subConnected: Promise<void> | null = null;

  return {
    kind: 'redis',
    async publish(channel, payload) {
      checkSignal(channel, payload);
      try {
        if (pub.status === 'wait') await pub.connect();
        await pub.publish(full(channel), payload);
      } catch (err) {
        logger.warn({ err }, 'signal bus: PUBLISH failed (listeners will see the change by polling)');
      }
    },
    async subscribe(channel, listener) {
      checkSignal(channel);
      subConnected ??= sub.status === 'wait' ? sub.connect() : Promise.resolve();
      await subConnected;
      let set = listeners.get(channel);
      if (!set) {
        listeners.set(channel, (set = new Set()));
        await sub.subscribe(full(channel));
      }
      set.add(listener);
      return () => set.delete(listener);
    },
    async close() {
      listeners.clear();
      sub.disconnect();
      pub.disconnect();
    },
  };
}
