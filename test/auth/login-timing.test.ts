import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';

// Counts the scrypt runs behind every login: a login costs one whatever the account, so its timing
// does not reveal which usernames exist or which accounts have no password (issue 12: 2.6 ms vs ~50 ms).
const scryptRuns = vi.hoisted(() => ({ n: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    scrypt: (...args: Parameters<typeof real.scrypt>) => {
      scryptRuns.n++;
      return (real.scrypt as (...a: unknown[]) => void)(...args);
    },
  };
});

describe.each(testDialects())('login timing on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
    await t.app.users.create({ username: 'haspass', password: 'a good password' });
    await t.app.users.create({ username: 'nopass' });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const scryptsFor = async (username: string, password: string, expected: number) => {
    const before = scryptRuns.n;
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password }, remoteAddress: '10.20.0.1' });
    expect(res.statusCode, `${username}`).toBe(expected);
    return scryptRuns.n - before;
  };

  it('runs exactly one password hash for a right, a wrong, an unknown and a password-less account', async () => {
    expect(await scryptsFor('haspass', 'a good password', 200)).toBe(1);
    expect(await scryptsFor('haspass', 'a bad password', 401)).toBe(1);
    expect(await scryptsFor('no-such-user', 'whatever', 401)).toBe(1);
    expect(await scryptsFor('nopass', 'whatever', 401)).toBe(1);
  });
});
