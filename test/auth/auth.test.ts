import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { AuthService } from '../../src/modules/auth/auth.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

describe.each(testDialects())(`${AuthService.name} over HTTP on %s`, (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const password = 'correct horse battery';
  const login = (body: unknown, ip = '10.0.0.1') =>
    t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: body as object, remoteAddress: ip });

  beforeAll(async () => {
    t = await createTestApp({ dialect, clock, env: { STORMVAULT_LOGIN_MAX_ATTEMPTS: '3', STORMVAULT_LOGIN_WINDOW: '60' } });
    await t.app.users.create({ username: 'alice', password });
    await t.app.users.create({ username: 'bob', password });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('logs in and the access token authenticates /users/me', async () => {
    const res = await login({ username: 'alice', password });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const me = await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: { authorization: `Bearer ${body.access_token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ username: 'alice', is_admin: false });
    expect(me.json()).not.toHaveProperty('password_hash');
  });

  it('rejects wrong credentials and bad bodies without saying which part was wrong', async () => {
    const wrong = await login({ username: 'alice', password: 'nope-nope' }, '10.0.0.2');
    expect(wrong.statusCode).toBe(401);
    const unknown = await login({ username: 'nobody', password: 'nope-nope' }, '10.0.0.2');
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().error.message).toBe(wrong.json().error.message);
    for (const body of [{}, { username: 'alice' }, { username: 1, password: 'x' }]) {
      const res = await login(body, '10.0.0.3');
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
    const malformed = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('invalid_request');
    const wrongType = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/xml' }, payload: '<login/>' });
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json().error.code).toBe('unsupported_media_type');
  });

  it('rate-limits failed logins per IP and per username, with Retry-After', async () => {
    for (let i = 0; i < 3; i++) expect((await login({ username: 'bob', password: 'wrong-pass' }, `10.1.0.${i}`)).statusCode).toBe(401);
    // Same username from a fresh IP: locked, even with the right password.
    const locked = await login({ username: 'bob', password }, '10.1.0.99');
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // Another user from yet another IP is unaffected.
    expect((await login({ username: 'alice', password }, '10.1.0.100')).statusCode).toBe(200);
    clock.advance(61_000);
    expect((await login({ username: 'bob', password }, '10.1.0.99')).statusCode).toBe(200);
  });

  it('prunes throttle counters whose window ended (daily task auth.prune_rate_limits)', async () => {
    expect((await login({ username: 'nobody-prune', password: 'wrong-pass' }, '10.1.9.9')).statusCode).toBe(401);
    const keys = async () => (await t.app.db.selectFrom('rate_limits').select('key').execute()).map((r) => r.key);
    expect(await keys()).toEqual(expect.arrayContaining(['login:ip:10.1.9.9', 'login:user:nobody-prune']));
    expect(t.app.tasks.schedules().map((s) => s.name)).toContain('auth.prune_rate_limits.daily');
    clock.advance(60_000 + 3_600_000 + 1);
    const task = await t.app.tasks.enqueue('auth.prune_rate_limits', {});
    await task.wait({ timeoutMs: 30_000 });
    expect(task.status).toBe('SUCCESSFUL');
    expect(await keys()).not.toContain('login:ip:10.1.9.9');
  });

  it('rotates refresh tokens and revokes the login when a used one is replayed', async () => {
    const first = (await login({ username: 'alice', password }, '10.2.0.1')).json();
    const refresh = (token: string) => t.app.http.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: token } });
    const second = await refresh(first.refresh_token);
    expect(second.statusCode).toBe(200);
    expect(second.json().refresh_token).not.toBe(first.refresh_token);
    const replay = await refresh(first.refresh_token);
    expect(replay.statusCode).toBe(401);
    // The replay revoked the family: the legitimately rotated token is dead too.
    expect((await refresh(second.json().refresh_token)).statusCode).toBe(401);
  });

  it('expires access tokens and logs out', async () => {
    const pair = (await login({ username: 'alice', password }, '10.3.0.1')).json();
    const me = () => t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: { authorization: `Bearer ${pair.access_token}` } });
    expect((await me()).statusCode).toBe(200);
    clock.advance(901_000);
    expect((await me()).statusCode).toBe(401);
    const out = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refresh_token: pair.refresh_token } });
    expect(out.statusCode).toBe(204);
    expect((await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode).toBe(401);
  });

  it('creates, lists and revokes API keys; a revoked key stops working', async () => {
    const owner = await createUserWithKey(t.app);
    const created = await t.app.http.inject({ method: 'POST', url: '/api/v1/apikeys', headers: owner.headers, payload: { name: 'laptop' } });
    expect(created.statusCode).toBe(201);
    const { id, key } = created.json();
    expect(key).toMatch(/^sv_/);
    const list = await t.app.http.inject({ method: 'GET', url: '/api/v1/apikeys', headers: owner.headers });
    expect(list.json().keys.map((k: { name: string }) => k.name)).toEqual(['test', 'laptop']);
    expect(JSON.stringify(list.json())).not.toContain(key);
    const other = await createUserWithKey(t.app);
    expect((await t.app.http.inject({ method: 'DELETE', url: `/api/v1/apikeys/${id}`, headers: other.headers })).statusCode).toBe(404);
    expect((await t.app.http.inject({ method: 'DELETE', url: `/api/v1/apikeys/${id}`, headers: owner.headers })).statusCode).toBe(204);
    const after = await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: { authorization: `Bearer ${key}` } });
    expect(after.statusCode).toBe(401);
  });

  it('keeps user administration to admins', async () => {
    const member = await createUserWithKey(t.app);
    const admin = await createUserWithKey(t.app, { admin: true });
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/users', headers: member.headers })).statusCode).toBe(403);
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/users' })).statusCode).toBe(401);
    const create = (payload: object) => t.app.http.inject({ method: 'POST', url: '/api/v1/users', headers: admin.headers, payload });
    expect((await create({ username: 'carol', password: 'long-enough-1' })).statusCode).toBe(201);
    expect((await create({ username: 'carol', password: 'long-enough-1' })).statusCode).toBe(409);
    expect((await create({ username: 'x/y', password: 'long-enough-1' })).statusCode).toBe(400);
    expect((await create({ username: 'dave', quota_bytes: 'lots' })).statusCode).toBe(400);
    expect((await t.app.http.inject({ method: 'POST', url: '/api/v1/users', headers: member.headers, payload: { username: 'eve' } })).statusCode).toBe(403);
    expect(await t.app.users.list().then((u) => u.map((x) => x.username))).not.toContain('eve');
  });
});
