import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../src/clock.ts';
import { databaseLeaseStore } from '../../src/coordination/database-lease-store.ts';
import { LeasedKeyedLock, type LeaseStore } from '../../src/coordination/leased-keyed-lock.ts';
import { pgSignalBus } from '../../src/coordination/pg-signal-bus.ts';
import { redisLeaseStore } from '../../src/coordination/redis-lease-store.ts';
import { redisSignalBus } from '../../src/coordination/redis-signal-bus.ts';
import { localSignalBus, MAX_PAYLOAD_BYTES, type SignalBus } from '../../src/coordination/signal-bus.port.ts';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { LocksRepository } from '../../src/locks/locks.repository.ts';
import { SYNC_EVENTS_CHANNEL, SyncEvents, type ChangeNotice } from '../../src/modules/sync/sync.events.ts';
import { redisAvailable, TEST_PG_URL, TEST_REDIS_URL, testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';
import { silentLogger } from '../tasks/backends.ts';

const nextNotice = (events: SyncEvents, org: string) =>
  new Promise<ChangeNotice>((resolve) => {
    const off = events.subscribe(org, (n) => {
      off();
      resolve(n);
    });
  });

/** Waits (in real time, bounded) until `check` holds: for events another connection delivers. */
async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe(SyncEvents.name, () => {
  it('passes a notice published in one process to listeners in another, once', async () => {
    // One bus shared by two SyncEvents stands in for two processes on one transport (each filters its own).
    const bus = localSignalBus();
    const a = new SyncEvents({ clock: systemClock, signals: bus });
    const b = new SyncEvents({ clock: systemClock, signals: bus });
    await Promise.all([a.start(), b.start()]);
    const heardOnA: ChangeNotice[] = [];
    const heardOnB: ChangeNotice[] = [];
    a.subscribe('org-1', (n) => heardOnA.push(n));
    b.subscribe('org-1', (n) => heardOnB.push(n));
    const arrived = nextNotice(a, 'org-1');
    b.publish({ organizationId: 'org-1', seq: 7, originDeviceId: 'dev-b' });
    expect(await arrived).toEqual({ organizationId: 'org-1', seq: 7, originDeviceId: 'dev-b' });
    // B's own listener heard it directly, and not a second time from the bus.
    await new Promise((r) => setImmediate(r));
    expect(heardOnB).toHaveLength(1);
    expect(heardOnA).toHaveLength(1);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('ignores malformed messages on the bus', async () => {
    const bus = localSignalBus();
    const a = new SyncEvents({ clock: systemClock, signals: bus });
    await a.start();
    const heard: ChangeNotice[] = [];
    a.subscribe('org-1', (n) => heard.push(n));
    for (const bad of ['not json', '{}', JSON.stringify({ from: 'x', organizationId: 'org-1', seq: 'nine', originDeviceId: null })]) {
      await bus.publish(SYNC_EVENTS_CHANNEL, bad);
    }
    const good = nextNotice(a, 'org-1');
    await bus.publish(SYNC_EVENTS_CHANNEL, JSON.stringify({ from: 'other', organizationId: 'org-1', seq: 3, originDeviceId: null }));
    await good;
    expect(heard.map((n) => n.seq)).toEqual([3]);
    await a.stop();
  });

  it('backstop: a change no notice announced is emitted once the poll (on the Clock) sees the sequence rise', async () => {
    const clock = new ManualClock();
    let seq = 5;
    const polled: string[] = [];
    const a = new SyncEvents({
      clock,
      latestSeq: async (org) => {
        polled.push(org);
        return seq;
      },
      pollMs: 5000,
    });
    a.subscribe('org-1', () => {});
    await a.start();
    clock.advance(4999);
    await new Promise((r) => setImmediate(r));
    expect(polled).toEqual([]); // no poll before its period, whatever the real time
    // The first poll only learns where org-1 stands; nothing is announced for it.
    clock.advance(1);
    await until(() => polled.length === 1);
    const arrived = nextNotice(a, 'org-1');
    seq = 9; // a write through another process whose notice was lost
    clock.advance(5000);
    expect(await arrived).toEqual({ organizationId: 'org-1', seq: 9, originDeviceId: null });
    expect(polled.every((o) => o === 'org-1')).toBe(true);
    await a.stop();
    expect(clock.pendingTimers()).toBe(0);
  });
});

interface BusFixture {
  name: string;
  /** Two buses as two processes of one deployment would open them (the local one: the same bus twice). */
  pair(clock?: ManualClock): Promise<[SignalBus, SignalBus]>;
  close(): Promise<void>;
}

function busFixtures(): BusFixture[] {
  const fixtures: BusFixture[] = [];
  const opened: SignalBus[] = [];
  const closeAll = async () => {
    for (const b of opened.splice(0)) await b.close();
  };
  fixtures.push({
    name: 'local',
    async pair() {
      const bus = localSignalBus();
      opened.push(bus);
      return [bus, bus];
    },
    close: closeAll,
  });
  if (testDialects().includes('postgres')) {
    fixtures.push({
      name: 'postgres',
      async pair(clock) {
        const buses = [pgSignalBus(TEST_PG_URL!, clock ?? systemClock, silentLogger), pgSignalBus(TEST_PG_URL!, clock ?? systemClock, silentLogger)] as [SignalBus, SignalBus];
        opened.push(...buses);
        return buses;
      },
      close: closeAll,
    });
  }
  if (redisAvailable()) {
    const prefix = `svtest-bus-${randomUUID().slice(0, 8)}`;
    fixtures.push({
      name: 'redis',
      async pair() {
        const buses = [redisSignalBus(TEST_REDIS_URL!, prefix, silentLogger), redisSignalBus(TEST_REDIS_URL!, prefix, silentLogger)] as [SignalBus, SignalBus];
        opened.push(...buses);
        return buses;
      },
      close: closeAll,
    });
  }
  return fixtures;
}

describe.each(busFixtures())('SignalBus conformance: $name', (fixture) => {
  // Channels are per database (PostgreSQL) or per prefix (Redis): a random name keeps test files apart.
  const channel = () => `svtest_${randomBytes(6).toString('hex')}`;
  afterAll(() => fixture.close());

  it('delivers a payload to every subscriber of its channel in every process, the publisher included, and to no other channel', async () => {
    const [a, b] = await fixture.pair();
    const ch = channel();
    const onA: string[] = [];
    const onB: string[] = [];
    const elsewhere: string[] = [];
    await a.subscribe(ch, (p) => onA.push(p)); // resolves once listening
    await b.subscribe(ch, (p) => onB.push(p));
    await a.subscribe(channel(), (p) => elsewhere.push(p));
    await b.publish(ch, '{"seq":1}');
    await until(() => onA.length === 1 && onB.length === 1);
    expect(onA).toEqual(['{"seq":1}']);
    expect(onB).toEqual(['{"seq":1}']);
    expect(elsewhere).toEqual([]);
  });

  it('stops calling a listener once it unsubscribed', async () => {
    const [a, b] = await fixture.pair();
    const ch = channel();
    const kept: string[] = [];
    const dropped: string[] = [];
    await a.subscribe(ch, (p) => kept.push(p));
    const off = await a.subscribe(ch, (p) => dropped.push(p));
    await b.publish(ch, 'one');
    await until(() => kept.length === 1 && dropped.length === 1);
    off();
    await b.publish(ch, 'two');
    await until(() => kept.length === 2);
    expect(dropped).toEqual(['one']);
  });

  it('refuses channel names no adapter can carry and payloads over the limit', async () => {
    const [a] = await fixture.pair();
    await expect(a.publish('no-dashes', 'x')).rejects.toThrow(/channel/);
    await expect(a.subscribe('DROP TABLE', () => {})).rejects.toThrow(/channel/);
    await expect(a.publish(channel(), 'x'.repeat(MAX_PAYLOAD_BYTES + 1))).rejects.toThrow(/over/);
  });

});

describe.runIf(testDialects().includes('postgres'))('PostgreSQL signal bus', () => {
  const channel = () => `svtest_${randomBytes(6).toString('hex')}`;

  it('reopens a lost listening connection on its Clock, and hears nudges again', async () => {
    const clock = new ManualClock();
    const appName = `svtest_bus_${randomBytes(4).toString('hex')}`;
    const url = new URL(TEST_PG_URL!);
    url.searchParams.set('application_name', appName);
    const listener = pgSignalBus(url.toString(), clock, silentLogger);
    const sender = pgSignalBus(TEST_PG_URL!, systemClock, silentLogger);
    const ch = channel();
    const heard: string[] = [];
    try {
      await listener.subscribe(ch, (p) => heard.push(p));
      const admin = new pg.Client({ connectionString: TEST_PG_URL });
      await admin.connect();
      try {
        const { rowCount } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);
        expect(rowCount).toBe(1);
      } finally {
        await admin.end();
      }
      // The loss schedules a reconnect on the Clock; nothing reconnects until the Clock says so.
      await until(() => clock.pendingTimers() === 1);
      await sender.publish(ch, 'while-down');
      await new Promise((r) => setTimeout(r, 100));
      expect(heard).toEqual([]);
      clock.advance(1000);
      // Listening again: a nudge sent now arrives (sent until heard: the LISTEN lands asynchronously).
      await until(async () => {
        if (heard.includes('back')) return true;
        await sender.publish(ch, 'back');
        return false;
      });
      expect(heard).not.toContain('while-down');
    } finally {
      await listener.close();
      await sender.close();
    }
    expect(clock.pendingTimers()).toBe(0);
  });
});

interface LeaseFixture {
  name: string;
  open(): Promise<LeaseStore>;
  close(): Promise<void>;
}

function leaseFixtures(): LeaseFixture[] {
  const fixtures: LeaseFixture[] = testDialects().map((dialect) => {
    let dir: string;
    let drop: () => Promise<void>;
    let database: DatabaseHandle;
    return {
      name: `database (${dialect})`,
      async open() {
        dir = await mkdtemp(path.join(tmpdir(), 'stormvault-lease-'));
        const fresh = await freshDatabaseUrl(dialect, dir);
        drop = fresh.drop;
        database = createDatabase(fresh.url);
        await migrateToLatest(database.db);
        return databaseLeaseStore(new LocksRepository(database.db), systemClock, 'coordination test');
      },
      async close() {
        await database?.destroy();
        await drop?.();
        if (dir) await rm(dir, { recursive: true, force: true });
      },
    };
  });
  if (redisAvailable()) {
    const prefix = `svtest-lease-${randomUUID().slice(0, 8)}`;
    const clients: Redis[] = [];
    fixtures.push({
      name: 'redis',
      async open() {
        const c = new Redis(TEST_REDIS_URL!, { maxRetriesPerRequest: null });
        clients.push(c);
        return redisLeaseStore(c, prefix);
      },
      async close() {
        const keys = await clients[0]!.keys(`${prefix}*`);
        if (keys.length) await clients[0]!.del(...keys);
        for (const c of clients) await c.quit().catch(() => c.disconnect());
      },
    });
  }
  return fixtures;
}

describe.each(leaseFixtures())(`${LeasedKeyedLock.name} on $name`, (fixture) => {
  let store: LeaseStore;
  const lock = (options: { leaseMs?: number; waitMs?: number } = {}) => new LeasedKeyedLock(store, { namespace: 'files-write', clock: systemClock, ...options });
  /** True when nobody holds `key` (probed by taking and giving back its lease). */
  const isFree = async (key: string) => {
    const free = await store.tryTake(`files-write:${key}`, 'probe', 60_000);
    if (free) await store.release(`files-write:${key}`, 'probe');
    return free;
  };
  beforeAll(async () => {
    store = await fixture.open();
  });
  afterAll(() => fixture.close());

  it('two processes never run a key\'s critical section at once, and every caller gets its turn', async () => {
    const p1 = lock();
    const p2 = lock();
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const section = (i: number) => async () => {
      inside++;
      most = Math.max(most, inside);
      // Give the store and the other "process" every chance to barge in.
      await store.tryTake('files-write:noise', 'noise', 10);
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
    expect(await isFree('user-1')).toBe(true);
    expect(await isFree('user-2')).toBe(true);
  });

  it('a lease whose holder died frees itself when the lease ends', async () => {
    // A holder that crashed: its lease stays until it runs out.
    expect(await store.tryTake('files-write:user-3', 'dead-holder', 150)).toBe(true);
    expect(await isFree('user-3')).toBe(false);
    expect(await lock({ leaseMs: 200 }).run('user-3', async () => 'ran')).toBe('ran');
  });

  it("gives up with 'locked' after waitMs while the key stays taken, and only the holder can release it", async () => {
    expect(await store.tryTake('files-write:user-4', 'someone', 60_000)).toBe(true);
    await expect(lock({ waitMs: 50 }).run('user-4', async () => 'ran')).rejects.toMatchObject({ code: 'locked' });
    await store.release('files-write:user-4', 'not-the-holder');
    expect(await store.renew('files-write:user-4', 'not-the-holder', 60_000)).toBe(false);
    expect(await isFree('user-4')).toBe(false);
    await store.release('files-write:user-4', 'someone');
    expect(await isFree('user-4')).toBe(true);
  });
});
