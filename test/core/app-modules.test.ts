import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_MODULES, createApp, modulesWith, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { createLogger } from '../../src/logger.ts';

// Issue 12 (CLI start-up): a one-shot command names the modules it uses (createApp `modules`); createApp
// builds those and what they need, and nothing else. An app without `modules` is the whole server.

describe('createApp with modules', () => {
  let dir: string;
  let config: Config;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-app-modules-'));
    config = loadConfig({ STORMVAULT_DATA_DIR: dir, STORMVAULT_LOG_LEVEL: 'silent', STORMVAULT_TASKS_BACKEND: 'immediate' });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds what each named module needs, transitively', () => {
    expect([...modulesWith(['indexSync'])].sort()).toEqual(['files', 'indexSync', 'users']);
    expect([...modulesWith(['sync'])].sort()).toEqual(['devices', 'organizations', 'records', 'sync', 'users']);
    // Backups and collect need each other; collect sends through webhooks.
    expect([...modulesWith(['backups'])].sort()).toEqual(['backups', 'collect', 'organizations', 'users', 'webhooks']);
    expect(modulesWith(APP_MODULES).size).toBe(APP_MODULES.length);
    expect(() => modulesWith(['nope' as never])).toThrow(/unknown module "nope"/);
  });

  it('builds only those: their services work, reading another one throws and names it', async () => {
    const app: App = await createApp(config, { http: false, modules: ['indexSync'], logger: createLogger(config) });
    try {
      const stats = await app.indexSync.run({ mode: 'audit' });
      expect(stats.files_on_disk).toBe(0);
      expect(await app.users.list()).toEqual([]);
      expect(() => app.publishing).toThrow(/built without the publishing module/);
      expect(() => app.sync).toThrow(/built without the sync module/);
      expect(() => app.backups).toThrow(/built without the backups module/);
      expect(() => app.http).toThrow(/without an HTTP server/);
      // No throttles without the modules that throttle (auth, shares): the rate limiter is not even loaded.
      expect(() => app.throttles).toThrow(/built without the auth and shares modules/);
      // The tasks of the modules it built are defined; the others' are not.
      const names = app.tasks.definitions().map((d) => d.name);
      expect(names).toContain('storage.rebuild_index');
      expect(names.some((n) => n.startsWith('backups.') || n.startsWith('publish'))).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('reads or creates the JWT secret and the secrets key only for the modules that use them', async () => {
    const fresh = await mkdtemp(path.join(tmpdir(), 'sv-app-secrets-'));
    try {
      const freshConfig = loadConfig({ STORMVAULT_DATA_DIR: fresh, STORMVAULT_LOG_LEVEL: 'silent', STORMVAULT_TASKS_BACKEND: 'immediate' });
      const audit = await createApp(freshConfig, { http: false, modules: ['indexSync'] });
      await audit.close();
      expect(existsSync(path.join(fresh, 'jwt-secret'))).toBe(false);
      expect(existsSync(path.join(fresh, 'secret-key'))).toBe(false);
      const withAuth = await createApp(freshConfig, { http: false, modules: ['auth'] });
      await withAuth.close();
      expect(existsSync(path.join(fresh, 'jwt-secret'))).toBe(true);
      expect(existsSync(path.join(fresh, 'secret-key'))).toBe(false);
      const whole = await createApp(freshConfig, { http: false });
      await whole.close();
      expect(existsSync(path.join(fresh, 'secret-key'))).toBe(true);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('refuses modules on an app that serves HTTP (it needs every module)', async () => {
    await expect(createApp(config, { modules: ['users'] })).rejects.toThrow(/serves HTTP builds every module/);
  });
});
