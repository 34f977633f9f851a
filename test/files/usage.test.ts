import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

/** Issue 14: the web UI shows quota used/available from GET /api/v1/usage. */
describe.each(testDialects())('GET /api/v1/usage on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('counts the caller’s bytes only, against their quota', async () => {
    const limited = await createUserWithKey(t.app, { quotaBytes: 1000 });
    const other = await createUserWithKey(t.app);
    for (const [who, body] of [[limited, 'x'.repeat(300)], [other, 'y'.repeat(50)]] as const) {
      const put = await t.app.http.inject({ method: 'PUT', url: '/api/v1/files/a/b.txt', headers: who.headers, payload: body });
      expect(put.statusCode).toBe(201);
    }
    const res = await t.app.http.inject({ method: 'GET', url: '/api/v1/usage', headers: limited.headers });
    expect(res.json()).toEqual({ used_bytes: 300, quota_bytes: 1000, available_bytes: 700 });
    const unlimited = await t.app.http.inject({ method: 'GET', url: '/api/v1/usage', headers: other.headers });
    expect(unlimited.json()).toEqual({ used_bytes: 50, quota_bytes: null, available_bytes: null });
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/usage' })).statusCode).toBe(401);
  });
});
