import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { redisFixtures, type RedisTaskStore } from './redis.fixture.ts';

// BullMQ keeps its own time for delays (capabilities.usesInjectedClock is false), but what Stormvault
// stamps itself comes from the injected Clock (DESIGN.md: no global clock).
describe.each(redisFixtures())('redis backend with an injected clock: $name', (fixture) => {
  let store: RedisTaskStore;
  beforeAll(async () => {
    store = (await fixture.open()) as RedisTaskStore;
  });
  afterAll(async () => {
    await store?.close();
  });

  it("stamps a failed attempt's error with the injected clock's time", async () => {
    const clock = new ManualClock(Date.UTC(2031, 4, 6, 7, 8, 9, 123));
    const node = await store.node({ clock });
    const task = node.define({ name: 'fails', queue: 'rclock', maxAttempts: 1 }, async () => {
      throw new RangeError('no');
    });
    await node.startWorker({ queues: ['rclock'] });
    const result = await (await task.enqueue(null)).wait({ timeoutMs: 10_000 });

    expect(result.status).toBe('FAILED');
    expect(result.errors.map((e) => [e.errorClass, e.at.toISOString()])).toEqual([['RangeError', '2031-05-06T07:08:09.123Z']]);
  });
});
