import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SCHEDULES, loadConfig } from '../../src/config/config.ts';
import { scheduleProblem } from '../../src/lib/cron.ts';

describe(loadConfig.name, () => {
  it('applies the documented defaults', () => {
    const sut = loadConfig({});
    expect(sut.dataDir).toBe(path.resolve('./data'));
    expect(sut.storageRoot).toBe(path.resolve('./data/storage'));
    expect(sut.database).toEqual({ url: `sqlite:${path.resolve('./data/stormvault.db')}`, dialect: 'sqlite' });
    expect(sut.server).toMatchObject({ host: '127.0.0.1', port: 8000, publicUrl: 'http://127.0.0.1:8000' });
    expect(sut.tasks.backend).toBe('database');
    expect(Object.isFrozen(sut) && Object.isFrozen(sut.server)).toBe(true);
  });

  it('ships valid default schedules (loadConfig does not re-check them: issue 12, CLI start-up) and still checks any other', () => {
    for (const [key, cron] of Object.entries(DEFAULT_SCHEDULES)) {
      expect(scheduleProblem(cron, 'UTC'), key).toBeNull();
      expect(() => loadConfig({ [key]: '61 * * * *' }), key).toThrow(ConfigError);
      expect(() => loadConfig({ [key]: 'off' }), key).not.toThrow();
      expect(() => loadConfig({ [key]: '*/5 * * * *' }), key).not.toThrow();
    }
  });

  it('reports every bad key at once', () => {
    let caught: unknown;
    try {
      loadConfig({
        STORMVAULT_PORT: 'eighty',
        STORMVAULT_LOG_LEVEL: 'loud',
        STORMVAULT_DATABASE_URL: 'mysql://x',
        STORMVAULT_JWT_SECRET: 'short',
        STORMVAULT_TASKS_BACKEND: 'redis',
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join('\n');
    for (const key of ['STORMVAULT_PORT', 'STORMVAULT_LOG_LEVEL', 'STORMVAULT_DATABASE_URL', 'STORMVAULT_JWT_SECRET', 'STORMVAULT_REDIS_URL']) {
      expect(problems).toContain(key);
    }
  });

  it("words zod's own checks in English (zod/mini with its English locale, src/lib/zod.ts)", () => {
    let caught: unknown;
    try {
      loadConfig({ STORMVAULT_SYNC_MAX_BATCH: '0', STORMVAULT_LOG_LEVEL: 'loud', STORMVAULT_PUBLIC_URL: 'not a url' });
    } catch (err) {
      caught = err;
    }
    expect((caught as ConfigError).problems).toEqual([
      'STORMVAULT_PUBLIC_URL="not a url": Invalid URL',
      'STORMVAULT_LOG_LEVEL="loud": Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"',
      'STORMVAULT_SYNC_MAX_BATCH="0": Too small: expected number to be >=1',
    ]);
  });

  it('reads a JSON config file, lets the environment win, and rejects unknown keys in it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sv-config-'));
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ STORMVAULT_PORT: 9001, STORMVAULT_HOST: '0.0.0.0' }));
    const sut = loadConfig({ STORMVAULT_CONFIG_FILE: file, STORMVAULT_HOST: '127.0.0.2' });
    expect(sut.server.port).toBe(9001);
    expect(sut.server.host).toBe('127.0.0.2');
    await writeFile(file, JSON.stringify({ STORMVAULT_PROT: 9001 }));
    expect(() => loadConfig({ STORMVAULT_CONFIG_FILE: file })).toThrow(/STORMVAULT_PROT.*unknown key/);
    await writeFile(file, '{ not json');
    expect(() => loadConfig({ STORMVAULT_CONFIG_FILE: file })).toThrow(/cannot read/);
  });

  it('recognises PostgreSQL URLs', () => {
    expect(loadConfig({ STORMVAULT_DATABASE_URL: 'postgres://root@127.0.0.1/x' }).database.dialect).toBe('postgres');
  });
});
