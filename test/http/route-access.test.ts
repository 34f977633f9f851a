import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_EXTENSION } from '../../src/http/auth.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/**
 * Issue 12: authentication comes before validation, on every route. This walks the live OpenAPI document,
 * so a route added later is covered without touching this file: anonymous callers get 401 and members get
 * 403 on admin routes, whatever the body, query or headers. Public routes are listed here on purpose: a new
 * public route fails this test until someone adds it below.
 */
const PUBLIC_ROUTES = [
  'GET /health',
  'GET /api/v1/health',
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/refresh',
  // The refresh token in the body is the credential: a client whose access token expired can still log out.
  'POST /api/v1/auth/logout',
  'GET /p/{site}/{*}',
  'HEAD /p/{site}/{*}',
  'GET /s/{token}',
  'HEAD /s/{token}',
  'GET /s/{token}/{*}',
  'HEAD /s/{token}/{*}',
  // Open to the structural check only: it admits administrators or the scrape token (STORMVAULT_METRICS_TOKEN)
  // itself, 401/403 otherwise (test/metrics/metrics.test.ts), since a scrape token is not a user's credential.
  'GET /metrics',
].sort();

interface Operation {
  method: string;
  path: string;
  access: string;
}

/** Concrete URLs for a templated OpenAPI path, deliberately odd, plus a query string that validates nowhere. */
function urlsFor(path: string): string[] {
  const filled = path.replace(/\{\*\}/g, 'a/%2e%2e/b').replace(/\{[^}]+\}/g, 'zz-not-an-id');
  const query = '?limit=-1&offset=x&since=%ff&device_id=&unknown_param=1&recursive=maybe';
  return [filled, `${filled}${query}`, `${filled.replace(/\/$/, '')}/`];
}

/** Bodies that must never reach validation for a caller who may not make the request. */
const BAD_BODIES: Array<{ headers: Record<string, string>; payload?: string }> = [
  { headers: {} },
  { headers: { 'content-type': 'application/json' }, payload: '{"unterminated":' },
  { headers: { 'content-type': 'application/json' }, payload: '[1,2,3]' },
  { headers: { 'content-type': 'application/xml' }, payload: '<nope/>' },
  { headers: { 'content-type': 'application/octet-stream', 'x-organization': '!!bad!!', 'if-match': 'garbage', range: 'bytes=9-1' }, payload: 'x'.repeat(64) },
];

describe.each(testDialects())('route access on %s', (dialect) => {
  let t: TestApp;
  let member: TestUser;
  let operations: Operation[];

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    member = await createUserWithKey(t.app);
    const docs = await t.app.http.inject({ method: 'GET', url: '/api/docs/json' });
    expect(docs.statusCode).toBe(200);
    operations = [];
    for (const [path, item] of Object.entries<Record<string, Record<string, unknown>>>(docs.json().paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'head', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        operations.push({ method: method.toUpperCase(), path, access: String(op[ACCESS_EXTENSION]) });
      }
    }
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('every route declares its access, and the public ones are exactly the allow-list', () => {
    expect(operations.length).toBeGreaterThan(40);
    for (const op of operations) expect(['public', 'user', 'admin'], `${op.method} ${op.path}`).toContain(op.access);
    const publicOnes = operations.filter((op) => op.access === 'public').map((op) => `${op.method} ${op.path}`);
    expect(publicOnes.sort()).toEqual(PUBLIC_ROUTES);
    // The walk below must not pass vacuously: the known admin routes are marked as such.
    const admin = operations.filter((op) => op.access === 'admin').map((op) => `${op.method} ${op.path}`);
    // Not POST /api/v1/index/rebuild/: org admins may rebuild their organization's backups index, so the
    // route narrows them itself (test/backups/rebuild-http.test.ts walks its 401 → 403 → 400).
    expect(admin).toEqual(expect.arrayContaining(['GET /api/v1/users', 'POST /api/v1/users', 'GET /api/v1/admin/tasks']));
  });

  it('anonymous callers get 401 on every non-public route, whatever they send', async () => {
    const wrong: string[] = [];
    for (const op of operations.filter((o) => o.access !== 'public')) {
      for (const url of urlsFor(op.path)) {
        for (const body of BAD_BODIES) {
          const res = await t.app.http.inject({ method: op.method as 'GET', url, headers: body.headers, payload: body.payload });
          const code = res.statusCode === 401 && op.method !== 'HEAD' ? res.json().error?.code : undefined;
          if (res.statusCode !== 401 || (op.method !== 'HEAD' && code !== 'unauthorized')) wrong.push(`${op.method} ${url} ${body.payload ?? ''} → ${res.statusCode} ${res.body.slice(0, 120)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('members get 403 on every admin route, whatever they send', async () => {
    const wrong: string[] = [];
    for (const op of operations.filter((o) => o.access === 'admin')) {
      for (const url of urlsFor(op.path)) {
        for (const body of BAD_BODIES) {
          const res = await t.app.http.inject({ method: op.method as 'GET', url, headers: { ...body.headers, ...member.headers }, payload: body.payload });
          const code = res.statusCode === 403 && op.method !== 'HEAD' ? res.json().error?.code : undefined;
          if (res.statusCode !== 403 || (op.method !== 'HEAD' && code !== 'forbidden')) wrong.push(`${op.method} ${url} ${body.payload ?? ''} → ${res.statusCode} ${res.body.slice(0, 120)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the API docs are public', async () => {
    for (const url of ['/api/docs', '/api/docs/json', '/api/docs/yaml', '/api/docs/static/swagger-initializer.js']) {
      expect([200, 302], url).toContain((await t.app.http.inject({ method: 'GET', url })).statusCode);
    }
  });
});
