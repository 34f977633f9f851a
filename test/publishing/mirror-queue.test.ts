import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { PublishHealthService } from '../../src/modules/publishing/publish-health.service.ts';
import type { TaskWorker } from '../../src/tasks/framework.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { startS3rver, type S3rverHandle } from './s3rver.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe.each(testDialects())(`publish.cdn queue and ${PublishHealthService.name} schedule on %s (database task backend, driven clock)`, (dialect) => {
  let s3: S3rverHandle;
  let t: TestApp;
  let admin: TestUser;
  let bucket: string;
  let worker: TaskWorker;
  // Thursday 15 January 2026, 05:00 UTC = 06:00 in Berlin.
  const clock = new ManualClock(Date.UTC(2026, 0, 15, 5, 0));

  beforeAll(async () => {
    s3 = await startS3rver();
    bucket = await s3.newBucket();
    t = await createTestApp({
      dialect,
      clock,
      env: { STORMVAULT_OUTBOUND_ALLOW: '127.0.0.1', STORMVAULT_TASKS_BACKEND: 'database', STORMVAULT_PUBLISH_UPLOAD_BACKOFF_MS: '0' },
      appOptions: { publishing: { openBucket: s3.openBucket, probeUrl: async () => 200 } },
    });
    admin = await createUserWithKey(t.app);
    const res = await api('POST', '/api/v1/sites', {
      name: 'queue',
      cdn_enabled: true,
      cdn_base_url: `${s3.endpoint}/${bucket}`,
      s3: { endpoint: s3.endpoint, bucket, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' },
      health: { business_hours: '08:00-18:00', time_zone: 'Europe/Berlin' },
    });
    expect(res.statusCode, res.body).toBe(201);
    worker = t.app.tasks.createWorker({ queues: ['publish.cdn'] });
  });
  afterAll(async () => {
    await worker?.stop();
    await t?.cleanup();
    await s3?.stop();
  });

  const api = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...admin.headers, ...headers }, payload: payload as never });
  const put = (p: string, body: string) => api('PUT', `/api/v1/sites/queue/content/${p}`, body, { 'content-type': 'text/plain' });

  it('a newer local version supersedes a pending upload of an older one: only the newest reaches the bucket', async () => {
    await put('feed.txt', 'v1');
    await put('feed.txt', 'v2');
    const pending = (await api('GET', '/api/v1/sites/queue/content/feed.txt')).json();
    expect(pending.cdn).toMatchObject({ status: 'pending', sync_verified: false });
    expect((await api('GET', '/api/v1/sites/queue/url?path=feed.txt')).json().source).toBe('local');
    // Two jobs (one may run into the other's lease and retry: one upload per file at a time).
    expect(await worker.drain()).toBeGreaterThanOrEqual(2);
    expect(await s3.getText(bucket, 'feed.txt')).toBe('v2');
    const log = await t.app.db.selectFrom('publish_log').selectAll().where('path', '=', 'feed.txt').orderBy('id').execute();
    // The first job mirrored what was current (v2); the second found it verified and did nothing.
    expect(log.map((l) => [l.action, l.status, l.local_hash])).toEqual([['upload', 'verified', sha('v2')]]);
    expect(log.some((l) => l.local_hash === sha('v1'))).toBe(false);
    expect((await api('GET', '/api/v1/sites/queue/url?path=feed.txt')).json().source).toBe('cdn');
  });

  it('runs the hourly health check only inside the site business hours, by the app clock', async () => {
    const before = await t.app.publishing.health.runScheduled();
    expect(before).toEqual({ checked: [], outsideHours: ['queue'] });
    expect((await api('GET', '/api/v1/sites/queue')).json().health.last_check_at).toBeNull();
    clock.set(Date.UTC(2026, 0, 15, 7, 0)); // 08:00 in Berlin
    const during = await t.app.publishing.health.runScheduled();
    expect(during).toEqual({ checked: ['queue'], outsideHours: [] });
    expect((await api('GET', '/api/v1/sites/queue')).json().health).toMatchObject({ last_check_at: '2026-01-15T07:00:00.000Z', last_check_ok: true });
    clock.set(Date.UTC(2026, 0, 15, 17, 0)); // 18:00 in Berlin: the end is exclusive
    expect((await t.app.publishing.health.runScheduled()).outsideHours).toEqual(['queue']);
    // The schedule itself is registered for the worker.
    expect(t.app.tasks.definitions().map((d) => d.name)).toEqual(expect.arrayContaining(['publish.upload', 'publish.delete', 'publish.health']));
  });

  it('resync re-mirrors every file', async () => {
    await s3.deleteRaw(bucket, 'feed.txt');
    const res = await api('POST', '/api/v1/sites/queue/resync');
    expect(res.json()).toEqual({ queued: 1 });
    expect((await api('GET', '/api/v1/sites/queue/url?path=feed.txt')).json().source).toBe('local');
    await worker.drain();
    expect(await s3.getText(bucket, 'feed.txt')).toBe('v2');
    expect((await api('GET', '/api/v1/sites/queue/url?path=feed.txt')).json().source).toBe('cdn');
  });
});
