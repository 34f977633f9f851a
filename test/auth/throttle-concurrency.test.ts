import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';
import { AttemptLimiter } from '../../src/throttle/attempt-limiter.ts';
import { redisAvailable, TEST_REDIS_URL, testDialects, type TestDialect } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

/**
 * Issue 12, "throttles beaten by concurrency": the limit was checked before the slow password hash and
 * the failure recorded after it, so 39 wrong passwords sent at once were all checked (limit 10). Every
 * store runs the same bursts: the database (SQLite, PostgreSQL) and Redis.
 */
const stores: Array<{ name: string; dialect: TestDialect; redis: boolean }> = [
  ...testDialects().map((dialect) => ({ name: dialect, dialect, redis: false })),
  ...(redisAvailable() ? [{ name: 'redis', dialect: 'sqlite' as const, redis: true }] : []),
];

const LIMIT = 10;
const count = (codes: number[], code: number) => codes.filter((c) => c === code).length;

describe.each(stores)(`${AttemptLimiter.name} under concurrent bursts on $name`, ({ dialect, redis }) => {
  let t: TestApp;
  /** A second server process on the same database and Redis (its own memory, its own HTTP server). */
  let second: App;
  const password = 'the right password';
  const prefix = `svtest-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    t = await createTestApp({
      dialect,
      env: { STORMVAULT_LOGIN_MAX_ATTEMPTS: String(LIMIT), ...(redis ? { STORMVAULT_REDIS_URL: TEST_REDIS_URL!, STORMVAULT_REDIS_PREFIX: prefix } : {}) },
    });
    expect(t.app.throttles.store).toBe(redis ? 'redis' : 'database');
    second = await createApp(t.config, { logger: createLogger(t.config, process.stderr) });
    for (const username of ['victim', 'spray', 'twoproc']) await t.app.users.create({ username, password });
  });
  afterAll(async () => {
    await second?.close();
    await t?.cleanup();
    if (redis) {
      const client = new Redis(TEST_REDIS_URL!);
      const keys = await client.keys(`${prefix}:*`);
      if (keys.length > 0) await client.del(...keys);
      await client.quit();
    }
  });

  const login = (app: App, username: string, pass: string, ip: string) =>
    app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password: pass }, remoteAddress: ip });

  it(`39 wrong passwords and the right one at once: at most ${LIMIT} are checked, the rest are 429`, async () => {
    const attempts = [...Array.from({ length: 39 }, (_, i) => `wrong ${i}`), password];
    const codes = (await Promise.all(attempts.map((pass, i) => login(t.app, 'victim', pass, `10.9.${i}.1`)))).map((r) => r.statusCode);
    expect(count(codes, 429)).toBeGreaterThanOrEqual(40 - LIMIT);
    expect(count(codes, 401) + count(codes, 200)).toBeLessThanOrEqual(LIMIT);
  });

  it(`40 concurrent wrong passwords for one username from 40 IPs: exactly ${LIMIT} × 401, then even the right one is 429`, async () => {
    const codes = (await Promise.all(Array.from({ length: 40 }, (_, i) => login(t.app, 'spray', `nope ${i}`, `10.8.${i}.1`)))).map((r) => r.statusCode);
    expect(count(codes, 401)).toBe(LIMIT);
    expect(count(codes, 429)).toBe(40 - LIMIT);
    const locked = await login(t.app, 'spray', password, '10.8.99.1');
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
  });

  it(`40 concurrent guesses from one IP over many usernames: exactly ${LIMIT} are checked`, async () => {
    const codes = (await Promise.all(Array.from({ length: 40 }, (_, i) => login(t.app, `nobody-${i}`, 'guess', '10.7.0.1')))).map((r) => r.statusCode);
    expect(count(codes, 401)).toBe(LIMIT);
    expect(count(codes, 429)).toBe(40 - LIMIT);
  });

  it('two server processes count against one limit', async () => {
    const codes: number[] = [];
    for (let i = 0; i < LIMIT; i++) codes.push((await login(i % 2 === 0 ? t.app : second, 'twoproc', `bad ${i}`, `10.6.${i}.1`)).statusCode);
    expect(codes).toEqual(Array(LIMIT).fill(401));
    expect((await login(second, 'twoproc', password, '10.6.99.1')).statusCode).toBe(429);
    expect((await login(t.app, 'twoproc', password, '10.6.98.1')).statusCode).toBe(429);
  });

  it('successful logins do not use up the IP allowance', async () => {
    await t.app.users.create({ username: 'regular', password });
    for (let i = 0; i < LIMIT + 5; i++) expect((await login(t.app, 'regular', password, '10.5.0.1')).statusCode).toBe(200);
  });

  it(`40 concurrent wrong share passwords: exactly ${LIMIT} × 401, then the right one is 429`, async () => {
    const owner = await createUserWithKey(t.app);
    await t.app.files.put(owner.user.id, 'doc.txt', Readable.from([Buffer.from('shared')]));
    const created = await t.app.http.inject({ method: 'POST', url: '/api/v1/shares', headers: owner.headers, payload: { path: 'doc.txt', password: 'open sesame' } });
    const token = created.json().token as string;
    const visit = (app: App, pass: string, ip: string) => app.http.inject({ method: 'GET', url: `/s/${token}`, headers: { 'x-share-password': pass }, remoteAddress: ip });
    const codes = (await Promise.all(Array.from({ length: 40 }, (_, i) => visit(i % 2 ? second : t.app, `guess ${i}`, `10.4.${i}.1`)))).map((r) => r.statusCode);
    expect(count(codes, 401)).toBe(LIMIT);
    expect(count(codes, 429)).toBe(40 - LIMIT);
    expect((await visit(t.app, 'open sesame', '10.4.99.1')).statusCode).toBe(429);
  });
});
