import { rm, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthService } from '../../src/modules/health/health.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

describe.each(testDialects())(`${HealthService.name} on %s`, (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let member: TestUser;
  const health = (headers: Record<string, string> = {}) => t.app.http.inject({ method: 'GET', url: '/api/v1/health', headers });

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    admin = await createUserWithKey(t.app, { admin: true });
    member = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('tells anonymous callers and members up or down only; administrators get the details', async () => {
    for (const headers of [{}, member.headers]) {
      const res = await health(headers);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ok' });
    }
    const detailed = await health(admin.headers);
    expect(detailed.statusCode).toBe(200);
    expect(detailed.json()).toMatchObject({ status: 'ok', database: { ok: true }, storage: { ok: true, writable: true, min_free_bytes: 0 } });
    expect(detailed.json().storage.free_bytes).toBeGreaterThan(0);
  });

  it('writes nothing to the storage volume per request', async () => {
    const before = await stat(t.config.storageRoot);
    for (let i = 0; i < 5; i++) {
      await health();
      await health(admin.headers);
    }
    // Creating and removing a probe file would move the folder's mtime.
    expect((await stat(t.config.storageRoot)).mtimeMs).toBe(before.mtimeMs);
  });

  it('a broken storage root is 503 "unavailable" without error text or server paths, for anyone', async () => {
    await rm(t.config.storageRoot, { recursive: true, force: true });
    const anonymous = await health();
    expect(anonymous.statusCode).toBe(503);
    expect(anonymous.json()).toEqual({ status: 'unavailable' });
    const detailed = await health(admin.headers);
    expect(detailed.statusCode).toBe(503);
    expect(detailed.json()).toMatchObject({ status: 'unavailable', database: { ok: true }, storage: { ok: false, problem: 'the storage root cannot be read' } });
    for (const body of [anonymous.body, detailed.body]) {
      expect(body).not.toContain(t.dir);
      expect(body).not.toMatch(/ENOENT|EEXIST|EACCES/);
    }
  });
});
