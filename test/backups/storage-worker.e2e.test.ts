import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { redisAvailable, TEST_REDIS_URL } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable, gitIn } from '../storage/git-helpers.ts';
import { deleteKeys } from '../tasks/redis.fixture.ts';
import { orgWithUsers } from './helpers.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/stormvault.js');

describe.runIf(gitAvailable() && redisAvailable())('stormvault worker --queue storage.git (redis backend)', () => {
  let t: TestApp;
  let child: ChildProcess | undefined;
  let prefix: string;
  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await t.cleanup();
    await deleteKeys(TEST_REDIS_URL!, prefix);
  });

  it('stores and reads backups with no database reachable', async () => {
    prefix = `svtest-${randomUUID().slice(0, 8)}`;
    const redisEnv = { STORMVAULT_TASKS_BACKEND: 'redis', STORMVAULT_REDIS_URL: TEST_REDIS_URL!, STORMVAULT_REDIS_PREFIX: prefix };
    t = await createTestApp({ env: redisEnv });
    const u = await orgWithUsers(t.app);
    const loc = (await u.asOwner('POST', '/api/v1/backup-locations', { name: 'g', type: 'git', config: { folder: 'repo' } })).json();
    const dev = (await u.asOwner('POST', '/api/v1/network-devices', { name: 'sw1', address: '192.0.2.9', group: 'edge', backup_location_id: loc.id })).json();

    let stderr = '';
    child = spawn(process.execPath, [BIN, 'worker', '--queue', 'storage.git'], {
      env: {
        PATH: process.env.PATH,
        ...redisEnv,
        STORMVAULT_DATA_DIR: path.join(t.dir, 'worker-data'),
        STORMVAULT_BACKUPS_ROOT: t.config.backups.root,
        // Nothing listens here: the worker must never need it.
        STORMVAULT_DATABASE_URL: 'postgres://nobody@127.0.0.1:9/unreachable',
        STORMVAULT_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (d) => (stderr += d));
    let stdout = '';
    const started = new Promise<void>((resolve) =>
      child!.stdout!.on('data', (d) => {
        stdout += d;
        if (stdout.includes('task worker started')) resolve();
      }),
    );
    await Promise.race([started, once(child, 'exit').then(() => Promise.reject(new Error(`worker exited: ${stderr}`)))]);

    expect((await u.asOwner('POST', `/api/v1/network-devices/${dev.id}/backups`, 'hostname sw1\n')).statusCode).toBe(202);
    await t.app.backups.consumers().deviceResults.drain();
    // Wait for the worker's result on storage:results (bounded: 20 s).
    let applied = 0;
    for (let i = 0; i < 400 && applied === 0; i++) {
      applied = await t.app.backups.consumers().storageResults.runOnce();
      if (applied === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(applied).toBe(1);
    const gitDir = path.join(t.config.backups.root, u.orgId, 'repo');
    expect(gitIn(gitDir, 'show', 'main:edge/sw1')).toBe('hostname sw1\n');
    const [b] = (await u.asOwner('GET', `/api/v1/network-devices/${dev.id}/backups`)).json().stored_backups;
    const dl = await u.asMember('GET', `/api/v1/stored-backups/${b.id}/download`);
    expect(dl.statusCode).toBe(200);
    expect(dl.body).toBe('hostname sw1\n');

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/ECONNREFUSED|database/i);
  }, 60_000);
});
