import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COOKIE_CSRF_HEADER, REFRESH_COOKIE } from '../../src/modules/auth/auth.routes.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';

/** Issue 14: the web UI keeps its refresh token in an HttpOnly cookie that only refresh and logout read. */
describe.each(testDialects())('refresh token cookie on %s', (dialect) => {
  let t: TestApp;
  const password = 'correct horse battery';

  beforeAll(async () => {
    t = await createTestApp({ dialect, env: { STORMVAULT_TRUST_PROXY: 'true' } });
    await t.app.users.create({ username: 'carol', password });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const cookieLogin = async (headers: Record<string, string> = {}) => {
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', headers, payload: { username: 'carol', password, session: 'cookie' } });
    expect(res.statusCode).toBe(200);
    return res;
  };
  /** The cookie's value and attributes from a Set-Cookie header. */
  const parseSetCookie = (header: unknown) => {
    expect(typeof header).toBe('string');
    const [pair, ...attrs] = String(header).split(';').map((s) => s.trim());
    const [name, value] = pair!.split('=');
    return { name, value: value ?? '', attrs: attrs.map((a) => a.toLowerCase()) };
  };
  const refreshWith = (cookie: string | undefined, extra: Record<string, string> = { [COOKIE_CSRF_HEADER]: '1' }) =>
    t.app.http.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      headers: { ...(cookie ? { cookie: `other=1; ${REFRESH_COOKIE}=${cookie}` } : {}), ...extra },
      payload: {},
    });

  it('sets an HttpOnly SameSite=Strict cookie scoped to /api/v1/auth and keeps the token out of the answer', async () => {
    const res = await cookieLogin();
    const body = res.json();
    expect(body.access_token).toBeTruthy();
    expect(body).not.toHaveProperty('refresh_token');
    const cookie = parseSetCookie(res.headers['set-cookie']);
    expect(cookie.name).toBe(REFRESH_COOKIE);
    expect(cookie.value).toMatch(/^svr_/);
    expect(cookie.attrs).toEqual(expect.arrayContaining(['httponly', 'samesite=strict', 'path=/api/v1/auth']));
    expect(cookie.attrs).not.toContain('secure');
    // Behind an https proxy (trusted here), the cookie is Secure.
    const https = parseSetCookie((await cookieLogin({ 'x-forwarded-proto': 'https' })).headers['set-cookie']);
    expect(https.attrs).toContain('secure');
  });

  it('a login without session=cookie sets no cookie (API clients keep the token pair)', async () => {
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'carol', password } });
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.json().refresh_token).toMatch(/^svr_/);
  });

  it('refresh rotates the cookie; the old one then revokes the login', async () => {
    const first = parseSetCookie((await cookieLogin()).headers['set-cookie']).value;
    const res = await refreshWith(first);
    expect(res.statusCode).toBe(200);
    expect(res.json()).not.toHaveProperty('refresh_token');
    const me = await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: { authorization: `Bearer ${res.json().access_token}` } });
    expect(me.json().username).toBe('carol');
    const second = parseSetCookie(res.headers['set-cookie']).value;
    expect(second).toMatch(/^svr_/);
    expect(second).not.toBe(first);
    // Replaying the first cookie is reuse: 401, the cookie is cleared, and the rotated one is dead too.
    const replay = await refreshWith(first);
    expect(replay.statusCode).toBe(401);
    expect(parseSetCookie(replay.headers['set-cookie']).attrs).toContain('max-age=0');
    expect((await refreshWith(second)).statusCode).toBe(401);
  });

  it('refuses the cookie without the CSRF header, and a refresh with neither body nor cookie', async () => {
    const value = parseSetCookie((await cookieLogin()).headers['set-cookie']).value;
    const noHeader = await refreshWith(value, {});
    expect(noHeader.statusCode).toBe(401);
    expect(noHeader.json().error.message).toContain(COOKIE_CSRF_HEADER);
    expect((await refreshWith(undefined)).statusCode).toBe(401);
    // The refused attempt did not use the token up.
    expect((await refreshWith(value)).statusCode).toBe(200);
  });

  it('the cookie authenticates nothing else', async () => {
    const value = parseSetCookie((await cookieLogin()).headers['set-cookie']).value;
    const me = await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: { cookie: `${REFRESH_COOKIE}=${value}`, [COOKIE_CSRF_HEADER]: '1' } });
    expect(me.statusCode).toBe(401);
  });

  it('logout with the cookie revokes the login and clears the cookie', async () => {
    const value = parseSetCookie((await cookieLogin()).headers['set-cookie']).value;
    const out = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie: `${REFRESH_COOKIE}=${value}`, [COOKIE_CSRF_HEADER]: '1' }, payload: {} });
    expect(out.statusCode).toBe(204);
    expect(parseSetCookie(out.headers['set-cookie']).attrs).toContain('max-age=0');
    expect((await refreshWith(value)).statusCode).toBe(401);
  });

  it('body tokens still work as before', async () => {
    const pair = (await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'carol', password } })).json();
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: pair.refresh_token } });
    expect(res.statusCode).toBe(200);
    expect(res.json().refresh_token).toMatch(/^svr_/);
    expect(res.headers['set-cookie']).toBeUndefined();
    const bad = await t.app.http.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refresh_token: 5 } });
    expect(bad.statusCode).toBe(400);
  });
});
