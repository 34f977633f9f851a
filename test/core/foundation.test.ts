import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

describe.each(testDialects())('foundation on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('answers liveness and readiness', async () => {
    const live = await t.app.http.inject({ method: 'GET', url: '/health' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const anonymous = await t.app.http.inject({ method: 'GET', url: '/api/v1/health' });
    expect(anonymous.statusCode).toBe(200);
    expect(anonymous.json()).toEqual({ status: 'ok' });
    // The details are for administrators (issue 12: public health leaks).
    const admin = await createUserWithKey(t.app, { admin: true });
    const ready = await t.app.http.inject({ method: 'GET', url: '/api/v1/health', headers: admin.headers });
    expect(ready.statusCode).toBe(200);
    const body = ready.json();
    expect(body.database.ok).toBe(true);
    expect(body.storage.writable).toBe(true);
    expect(body.storage.free_bytes).toBeGreaterThan(0);
  });

  it('serves OpenAPI docs', async () => {
    const res = await t.app.http.inject({ method: 'GET', url: '/api/docs/json' });
    expect(res.statusCode).toBe(200);
    expect(res.json().openapi).toMatch(/^3\./);
    expect(Object.keys(res.json().paths)).toContain('/api/v1/health');
  });

  it('answers unknown routes with the error envelope and a request id header', async () => {
    const res = await t.app.http.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'no route for GET /nope' } });
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('rejects a malformed or unknown bearer with 401, not anonymous access', async () => {
    for (const authorization of ['Basic abc', 'Bearer sv_not-a-real-key', 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x']) {
      const res = await t.app.http.inject({ method: 'GET', url: '/health', headers: { authorization } });
      expect(res.statusCode, authorization).toBe(401);
      expect(res.json().error.code).toBe('unauthorized');
    }
  });

  it('stores API keys hashed and refuses duplicate usernames', async () => {
    const u = await createUserWithKey(t.app, { username: 'dup-check' });
    const rows = await t.app.db.selectFrom('api_keys').selectAll().where('user_id', '=', u.user.id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key_hash).not.toContain(u.key);
    expect(JSON.stringify(rows)).not.toContain(u.key);
    await expect(t.app.users.create({ username: 'dup-check' })).rejects.toMatchObject({ code: 'already_exists' });
    await expect(t.app.users.create({ username: '../evil' })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
