import { randomUUID } from 'node:crypto';
import { readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { INDEX_GROUP } from '../../src/modules/backups/backups-pipeline.ts';
import { STORAGE_RESULTS_STREAM, type StorageResult } from '../../src/storage/backup-plugins/storage-tasks.ts';
import type { StreamEntry } from '../../src/streams/stream.port.ts';
import { redisAvailable, testDialects, TEST_REDIS_URL } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable } from '../storage/git-helpers.ts';
import { deleteKeys } from '../tasks/redis.fixture.ts';
import { drainPipeline, orgWithUsers } from './helpers.ts';

type Users = Awaited<ReturnType<typeof orgWithUsers>>;

async function locationAndDevice(u: Users, type: 'git' | 'fs', name = 'r1') {
  const loc = await u.asOwner('POST', '/api/v1/backup-locations', { name: `${type}-loc-${name}`, type, config: { folder: `${type}-${name}` } });
  expect(loc.statusCode).toBe(201);
  const dev = await u.asOwner('POST', '/api/v1/network-devices', { name, address: '192.0.2.1', backup_location_id: loc.json().id });
  expect(dev.statusCode).toBe(201);
  return { locationId: loc.json().id as string, deviceId: dev.json().id as string };
}

const rows = async (u: Users, deviceId: string) => (await u.asOwner('GET', `/api/v1/network-devices/${deviceId}/backups?limit=500`)).json().stored_backups as any[];

describe.runIf(gitAvailable()).each(testDialects())('backups pipeline on %s (database streams)', (dialect) => {
  let t: TestApp;
  let extra: TestApp | undefined;
  afterEach(async () => {
    await t.cleanup();
    await extra?.cleanup();
    extra = undefined;
  });

  it('the fs backend stores versions as files through the BlobStore, unchanged content writes nothing', async () => {
    t = await createTestApp({ dialect });
    const u = await orgWithUsers(t.app);
    const { deviceId } = await locationAndDevice(u, 'fs');
    for (const c of ['v1\n', 'v1\n', 'v2\n']) await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, c);
    await drainPipeline(t.app);
    const history = await rows(u, deviceId);
    expect(history).toHaveLength(2);
    const folder = path.join(t.config.backups.root, u.orgId, 'fs-r1', 'default', 'r1');
    const files = (await readdir(folder)).sort();
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(/^\d{8}T\d{6}\.\d{3}Z\.cfg$/);
    expect(await readFile(path.join(folder, files[1]!), 'utf8')).toBe('v2\n');
    expect(history[0].storage_ref).toBe(`default/r1/${files[1]}`);
    const dl = await u.asMember('GET', `/api/v1/stored-backups/${history[1].id}/download`);
    expect(dl.body).toBe('v1\n');
    const diff = await u.asMember('GET', `/api/v1/stored-backups/${history[0].id}/diff`);
    expect(diff.body).toContain('-v1');
    expect(diff.body).toContain('+v2');
  });

  it('daily maintenance prunes fs versions beyond keep_versions (files and rows) and runs git maintenance', async () => {
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    t = await createTestApp({ dialect, clock });
    const u = await orgWithUsers(t.app);
    const loc = (await u.asOwner('POST', '/api/v1/backup-locations', { name: 'fs', type: 'fs', config: { folder: 'pruned', keep_versions: 2 } })).json();
    const dev = (await u.asOwner('POST', '/api/v1/network-devices', { name: 'r1', address: 'x', backup_location_id: loc.id })).json();
    const { deviceId: gitDevice } = await locationAndDevice(u, 'git', 'r2');
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      await u.asOwner('POST', `/api/v1/network-devices/${dev.id}/backups`, `v${i}\n`);
      await u.asOwner('POST', `/api/v1/network-devices/${gitDevice}/backups`, `v${i}\n`);
    }
    await drainPipeline(t.app);
    expect(await rows(u, dev.id)).toHaveLength(4);
    const done = await t.app.tasks.enqueue('backups.maintenance', null);
    expect(done.status).toBe('SUCCESSFUL');
    await t.app.backups.consumers().storageResults.drain();
    const left = await rows(u, dev.id);
    expect(left.map((b) => b.storage_ref)).toHaveLength(2);
    const files = (await readdir(path.join(t.config.backups.root, u.orgId, 'pruned', 'default', 'r1'))).sort();
    expect(left.map((b) => b.storage_ref.split('/')[2]).sort()).toEqual(files);
    expect((await u.asOwner('GET', `/api/v1/stored-backups/${left[0].id}/download`)).body).toBe('v3\n');
    expect(await rows(u, gitDevice)).toHaveLength(4); // git keeps every version
  });

  it('a storage result delivered twice gives one row and one status change', async () => {
    t = await createTestApp({ dialect });
    const u = await orgWithUsers(t.app);
    const { deviceId } = await locationAndDevice(u, 'git');
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\n');
    const c = t.app.backups.consumers();
    await c.deviceResults.drain(); // the immediate tasks backend stores inline: storage:results has the entry
    // Peek at the entry through a separate group and append it again: a duplicate delivery.
    await t.app.streams.createGroup(STORAGE_RESULTS_STREAM, 'probe');
    const [entry] = await t.app.streams.read(STORAGE_RESULTS_STREAM, 'probe', 'p');
    expect((entry!.payload as any).changed).toBe(true);
    await t.app.streams.append(STORAGE_RESULTS_STREAM, entry!.payload);
    // …and a failed result delivered twice counts one failure.
    const failed = { ...(entry!.payload as any), task_identifier: randomUUID(), storage_ref: null, sha256: null, size: null, changed: false, error: 'disk on fire' };
    await t.app.streams.append(STORAGE_RESULTS_STREAM, failed);
    await t.app.streams.append(STORAGE_RESULTS_STREAM, failed);
    expect(await c.storageResults.drain()).toBe(4);
    expect(await rows(u, deviceId)).toHaveLength(1);
    const d = (await u.asOwner('GET', `/api/v1/network-devices/${deviceId}`)).json();
    expect(d).toMatchObject({ last_status: 'failed', last_error: 'disk on fire', consecutive_failures: 1 });
    // A success afterwards resets the count.
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\nv2\n');
    await drainPipeline(t.app);
    expect((await u.asOwner('GET', `/api/v1/network-devices/${deviceId}`)).json()).toMatchObject({ last_status: 'success', consecutive_failures: 0 });
  });

  it('a consumer killed after its write and before its ack: the re-delivery changes nothing', async () => {
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    t = await createTestApp({ dialect, clock });
    const u = await orgWithUsers(t.app);
    const { deviceId } = await locationAndDevice(u, 'git');
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\n');
    const c = t.app.backups.consumers();
    await c.deviceResults.drain();
    // The doomed consumer: reads from the index group and writes, then "dies" without acknowledging.
    await t.app.streams.createGroup(STORAGE_RESULTS_STREAM, INDEX_GROUP);
    const entries = await t.app.streams.read(STORAGE_RESULTS_STREAM, INDEX_GROUP, 'doomed');
    expect(entries).toHaveLength(1);
    await t.app.backups.pipeline.handleStorageResult(entries[0] as unknown as StreamEntry<StorageResult>);
    expect(await rows(u, deviceId)).toHaveLength(1);
    expect(await c.storageResults.drain()).toBe(0); // still claimed by the dead consumer
    clock.advance(t.config.backups.streamClaimTimeoutMs + 1);
    expect(await c.storageResults.drain()).toBe(1); // re-delivered to the live one, applied as a no-op
    expect(await t.app.streams.pendingCount(STORAGE_RESULTS_STREAM, INDEX_GROUP)).toBe(0);
    expect(await rows(u, deviceId)).toHaveLength(1);
  });

  it('several consumers of one group never write a row twice', async () => {
    t = await createTestApp({ dialect });
    const u = await orgWithUsers(t.app);
    const { deviceId } = await locationAndDevice(u, 'git');
    for (let i = 0; i < 8; i++) await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, `hostname r1\nv${i}\n`);
    await t.app.backups.consumers().deviceResults.drain();
    const p = t.app.backups.pipeline;
    const consumers = [p.storageResultsConsumer('a'), p.storageResultsConsumer('b'), p.storageResultsConsumer('c')];
    const handled = await Promise.all(consumers.map((c) => c.drain()));
    expect(handled.reduce((a, b) => a + b, 0)).toBe(8);
    expect(await rows(u, deviceId)).toHaveLength(8);
  });

  it('download answers 504 storage_worker_unavailable when no storage worker reads in time; diffs read locally when the repository is here', async () => {
    t = await createTestApp({ dialect, env: { STORMVAULT_TASKS_BACKEND: 'database', STORMVAULT_BACKUPS_READ_TIMEOUT: '1', STORMVAULT_TASKS_POLL_MS: '20' } });
    const u = await orgWithUsers(t.app);
    const { deviceId } = await locationAndDevice(u, 'git');
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\n');
    const worker = t.app.tasks.createWorker({ queues: ['storage.git'] });
    await drainPipeline(t.app, () => worker.drain());
    const [b] = await rows(u, deviceId);
    const r = await u.asMember('GET', `/api/v1/stored-backups/${b.id}/download`);
    expect(r.statusCode).toBe(504);
    expect(r.json().error.code).toBe('storage_worker_unavailable');
    // The abandoned read was cancelled, so a worker starting later does not do it for nobody.
    const reads = await t.app.tasks.list({ taskName: 'storage.read.git' });
    expect(reads.map((x) => [x.status, x.cancelled])).toEqual([['FAILED', true]]);
    // Diffs read in this process when the repository is on this host: no worker needed, no task queued.
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\nbanner two\n');
    await drainPipeline(t.app, () => worker.drain());
    const [b2] = await rows(u, deviceId);
    const diff = await u.asMember('GET', `/api/v1/stored-backups/${b2.id}/diff?against=previous`);
    expect([diff.statusCode, diff.body.includes('+banner two')]).toEqual([200, true]);
    expect(await t.app.tasks.list({ taskName: 'storage.read.git' })).toHaveLength(1);
    // A repository that is not on this host (storage workers elsewhere): the diff asks a worker, and none answers.
    const gitDir = path.join(t.config.backups.root, u.orgId, 'git-r1');
    await rename(gitDir, `${gitDir}.elsewhere`);
    const remote = await u.asMember('GET', `/api/v1/stored-backups/${b2.id}/diff?against=previous`);
    expect([remote.statusCode, remote.json().error.code]).toEqual([504, 'storage_worker_unavailable']);
    await rename(`${gitDir}.elsewhere`, gitDir);
    await worker.start();
    const ok = await u.asMember('GET', `/api/v1/stored-backups/${b.id}/download`);
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('hostname r1\n');
    await worker.stop();
  });
});

describe.runIf(gitAvailable() && redisAvailable())('backups pipeline with the redis tasks backend and Redis Streams', () => {
  let t: TestApp;
  let prefix: string;
  afterEach(async () => {
    await t.cleanup();
    await deleteKeys(TEST_REDIS_URL!, prefix);
  });

  const redisApp = async () => {
    prefix = `svtest-${randomUUID().slice(0, 8)}`;
    t = await createTestApp({
      env: { STORMVAULT_TASKS_BACKEND: 'redis', STORMVAULT_REDIS_URL: TEST_REDIS_URL!, STORMVAULT_REDIS_PREFIX: prefix, STORMVAULT_STREAMS_CLAIM_TIMEOUT_MS: '150' },
    });
    expect(t.app.streams.kind).toBe('redis');
    return orgWithUsers(t.app);
  };

  /** Device results → storage worker (BullMQ) → storage results, awaiting the workers' finished events. */
  const settle = async (expected: number) => {
    const finished = new Promise<void>((resolve) => {
      let n = 0;
      const off = t.app.tasks.on('finished', () => {
        if (++n >= expected) {
          off();
          resolve();
        }
      });
    });
    await t.app.backups.consumers().deviceResults.drain();
    await finished;
    await t.app.backups.consumers().storageResults.drain();
  };

  it('push → Redis Streams → BullMQ storage worker → git → index → download and diff', async () => {
    const u = await redisApp();
    const worker = await t.app.tasks.startWorker({ queues: ['storage.git'] });
    const { deviceId } = await locationAndDevice(u, 'git');
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\nv1\n');
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\nv2\n');
    await settle(2);
    const history = await rows(u, deviceId);
    expect(history).toHaveLength(2);
    expect((await u.asMember('GET', `/api/v1/stored-backups/${history[1].id}/download`)).body).toBe('hostname r1\nv1\n');
    expect((await u.asMember('GET', `/api/v1/stored-backups/${history[0].id}/diff`)).body).toContain('+v2');
    await worker.stop();
  });

  it('kill before ack and duplicate delivery on Redis Streams still give one row', async () => {
    const u = await redisApp();
    const worker = await t.app.tasks.startWorker({ queues: ['storage.git'] });
    const { deviceId } = await locationAndDevice(u, 'git');
    await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, 'hostname r1\n');
    const finished = new Promise<void>((resolve) => {
      const off = t.app.tasks.on('finished', () => (off(), resolve()));
    });
    await t.app.backups.consumers().deviceResults.drain();
    await finished;
    await t.app.streams.createGroup(STORAGE_RESULTS_STREAM, INDEX_GROUP);
    const [entry] = await t.app.streams.read(STORAGE_RESULTS_STREAM, INDEX_GROUP, 'doomed');
    await t.app.backups.pipeline.handleStorageResult(entry as unknown as StreamEntry<StorageResult>);
    await t.app.streams.append(STORAGE_RESULTS_STREAM, entry!.payload); // and a duplicate
    const c = t.app.backups.consumers().storageResults;
    expect(await c.drain()).toBe(1); // the duplicate; the dead consumer's entry is not yet idle long enough
    // XAUTOCLAIM counts idle time on Redis's clock: wait until the entry is claimable (bounded).
    let claimed = 0;
    for (let i = 0; i < 50 && claimed === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      claimed = await c.runOnce();
    }
    expect(claimed).toBe(1);
    expect(await t.app.streams.pendingCount(STORAGE_RESULTS_STREAM, INDEX_GROUP)).toBe(0);
    expect(await rows(u, deviceId)).toHaveLength(1);
    await worker.stop();
  });
});
