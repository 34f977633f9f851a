import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

describe.each(testDialects())('organizations and memberships on %s', (dialect) => {
  let t: TestApp;
  let owner: TestUser;
  let other: TestUser;
  const call = (user: TestUser, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...user.headers, ...headers }, payload: payload as object });

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    owner = await createUserWithKey(t.app);
    other = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('creates organizations, adds and removes members, and keeps at least one admin', async () => {
    const created = await call(owner, 'POST', '/api/v1/organizations/', { name: 'Acme', storage_quota_bytes: 1000 });
    expect(created.statusCode).toBe(201);
    const acme = created.json();
    expect(acme).toMatchObject({ name: 'Acme', role: 'admin', storage_quota_bytes: 1000 });
    const h = { 'x-organization': acme.id };
    const mine = (await call(owner, 'GET', '/api/v1/organizations')).json().organizations;
    // Created before any other: Acme is the owner's only (so default) organization; no personal one appears.
    expect(mine.map((o: any) => o.name)).toEqual(['Acme']);

    expect((await call(owner, 'PUT', '/api/v1/organizations/members', { username: other.user.username, role: 'member' }, h)).statusCode).toBe(200);
    expect((await call(owner, 'PUT', '/api/v1/organizations/members', { username: 'nobody-at-all', role: 'member' }, h)).statusCode).toBe(404);
    expect((await call(owner, 'PUT', '/api/v1/organizations/members', { username: other.user.username, role: 'owner' }, h)).statusCode).toBe(400);
    const members = (await call(other, 'GET', '/api/v1/organizations/members', undefined, h)).json().members;
    expect(members.map((m: any) => [m.username, m.role]).sort()).toEqual(
      [
        [owner.user.username, 'admin'],
        [other.user.username, 'member'],
      ].sort(),
    );
    // The last admin can neither leave nor be demoted.
    expect((await call(owner, 'DELETE', `/api/v1/organizations/members/${owner.user.id}`, undefined, h)).statusCode).toBe(409);
    expect((await call(owner, 'PUT', '/api/v1/organizations/members', { username: owner.user.username, role: 'member' }, h)).statusCode).toBe(409);
    // Members cannot manage members.
    expect((await call(other, 'DELETE', `/api/v1/organizations/members/${owner.user.id}`, undefined, h)).statusCode).toBe(403);
    expect((await call(owner, 'DELETE', `/api/v1/organizations/members/${other.user.id}`, undefined, h)).statusCode).toBe(204);
    expect((await call(other, 'GET', '/api/v1/tasks', undefined, h)).statusCode).toBe(403);
    expect((await call(owner, 'GET', '/api/v1/tasks', undefined, { 'x-organization': 'not an id!' })).statusCode).toBe(400);
  });
});
