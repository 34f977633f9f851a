import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.ts';
import { migrations } from '../../src/db/migration-list.ts';
import { migratorFor } from '../../src/db/migration-runner.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, freshDatabaseUrl, type TestApp } from '../helpers/test-app.ts';

/** Issue 12: usernames were case-sensitive at creation while the login throttle keyed them lower-cased. */
describe.each(testDialects())('case-insensitive usernames on %s', (dialect) => {
  let t: TestApp;
  const password = 'long enough password';
  beforeAll(async () => {
    t = await createTestApp({ dialect, env: { STORMVAULT_LOGIN_MAX_ATTEMPTS: '3' } });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('refuses a username that differs from an existing one only in case, through the service and the API', async () => {
    await t.app.users.create({ username: 'Alice', password });
    await expect(t.app.users.create({ username: 'alice' })).rejects.toMatchObject({ code: 'already_exists' });
    const admin = await t.app.users.create({ username: 'root-admin', isAdmin: true });
    const { key } = await t.app.apiKeys.create(admin.id);
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/users', headers: { authorization: `Bearer ${key}` }, payload: { username: 'ALICE', password } });
    expect(res.statusCode).toBe(409);
    expect((await t.app.users.list()).filter((u) => u.username.toLowerCase() === 'alice')).toHaveLength(1);
  });

  it('logs in with any case of the name, and the throttle counts every case as one account', async () => {
    const login = (username: string, pass: string, ip: string) =>
      t.app.http.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password: pass }, remoteAddress: ip });
    expect((await login('aLiCe', password, '10.30.0.1')).statusCode).toBe(200);
    for (const [i, name] of ['alice', 'ALICE', 'Alice'].entries()) expect((await login(name, 'wrong one', `10.30.1.${i}`)).statusCode).toBe(401);
    expect((await login('alicE', password, '10.30.2.1')).statusCode).toBe(429);
  });
});

describe.each(testDialects())('migration 0008 on %s', (dialect) => {
  let dir: string;
  let drop: () => Promise<void>;
  let url: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-0008-'));
    ({ url, drop } = await freshDatabaseUrl(dialect, dir));
  });
  afterAll(async () => {
    await drop?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to run while usernames differ only in case, naming them, and runs once they are fixed', async () => {
    const database = createDatabase(url);
    try {
      const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name !== '0008_usernames_rate_limits'));
      const result = await migratorFor(database.db, before).migrateToLatest();
      expect(result.error).toBeUndefined();
      const user = (id: string, username: string) => ({ id, username, password_hash: null, is_admin: 0, quota_bytes: null, created_at: 'x', updated_at: 'x' });
      await database.db.insertInto('users').values([user('1', 'Bob'), user('2', 'bob'), user('3', 'carol'), user('4', 'Dave'), user('5', 'DAVE'), user('6', 'dave')]).execute();

      await expect(migrateToLatest(database.db)).rejects.toThrow(/0008.*Bob \/ bob.*DAVE \/ Dave \/ dave/s);
      // Nothing half-done: the users are all still there, no index was created.
      expect(await database.db.selectFrom('users').select('id').execute()).toHaveLength(6);

      await database.db.updateTable('users').set({ username: 'bob2' }).where('id', '=', '2').execute();
      await database.db.deleteFrom('users').where('id', 'in', ['5', '6']).execute();
      await migrateToLatest(database.db);
      await expect(database.db.insertInto('users').values(user('7', 'CAROL')).execute()).rejects.toThrow();
    } finally {
      await database.destroy();
    }
  });
});
