import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broadcast } from '../../src/coordination/broadcast.port.ts';
import { RedisBroadcast } from '../../src/coordination/redis-broadcast.ts';
import { RedisKeyedLock } from '../../src/coordination/redis-keyed-lock.ts';
import { SyncEvents, type ChangeNotice } from '../../src/modules/sync/sync.events.ts';
import { redisAvailable, TEST_REDIS_URL } from '../helpers/env.ts';

/** A Broadcast between objects of one test, standing in for Redis where transport is not the point. */
function memoryBroadcast(): Broadcast {
  const channels = new Map<string, Set<(m: string) => void>>();
  return {
    async publish(channel, message) {
      for (const l of channels.get(channel) ?? []) queueMicrotask(() => l(message));
    },
    async subscribe(channel, listener) {
      const set = channels.get(channel) ?? new Set();
      channels.set(channel, set);
      set.add(listener);
      return async () => void set.delete(listener);
    },
    async close() {},
  };
}

const nextNotice = (events: SyncEvents, org: string) =>
  new Promise<ChangeNotice>((resolve) => {
    const off = events.subscribe(org, (n) => {
      off();
      resolve(n);
    });
  });

describe(SyncEvents.name, () => {
  it('passes a notice published in one process to listeners in another, once', async () => {
    const bus = memoryBroadcast();
    const a = new SyncEvents({ broadcast: bus });
    const b = new SyncEvents({ broadcast: bus });
    await Promise.all([a.start(), b.start()]);
    const heardOnA: ChangeNotice[] = [];
    const heardOnB: ChangeNotice[] = [];
    a.subscribe('org-1', (n) => heardOnA.push(n));
    b.subscribe('org-1', (n) => heardOnB.push(n));
    const arrived = nextNotice(a, 'org-1');
    b.publish({ organizationId: 'org-1', seq: 7, originDeviceId: 'dev-b' });
    expect(await arrived).toEqual({ organizationId: 'org-1', seq: 7, originDeviceId: 'dev-b' });
    // B's own listener heard it directly, and not a second time from the broadcast.
    await new Promise((r) => setImmediate(r));
    expect(heardOnB).toHaveLength(1);
    expect(heardOnA).toHaveLength(1);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('ignores malformed broadcast messages', async () => {
    const bus = memoryBroadcast();
    const a = new SyncEvents({ broadcast: bus });
    await a.start();
    const heard: ChangeNotice[] = [];
    a.subscribe('org-1', (n) => heard.push(n));
    for (const bad of ['not json', '{}', JSON.stringify({ from: 'x', organizationId: 'org-1', seq: 'nine', originDeviceId: null })]) {
      await bus.publish('sync-events', bad);
    }
    const good = nextNotice(a, 'org-1');
    await bus.publish('sync-events', JSON.stringify({ from: 'other', organizationId: 'org-1', seq: 3, originDeviceId: null }));
    await good;
    expect(heard.map((n) => n.seq)).toEqual([3]);
    await a.stop();
  });

  it('backstop: a change no notice announced is emitted once the poll sees the sequence rise', async () => {
    let seq = 5;
    const polled: string[] = [];
    const a = new SyncEvents({
      latestSeq: async (org) => {
        polled.push(org);
        return seq;
      },
      pollMs: 5,
    });
    a.subscribe('org-1', () => {});
    await a.start();
    // The first poll only learns where org-1 stands; nothing is announced for it.
    while (polled.length === 0) await new Promise((r) => setImmediate(r));
    const arrived = nextNotice(a, 'org-1');
    seq = 9; // a write through another process whose notice was lost
    expect(await arrived).toEqual({ organizationId: 'org-1', seq: 9, originDeviceId: null });
    expect(polled.every((o) => o === 'org-1')).toBe(true);
    await a.stop();
  });
});

describe.runIf(redisAvailable())('Redis coordination', () => {
  const prefix = `svtest-coord-${randomUUID().slice(0, 8)}`;
  const clients: Redis[] = [];
  const redis = () => {
    const c = new Redis(TEST_REDIS_URL!, { maxRetriesPerRequest: null });
    clients.push(c);
    return c;
  };
  let admin: Redis;
  beforeAll(() => {
    admin = redis();
  });
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    for (const c of clients) await c.quit().catch(() => c.disconnect());
  });

  it(`${RedisBroadcast.name}: a message reaches every subscriber of its channel, and only that prefix's`, async () => {
    const a = new RedisBroadcast(redis(), redis(), prefix);
    const b = new RedisBroadcast(redis(), redis(), prefix);
    const other = new RedisBroadcast(redis(), redis(), `${prefix}-other`);
    const got: string[] = [];
    await other.subscribe('ch', (m) => got.push(`other:${m}`));
    let heardOnA!: (m: string) => void;
    const onA = new Promise<string>((resolve) => (heardOnA = resolve));
    await a.subscribe('ch', heardOnA); // resolves once Redis confirmed the subscription
    const onB = new Promise<string>((resolve) => void b.subscribe('ch', resolve).then(() => b.publish('ch', 'hello')));
    expect(await onA).toBe('hello');
    expect(await onB).toBe('hello'); // the publisher's own subscription hears it too
    expect(got.filter((g) => g.startsWith('other:'))).toEqual([]);
    await Promise.all([a.close(), b.close(), other.close()]);
  });

  it(`${RedisKeyedLock.name}: two processes never run a key's critical section at once, and every caller gets its turn`, async () => {
    const p1 = new RedisKeyedLock(redis(), { prefix });
    const p2 = new RedisKeyedLock(redis(), { prefix });
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const section = (i: number) => async () => {
      inside++;
      most = Math.max(most, inside);
      // Yield to the event loop and to Redis so the other process gets every chance to barge in.
      await admin.ping();
      await new Promise((r) => setImmediate(r));
      order.push(i);
      inside--;
      return i;
    };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? p1 : p2).run('user-1', section(i))));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(most).toBe(1);
    expect(order.sort((x, y) => x - y)).toEqual(results);
    // Another key is independent: it does not wait for user-1.
    expect(await p1.run('user-2', async () => 'free')).toBe('free');
    expect(await admin.keys(`${prefix}:lock:*`)).toEqual([]);
  });

  it(`${RedisKeyedLock.name}: a lock whose holder died frees itself when the lease ends`, async () => {
    const lock = new RedisKeyedLock(redis(), { prefix, leaseMs: 200 });
    // A holder that crashed: its key stays until the lease runs out.
    await admin.set(`${prefix}:lock:user-3`, 'dead-holder', 'PX', 150);
    expect(await lock.run('user-3', async () => admin.get(`${prefix}:lock:user-3`))).not.toBe('dead-holder');
  });

  it(`${RedisKeyedLock.name}: gives up with 'locked' after waitMs when the key stays taken`, async () => {
    const lock = new RedisKeyedLock(redis(), { prefix, waitMs: 50 });
    await admin.set(`${prefix}:lock:user-4`, 'someone', 'PX', 60_000);
    await expect(lock.run('user-4', async () => 'ran')).rejects.toMatchObject({ code: 'locked' });
    await admin.del(`${prefix}:lock:user-4`);
  });
});
