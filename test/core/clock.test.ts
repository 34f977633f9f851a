import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../src/clock.ts';

describe(ManualClock.name, () => {
  it('fires timeouts only when advanced past them, in due order, with now() at each due time', () => {
    const sut = new ManualClock(1_000);
    const seen: Array<[string, number]> = [];
    sut.setTimeout(() => seen.push(['b', sut.now().getTime()]), 200);
    sut.setTimeout(() => seen.push(['a', sut.now().getTime()]), 100);
    sut.setTimeout(() => seen.push(['a2', sut.now().getTime()]), 100);
    sut.advance(99);
    expect(seen).toEqual([]);
    sut.advance(150);
    expect(seen).toEqual([
      ['a', 1_100],
      ['a2', 1_100],
      ['b', 1_200],
    ]);
    expect(sut.now().getTime()).toBe(1_249);
    expect(sut.pendingTimers()).toBe(0);
  });

  it('repeats intervals every period until cleared, and clearing a timeout stops it', () => {
    const sut = new ManualClock(0);
    const ticks: number[] = [];
    const interval = sut.setInterval(() => ticks.push(sut.now().getTime()), 40);
    const timeout = sut.setTimeout(() => ticks.push(-1), 50);
    sut.clearTimeout(timeout);
    sut.advance(130);
    expect(ticks).toEqual([40, 80, 120]);
    sut.clearInterval(interval);
    sut.advance(1000);
    expect(ticks).toEqual([40, 80, 120]);
    expect(sut.pendingTimers()).toBe(0);
  });

  it('runs timers set by a timer callback when they fall within the same advance', () => {
    const sut = new ManualClock(0);
    const seen: number[] = [];
    sut.setTimeout(() => sut.setTimeout(() => seen.push(sut.now().getTime()), 10), 10);
    sut.advance(25);
    expect(seen).toEqual([20]);
  });

  it('fires nothing when set back in time, and a 0 ms interval does not spin forever', () => {
    const sut = new ManualClock(10_000);
    let fired = 0;
    sut.setTimeout(() => fired++, 1);
    sut.set(5_000);
    expect(fired).toBe(0);
    const spin = sut.setInterval(() => fired++, 0);
    sut.advance(3);
    expect(fired).toBe(3);
    sut.clearInterval(spin);
    sut.clearTimeout(undefined);
  });
});

describe('systemClock', () => {
  it('runs real timers and cancels them', async () => {
    let cancelledRan = false;
    systemClock.clearTimeout(systemClock.setTimeout(() => (cancelledRan = true), 0).unref());
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 0));
    const interval = await new Promise<ReturnType<typeof systemClock.setInterval>>((resolve) => {
      const t = systemClock.setInterval(() => resolve(t), 0);
    });
    systemClock.clearInterval(interval);
    expect(cancelledRan).toBe(false);
  });
});
