import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { StreamConsumer } from '../../src/streams/stream-consumer.ts';
import type { StreamLog } from '../../src/streams/stream.port.ts';
import { streamFixtures, type OpenStream } from './fixtures.ts';

describe.each(streamFixtures())('StreamLog conformance: $name', (fixture) => {
  let open: OpenStream;
  let log: StreamLog;
  beforeEach(async () => {
    open = await fixture.open();
    log = open.log;
  });
  afterEach(async () => open.close());

  const appendMany = async (stream: string, n: number) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await log.append(stream, { n: i, text: `entry ${i}` }));
    return ids;
  };

  it('hands a group its entries oldest first, once, and keeps them pending until acknowledged', async () => {
    await log.createGroup('s1', 'g');
    const ids = await appendMany('s1', 5);
    const first = await log.read('s1', 'g', 'c1', { count: 3 });
    expect(first.map((e) => e.payload)).toEqual([0, 1, 2].map((n) => ({ n, text: `entry ${n}` })));
    expect(first.map((e) => e.id)).toEqual(ids.slice(0, 3));
    expect(first.every((e) => !e.redelivered)).toBe(true);
    const second = await log.read('s1', 'g', 'c1', { count: 10 });
    expect(second.map((e) => e.id)).toEqual(ids.slice(3));
    expect(await log.read('s1', 'g', 'c1')).toEqual([]);
    expect(await log.pendingCount('s1', 'g')).toBe(5);
    expect(await log.ack('s1', 'g', ids.slice(0, 2))).toBe(2);
    expect(await log.ack('s1', 'g', ids.slice(0, 2))).toBe(0);
    expect(await log.pendingCount('s1', 'g')).toBe(3);
  });

  it('a group created after appends still starts at the beginning; createGroup is idempotent', async () => {
    await appendMany('s2', 2);
    await log.createGroup('s2', 'late');
    expect((await log.read('s2', 'late', 'c')).length).toBe(2);
    await log.createGroup('s2', 'late');
    expect(await log.read('s2', 'late', 'c')).toEqual([]);
  });

  it('every group sees every entry', async () => {
    await log.createGroup('s3', 'a');
    await log.createGroup('s3', 'b');
    const ids = await appendMany('s3', 4);
    expect((await log.read('s3', 'a', 'x')).map((e) => e.id)).toEqual(ids);
    expect((await log.read('s3', 'b', 'y')).map((e) => e.id)).toEqual(ids);
  });

  it('a consumer trims what it acknowledged while a backlog lasts, not only once the stream runs dry', async () => {
    await log.createGroup('s9', 'g');
    await appendMany('s9', 30);
    const handled: unknown[] = [];
    const consumer = new StreamConsumer({ log, stream: 's9', group: 'g', consumer: 'c', batch: 10, trimEvery: 20, logger: pino({ level: 'silent' }), handle: async (e) => void handled.push(e.payload) });
    expect(await consumer.runOnce()).toBe(10);
    expect(await log.length('s9')).toBe(30);
    expect(await consumer.runOnce()).toBe(10);
    // 20 acknowledged, 10 still to read: trimmed although the last read was full (Redis' XTRIM MINID
    // keeps the last delivered entry itself, so 10 or 11 are left).
    expect(await log.length('s9')).toBeLessThanOrEqual(11);
    expect(await log.length('s9')).toBeGreaterThanOrEqual(10);
    expect(await consumer.runOnce()).toBe(10);
    expect(await consumer.runOnce()).toBe(0);
    expect(await log.length('s9')).toBeLessThanOrEqual(1);
    expect(handled).toHaveLength(30);
  });

  it('consumers of one group reading at once never get the same entry', async () => {
    await log.createGroup('s4', 'g');
    const ids = await appendMany('s4', 40);
    const batches = await Promise.all(Array.from({ length: 8 }, (_, i) => log.read('s4', 'g', `c${i}`, { count: 7 })));
    const seen = batches.flat().map((e) => e.id);
    expect(new Set(seen).size).toBe(seen.length);
    const rest = await log.read('s4', 'g', 'late', { count: 100 });
    expect([...seen, ...rest.map((e) => e.id)].sort()).toEqual([...ids].sort());
  });

  it('re-delivers an entry not acknowledged within the claim timeout, and not before', async () => {
    await log.createGroup('s5', 'g');
    const [a, b] = await appendMany('s5', 2);
    const got = await log.read('s5', 'g', 'dies');
    expect(got.map((e) => e.id)).toEqual([a, b]);
    await log.ack('s5', 'g', [a!]);
    expect(await log.read('s5', 'g', 'other')).toEqual([]);
    await open.ageBeyondClaimTimeout();
    const again = await log.read('s5', 'g', 'other');
    expect(again).toEqual([{ id: b, payload: { n: 1, text: 'entry 1' }, redelivered: true }]);
    await log.ack('s5', 'g', [b!]);
    await open.ageBeyondClaimTimeout();
    expect(await log.read('s5', 'g', 'third')).toEqual([]);
    expect(await log.pendingCount('s5', 'g')).toBe(0);
  });

  it('trim removes only entries every group has acknowledged', async () => {
    await log.createGroup('s6', 'a');
    await log.createGroup('s6', 'b');
    const ids = await appendMany('s6', 6);
    await log.read('s6', 'a', 'x');
    await log.ack('s6', 'a', ids);
    const inB = await log.read('s6', 'b', 'y', { count: 3 });
    await log.ack('s6', 'b', inB.slice(0, 2).map((e) => e.id));
    await log.trim('s6');
    const left = await log.length('s6');
    expect(left).toBeLessThanOrEqual(6);
    expect(left).toBeGreaterThanOrEqual(4); // ids[2] is pending in b, ids[3..] unread by b
    await open.ageBeyondClaimTimeout();
    const rest = await log.read('s6', 'b', 'z', { count: 10 });
    expect(rest.map((e) => e.id)).toEqual(ids.slice(2));
  });

  it('reading a group that does not exist fails', async () => {
    await log.append('s7', 1);
    await expect(log.read('s7', 'nope', 'c')).rejects.toThrow();
  });

  it('refuses malformed stream names', async () => {
    await expect(log.append('Bad Name', 1)).rejects.toThrow(/stream name/);
  });
});
