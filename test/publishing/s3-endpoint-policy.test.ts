import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedAddress } from '../../src/net/outbound.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { startS3rver, type S3rverHandle } from './s3rver.ts';

/**
 * A site's own S3 endpoint is a URL an org admin gives the server, which then connects to it: it is under
 * the outbound (SSRF) policy like webhooks and CDN probes (src/net/outbound.ts). Checked when it is saved
 * (400 with the reason, nothing changed), when the mirror opens the bucket, and at connect time (the
 * SDK's sockets resolve names through the policy).
 */
describe.each(testDialects())('a site S3 endpoint under the outbound policy on %s', (dialect) => {
  const names = new Map<string, string>([
    ['internal.example.test', '10.1.2.3'],
    // The S3 server's name ("localhost": s3rver takes any other name for a virtual-hosted bucket).
    ['localhost', '127.0.0.1'],
  ]);
  const lookups: string[] = [];
  const resolveHost = async (host: string): Promise<ResolvedAddress[]> => {
    lookups.push(host);
    const address = names.get(host);
    if (!address) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return [{ address, family: address.includes(':') ? 6 : 4 }];
  };

  describe('by default (public addresses only)', () => {
    let t: TestApp;
    let admin: TestUser;
    beforeAll(async () => {
      t = await createTestApp({ dialect, appOptions: { resolveHost } });
      admin = await createUserWithKey(t.app);
    });
    afterAll(async () => {
      await t?.cleanup();
    });
    const api = (method: string, url: string, payload?: unknown) => t.app.http.inject({ method: method as 'GET', url, headers: admin.headers, payload: payload as never });
    const s3 = (endpoint: string) => ({ endpoint, bucket: 'b-policy', access_key_id: 'AK', secret_access_key: 'SK' });

    it('refuses a loopback, link-local, private or privately resolving endpoint with 400 and creates nothing', async () => {
      const cases: Array<[string, RegExp]> = [
        ['http://127.0.0.1:9000', /s3\.endpoint http:\/\/127\.0\.0\.1:9000 is not allowed: 127\.0\.0\.1 is a loopback address.*STORMVAULT_OUTBOUND_ALLOW/],
        ['http://169.254.169.254', /169\.254\.169\.254 is a link-local/],
        ['http://[::1]:9000', /::1 is a loopback address/],
        ['http://internal.example.test:9000', /internal\.example\.test resolves to 10\.1\.2\.3 is a private/],
        ['http://nowhere.example.test', /cannot resolve nowhere\.example\.test/],
      ];
      for (const [i, [endpoint, why]] of cases.entries()) {
        const res = await api('POST', '/api/v1/sites', { name: `ssrf-${i}`, s3: s3(endpoint) });
        expect(res.statusCode, endpoint).toBe(400);
        expect(res.json().error.message).toMatch(why);
        expect((await api('GET', `/api/v1/sites/ssrf-${i}`)).statusCode).toBe(404);
      }
    });

    it('refuses such an endpoint in a PATCH and leaves the settings as they were', async () => {
      expect((await api('POST', '/api/v1/sites', { name: 'patched', s3: { bucket: 'b-policy', access_key_id: 'AK', secret_access_key: 'SK' } })).statusCode).toBe(201);
      const before = (await api('GET', '/api/v1/sites/patched')).json();
      const res = await api('PATCH', '/api/v1/sites/patched', { s3: { endpoint: 'http://10.0.0.5:9000' }, cache_control: 'no-store' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/s3\.endpoint .*10\.0\.0\.5 is a private/);
      expect((await api('GET', '/api/v1/sites/patched')).json()).toEqual(before);
    });
  });

  describe('with the S3 server allow-listed (STORMVAULT_OUTBOUND_ALLOW=127.0.0.1)', () => {
    let server: S3rverHandle;
    let t: TestApp;
    let admin: TestUser;
    let bucket: string;
    beforeAll(async () => {
      server = await startS3rver();
      bucket = await server.newBucket();
      // No openBucket hook: the app's own S3 client, whose sockets resolve through the policy.
      t = await createTestApp({ dialect, env: { STORMVAULT_OUTBOUND_ALLOW: '127.0.0.1' }, appOptions: { resolveHost } });
      admin = await createUserWithKey(t.app);
    });
    afterAll(async () => {
      await t?.cleanup();
      await server?.stop();
    });
    const api = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
      t.app.http.inject({ method: method as 'GET', url, headers: { ...admin.headers, ...headers }, payload: payload as never });

    it('accepts it, mirrors through it by the policy’s resolution, and stops when the name turns private', async () => {
      const created = await api('POST', '/api/v1/sites', { name: 'allowed', s3: { endpoint: `http://localhost:${server.port}`, bucket, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' } });
      expect(created.statusCode, created.body).toBe(201);
      lookups.length = 0;
      expect((await api('PUT', '/api/v1/sites/allowed/content/a.txt', 'hello', { 'content-type': 'text/plain' })).statusCode).toBe(201);
      // The mirror checked the endpoint when it opened the bucket, and its socket resolved through the policy.
      expect(lookups.length).toBeGreaterThanOrEqual(2);
      expect(new Set(lookups)).toEqual(new Set(['localhost']));
      const first = (await api('GET', '/api/v1/sites/allowed/content/a.txt')).json().cdn;
      expect(first, first.last_error).toMatchObject({ status: 'verified', sync_verified: true });
      expect(await server.getText(bucket, 'a.txt')).toBe('hello');

      // The name now resolves to a private address. Other settings can still be changed (a switch to
      // local fallback must always work); the mirror, opening the bucket for the new settings, refuses.
      names.set('localhost', '10.9.9.9');
      try {
        expect((await api('PATCH', '/api/v1/sites/allowed', { local_fallback_mode: true })).statusCode).toBe(200);
        expect((await api('PUT', '/api/v1/sites/allowed/content/b.txt', 'again', { 'content-type': 'text/plain' })).statusCode).toBe(201);
        const cdn = (await api('GET', '/api/v1/sites/allowed/content/b.txt')).json().cdn;
        expect(cdn.sync_verified).toBe(false);
        expect(cdn.last_error).toMatch(/localhost resolves to 10\.9\.9\.9 is a private/);
        expect(await server.getText(bucket, 'b.txt')).toBeNull();
      } finally {
        names.set('localhost', '127.0.0.1');
      }
    });
  });
});
