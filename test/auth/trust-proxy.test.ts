import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';

/**
 * Issue 12, throttle keys: behind a reverse proxy every client has the proxy's address, so 10 failed
 * logins locked everyone out. STORMVAULT_TRUST_PROXY makes Fastify believe X-Forwarded-For from the proxy.
 */
describe('STORMVAULT_TRUST_PROXY', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  /** Three failed logins (limit 3) from client A through a proxy at 127.0.0.1, then one from client B. */
  const lockOutA = async (env: Record<string, string>) => {
    t = await createTestApp({ env: { STORMVAULT_LOGIN_MAX_ATTEMPTS: '3', ...env } });
    const login = (i: number, client: string) =>
      t!.app.http.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        remoteAddress: '127.0.0.1',
        headers: { 'x-forwarded-for': client },
        payload: { username: `someone-${i}`, password: 'guess' },
      });
    for (let i = 0; i < 3; i++) expect((await login(i, '203.0.113.7')).statusCode).toBe(401);
    return { a: (await login(10, '203.0.113.7')).statusCode, b: (await login(11, '198.51.100.9')).statusCode };
  };

  it('trusted proxy: throttles key on the client address, so one client cannot lock out the others', async () => {
    expect(await lockOutA({ STORMVAULT_TRUST_PROXY: '127.0.0.1' })).toEqual({ a: 429, b: 401 });
  });

  it('by default X-Forwarded-For is not believed (a client cannot pick a fresh address per guess)', async () => {
    expect(await lockOutA({})).toEqual({ a: 429, b: 429 });
  });

  it('accepts true/false, hop counts, addresses and CIDRs; refuses anything else', () => {
    const trust = (v: string) => loadConfig({ STORMVAULT_TRUST_PROXY: v }).server.trustProxy;
    expect(trust('false')).toBe(false);
    expect(trust('true')).toBe(true);
    expect(trust('2')).toBe(2);
    expect(trust('10.0.0.0/8, ::1, loopback')).toEqual(['10.0.0.0/8', '::1', 'loopback']);
    expect(loadConfig({}).server.trustProxy).toBe(false);
    for (const bad of ['yes', '10.0.0.0/33', 'proxy.example.com', '1.2.3.4,']) {
      expect(() => loadConfig({ STORMVAULT_TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });
});
