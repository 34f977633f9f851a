import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { jsonProblem } from '../../src/tasks/json.ts';
import { decideAfterFailure, retryDelayBounds, retryDelayMs } from '../../src/tasks/retry.ts';
import { nextTick, scheduleProblem } from '../../src/lib/cron.ts';
import { scheduleTickKey } from '../../src/tasks/schedule.ts';

describe('retryDelayMs', () => {
  it('doubles from the base up to the cap without jitter', () => {
    const policy = { baseMs: 1000, capMs: 10_000, jitter: false };
    expect([1, 2, 3, 4, 5, 6, 100].map((a) => retryDelayMs(a, policy))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('stays within [d/2, d] and never above the cap with jitter (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.double({ min: 0, max: 0.9999999, noNaN: true }),
        (attempt, baseMs, extra, r) => {
          const policy = { baseMs, capMs: baseMs + extra, jitter: true };
          const d = retryDelayMs(attempt, policy, () => r);
          const { min, max } = retryDelayBounds(attempt, policy);
          return d >= min && d <= max && d <= policy.capMs;
        },
      ),
    );
  });

  it('gives up when attempts ran out or the failure is not retryable', () => {
    const policy = { baseMs: 1000, capMs: 10_000, jitter: false };
    const now = new Date(Date.UTC(2026, 0, 1));
    expect(decideAfterFailure({ attempts: 3, maxAttempts: 3, retryable: true, policy, now })).toEqual({ retry: false });
    expect(decideAfterFailure({ attempts: 1, maxAttempts: 3, retryable: false, policy, now })).toEqual({ retry: false });
    expect(decideAfterFailure({ attempts: 2, maxAttempts: 3, retryable: true, policy, now })).toEqual({ retry: true, runAfter: new Date(now.getTime() + 2000) });
  });
});

describe('schedules', () => {
  it('reads cron fields in the time zone, across daylight saving time', () => {
    // 03:00 in Berlin is 02:00Z in winter (CET) and 01:00Z in summer (CEST); DST began 2026-03-29.
    expect(nextTick('0 3 * * *', 'Europe/Berlin', new Date('2026-03-28T00:00:00Z')).toISOString()).toBe('2026-03-28T02:00:00.000Z');
    expect(nextTick('0 3 * * *', 'Europe/Berlin', new Date('2026-03-29T12:00:00Z')).toISOString()).toBe('2026-03-30T01:00:00.000Z');
    expect(nextTick('@hourly', 'UTC', new Date('2026-01-01T00:00:00Z')).toISOString()).toBe('2026-01-01T01:00:00.000Z');
  });

  it('returns the tick strictly after the given time', () => {
    expect(nextTick('*/5 * * * *', 'UTC', new Date('2026-01-01T00:05:00Z')).toISOString()).toBe('2026-01-01T00:10:00.000Z');
  });

  it('explains a bad cron expression or time zone', () => {
    expect(scheduleProblem('0 3 * * *', 'Europe/Berlin')).toBeNull();
    expect(scheduleProblem('0 3 * * *', 'Mars/Olympus')).toMatch(/unknown time zone/);
    expect(scheduleProblem('every day', 'UTC')).toMatch(/invalid cron/);
    expect(scheduleProblem('61 * * * *', 'UTC')).toMatch(/invalid cron/);
  });

  it('keys each tick of a schedule uniquely', () => {
    expect(scheduleTickKey('daily', new Date('2026-01-01T03:00:00Z'))).toBe('schedule:daily:2026-01-01T03:00:00.000Z');
  });
});

describe('jsonProblem', () => {
  it('accepts what survives a JSON round trip', () => {
    for (const ok of [null, 1, 'x', true, [], {}, { a: [1, { b: null }] }, Object.create(null)]) expect(jsonProblem(ok)).toBeNull();
  });

  it('names the path of what would not', () => {
    expect(jsonProblem({ a: { when: new Date(0) } })).toMatch(/^\$\.a\.when is a Date/);
    expect(jsonProblem([1, Number.POSITIVE_INFINITY])).toMatch(/^\$\[1\] is Infinity/);
    expect(jsonProblem({ f: () => 1 })).toMatch(/function/);
    expect(jsonProblem({ u: undefined })).toMatch(/undefined/);
    expect(jsonProblem(new Map())).toMatch(/Map/);
    expect(jsonProblem(1n)).toMatch(/bigint/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(jsonProblem(loop)).toMatch(/circular/);
  });

  it('accepts the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(jsonProblem({ a: shared, b: shared })).toBeNull();
  });
});

describe('task configuration', () => {
  it('has working defaults and reads every task key', () => {
    expect(loadConfig({}).tasks).toMatchObject({ backend: 'database', leaseMs: 60_000, pollMs: 500, concurrency: 4, shutdownGraceMs: 30_000 });
    const tasks = loadConfig({
      STORMVAULT_TASKS_LEASE_MS: '5000',
      STORMVAULT_TASKS_POLL_MS: '50',
      STORMVAULT_TASKS_CONCURRENCY: '16',
      STORMVAULT_TASKS_RETENTION: '3600',
      STORMVAULT_TASKS_DEAD_RETENTION: '86400',
      STORMVAULT_TASKS_SHUTDOWN_GRACE_MS: '0',
    }).tasks;
    expect(tasks).toMatchObject({ leaseMs: 5000, pollMs: 50, concurrency: 16, retentionMs: 3_600_000, deadRetentionMs: 86_400_000, shutdownGraceMs: 0 });
  });

  it('reports every bad task key at once', () => {
    let error: unknown;
    try {
      loadConfig({ STORMVAULT_TASKS_LEASE_MS: '10', STORMVAULT_TASKS_CONCURRENCY: '0', STORMVAULT_TASKS_RETENTION: 'a week', STORMVAULT_TASKS_BACKEND: 'celery' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const keys = (error as ConfigError).problems.map((p) => p.split('=')[0]);
    expect(keys).toEqual(expect.arrayContaining(['STORMVAULT_TASKS_LEASE_MS', 'STORMVAULT_TASKS_CONCURRENCY', 'STORMVAULT_TASKS_RETENTION', 'STORMVAULT_TASKS_BACKEND']));
  });
});
