import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../src/tasks/task-result.ts';
import { orgWithUsers } from '../backups/helpers.ts';
import { redisAvailable, testDialects, TEST_REDIS_URL } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable } from '../storage/git-helpers.ts';
import { deleteKeys } from '../tasks/redis.fixture.ts';
import { startFakeDevice, type Behaviour, type FakeDevice } from './fake-device.ts';
import { FIXTURES } from './transcripts.ts';

type Backend = { name: string; env: () => Record<string, string>; cleanup?: () => Promise<void> };

const backends = (): Array<[string, Backend]> => {
  const list: Array<[string, Backend]> = testDialects().map((dialect) => [`database tasks on ${dialect}`, { name: dialect, env: () => ({ STORMVAULT_TASKS_BACKEND: 'database', STORMVAULT_TASKS_POLL_MS: '20' }) }]);
  if (redisAvailable()) {
    let prefix = '';
    list.push([
      'redis tasks and Redis Streams',
      {
        name: 'sqlite',
        env: () => ({ STORMVAULT_TASKS_BACKEND: 'redis', STORMVAULT_REDIS_URL: TEST_REDIS_URL!, STORMVAULT_REDIS_PREFIX: (prefix = `svtest-${randomUUID().slice(0, 8)}`) }),
        cleanup: () => deleteKeys(TEST_REDIS_URL!, prefix),
      },
    ]);
  }
  return list;
};

/**
 * The collect queue with real workers (issue 10): backup-now enqueues, a `collect` worker logs in over
 * SSH, the outcome goes through device:results to a storage worker and into the index.
 */
describe.runIf(gitAvailable()).each(backends())('collect worker with %s', (_, backend) => {
  let t: TestApp;
  const devices: FakeDevice[] = [];
  afterEach(async () => {
    await Promise.all(devices.splice(0).map((d) => d.close()));
    await t.cleanup();
    await backend.cleanup?.();
  });

  it('a hung device fails at its device timeout while the only worker slot goes on to the next device', async () => {
    t = await createTestApp({
      dialect: backend.name as 'sqlite',
      env: { ...backend.env(), STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS: '60000', STORMVAULT_COLLECT_DEVICE_TIMEOUT_MS: '1500', STORMVAULT_COLLECT_ATTEMPTS: '1' },
    });
    const u = await orgWithUsers(t.app);
    const loc = (await u.asOwner('POST', '/api/v1/backup-locations', { name: 'git', type: 'git', config: { folder: 'repo' } })).json();
    const cred = (await u.asOwner('POST', '/api/v1/credentials', { name: 'ops', username: 'backup', password: 'pw' })).json();
    const add = async (name: string, behaviour: Behaviour) => {
      const d = await startFakeDevice({ transcript: FIXTURES['arista-eos']!.transcript, behaviour });
      devices.push(d);
      const res = await u.asOwner('POST', '/api/v1/network-devices', { name, address: '127.0.0.1', port: d.port, model: 'arista-eos', credential_id: cred.id, backup_location_id: loc.id });
      expect(res.statusCode, res.body).toBe(201);
      return res.json().id as string;
    };
    const hung = await add('hung', 'hang');
    const good = await add('good', 'normal');
    const collector = await t.app.tasks.startWorker({ queues: ['collect'], concurrency: 1 });
    const storage = await t.app.tasks.startWorker({ queues: ['storage.git'] });
    const consumers = t.app.backups.consumers();
    consumers.deviceResults.start();
    consumers.storageResults.start();
    try {
      const ids: string[] = [];
      for (const id of [hung, good]) {
        const res = await u.asOwner('POST', `/api/v1/network-devices/${id}/backup-now`);
        expect(res.statusCode).toBe(202);
        ids.push(res.json().task_id);
      }
      const results: TaskResult[] = [];
      for (const id of ids) results.push(await (await t.app.tasks.getResult(id)).wait({ timeoutMs: 30_000 }));
      expect(results[0]!.returnValue).toMatchObject({ ok: false, stage: 'timeout', code: 'timeout' });
      expect((results[0]!.returnValue as { message: string }).message).toMatch(/device did not finish within 1500 ms/);
      expect(results[1]!.returnValue).toMatchObject({ ok: true });
      // The good device's version reaches the index through both streams and the storage worker.
      const status = async (id: string) => (await u.asOwner('GET', `/api/v1/network-devices/${id}`)).json();
      await until(async () => (await status(good)).last_status === 'success' && (await status(hung)).last_status === 'failed');
      expect((await u.asOwner('GET', `/api/v1/network-devices/${good}/backups`)).json().stored_backups).toHaveLength(1);
      expect((await u.asOwner('GET', `/api/v1/network-devices/${hung}/backups`)).json().stored_backups).toHaveLength(0);
      expect((await status(hung)).last_error).toMatch(/^timeout: device did not finish/);
    } finally {
      await collector.stop();
      await storage.stop();
    }
  }, 60_000);
});

/** Polls a condition the consumers' background loops make true (no event to await across two streams). */
async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
