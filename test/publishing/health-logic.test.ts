import { describe, expect, it } from 'vitest';
import { parseBusinessHours, withinBusinessHours } from '../../src/modules/publishing/business-hours.ts';
import { nextFailover } from '../../src/modules/publishing/failover.ts';

describe(withinBusinessHours.name, () => {
  it('reads the hours in the site time zone, start inclusive, end exclusive', () => {
    // 07:30 UTC in January is 08:30 in Berlin (UTC+1) and 02:30 in New York.
    const t = new Date('2026-01-15T07:30:00Z');
    expect(withinBusinessHours(t, '08:00-18:00', 'Europe/Berlin')).toBe(true);
    expect(withinBusinessHours(t, '08:00-18:00', 'America/New_York')).toBe(false);
    expect(withinBusinessHours(new Date('2026-01-15T07:00:00Z'), '08:00-18:00', 'Europe/Berlin')).toBe(true);
    expect(withinBusinessHours(new Date('2026-01-15T17:00:00Z'), '08:00-18:00', 'Europe/Berlin')).toBe(false);
    // Summer time: 06:30 UTC in July is 08:30 in Berlin (UTC+2).
    expect(withinBusinessHours(new Date('2026-07-15T06:30:00Z'), '08:00-18:00', 'Europe/Berlin')).toBe(true);
    // Over midnight.
    expect(withinBusinessHours(new Date('2026-01-15T23:30:00Z'), '22:00-06:00', 'UTC')).toBe(true);
    expect(withinBusinessHours(new Date('2026-01-15T12:00:00Z'), '22:00-06:00', 'UTC')).toBe(false);
    expect(withinBusinessHours(new Date('2026-01-15T12:00:00Z'), '00:00-24:00', 'UTC')).toBe(true);
  });
  it('refuses malformed ranges', () => {
    for (const bad of ['8-18', '08:00', '25:00-26:00', '08:00-08:00', '08:60-09:00']) expect(typeof parseBusinessHours(bad), bad).toBe('string');
  });
});

describe(nextFailover.name, () => {
  const t = { failureThreshold: 3, recoveryThreshold: 2 };
  it('switches to local after N failures in a row and back after M successes in a row', () => {
    let s = { state: 'cdn' as 'cdn' | 'local', failures: 0, successes: 0 };
    const run = (healthy: boolean) => {
      const n = nextFailover(s, healthy, t);
      s = { state: n.state, failures: n.failures, successes: n.successes };
      return n;
    };
    expect(run(false).switched).toBe(false);
    expect(run(true).state).toBe('cdn'); // a success breaks the streak
    run(false);
    run(false);
    expect(run(false)).toMatchObject({ state: 'local', switched: true });
    expect(run(true)).toMatchObject({ state: 'local', switched: false });
    expect(run(false)).toMatchObject({ state: 'local', switched: false }); // flapping does not return
    run(true);
    expect(run(true)).toMatchObject({ state: 'cdn', switched: true });
  });
});
