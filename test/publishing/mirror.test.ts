import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MirrorService } from '../../src/modules/publishing/mirror.service.ts';
import type { WriteStep } from '../../src/storage/publish-content-store.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { startS3rver, type S3rverHandle } from './s3rver.ts';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

describe.each(testDialects())(`${MirrorService.name} against s3rver on %s`, (dialect) => {
  let s3: S3rverHandle;
  let t: TestApp;
  let admin: TestUser;
  let bucket: string;
  let onStep: (step: WriteStep) => void = () => {};
  let cdnAnswers = 200;

  beforeAll(async () => {
    s3 = await startS3rver();
    bucket = await s3.newBucket();
    t = await createTestApp({
      dialect,
      env: { STORMVAULT_OUTBOUND_ALLOW: '127.0.0.1', STORMVAULT_PUBLIC_URL: 'https://pub.example.com', STORMVAULT_PUBLISH_UPLOAD_ATTEMPTS: '3', STORMVAULT_PUBLISH_UPLOAD_BACKOFF_MS: '0' },
      appOptions: { publishing: { openBucket: s3.openBucket, onWriteStep: (s) => onStep(s), probeUrl: async () => cdnAnswers } },
    });
    admin = await createUserWithKey(t.app);
    const site = await api('POST', '/api/v1/sites', {
      name: 'app',
      cdn_enabled: true,
      cdn_base_url: `${s3.endpoint}/${bucket}`,
      s3: { endpoint: s3.endpoint, region: 'us-east-1', bucket, prefix: 'pub', access_key_id: 'S3RVER', secret_access_key: 'S3RVER' },
      failover: { failure_threshold: 2, recovery_threshold: 2 },
    });
    expect(site.statusCode, site.body).toBe(201);
  });
  afterAll(async () => {
    await t?.cleanup();
    await s3?.stop();
  });

  const api = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...admin.headers, ...headers }, payload: payload as never });
  const put = (p: string, body: string | Buffer) => api('PUT', `/api/v1/sites/app/content/${p}`, body, { 'content-type': 'application/octet-stream' });
  const meta = async (p: string) => (await api('GET', `/api/v1/sites/app/content/${p}`)).json();

  it('mirrors a write, reads it back, and only then hands out the CDN URL', async () => {
    const res = await put('data/feed.json', '{"items":[1,2,3]}');
    expect(res.statusCode, res.body).toBe(201);
    const m = await meta('data/feed.json');
    expect(m.cdn).toMatchObject({ status: 'verified', sync_verified: true, local_hash: sha('{"items":[1,2,3]}'), cdn_hash: sha('{"items":[1,2,3]}') });
    expect(await s3.getText(bucket, 'pub/data/feed.json')).toBe('{"items":[1,2,3]}');
    const url = (await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json();
    expect(url).toMatchObject({ source: 'cdn', url: `${s3.endpoint}/${bucket}/pub/data/feed.json` });
    const log = await t.app.db.selectFrom('publish_log').selectAll().where('path', '=', 'data/feed.json').execute();
    expect(log.at(-1)).toMatchObject({ action: 'upload', status: 'verified', local_hash: sha('{"items":[1,2,3]}'), cdn_hash: sha('{"items":[1,2,3]}'), sync_verified: 1 });
  });

  it('uploads the bytes on disk, not the caller’s buffer (mutated after staging)', async () => {
    const body = Buffer.from('{"original":true}');
    onStep = (step) => {
      if (step === 'staged') body.fill(0x20); // what the caller still holds changes; the disk has the original
    };
    try {
      const site = (await t.app.publishing.sites.findPublic('app'))!;
      await t.app.publishing.content.write(site, 'data/disk.json', Readable.from([body]));
    } finally {
      onStep = () => {};
    }
    expect(await s3.getText(bucket, 'pub/data/disk.json')).toBe('{"original":true}');
    expect((await meta('data/disk.json')).cdn.sync_verified).toBe(true);
  });

  it('uploads a large file as a multipart upload and verifies it', async () => {
    const big = Buffer.alloc(20 * 1024 * 1024 + 123, 7); // above the 16 MiB threshold: three parts
    s3.wire.gets.length = 0;
    const res = await put('media/big.bin', big);
    expect(res.statusCode, res.body).toBe(201);
    expect((await meta('media/big.bin')).cdn).toMatchObject({ sync_verified: true, cdn_hash: sha(big) });
    expect(s3.wire.gets).toEqual(['pub/media/big.bin']); // read back whole, as every upload
  });

  it('sends the index sha256 as x-amz-checksum-sha256 with the PUT, then reads the object back', async () => {
    s3.wire.gets.length = 0;
    const res = await put('data/quick.json', '{"quick":true}');
    expect(res.statusCode, res.body).toBe(201);
    expect((await meta('data/quick.json')).cdn).toMatchObject({ status: 'verified', sync_verified: true, cdn_hash: sha('{"quick":true}') });
    expect(s3.wire.putChecksums.get('pub/data/quick.json')).toBe(createHash('sha256').update('{"quick":true}').digest('base64'));
    expect(s3.wire.gets).toEqual(['pub/data/quick.json']);
    const log = await t.app.db.selectFrom('publish_log').selectAll().where('path', '=', 'data/quick.json').orderBy('id').execute();
    expect(log.map((l) => `${l.action}:${l.status}`)).toEqual(['upload:verified']);
  });

  it('does not verify a body changed on the way to the server: the read-back finds it, the retry fixes it', async () => {
    let corrupted = 0;
    s3.wire.corruptPut = (key) => key === 'pub/data/wire.json' && corrupted++ === 0; // the first PUT only
    s3.wire.gets.length = 0;
    try {
      const res = await put('data/wire.json', '{"wire":1}');
      expect(res.statusCode, res.body).toBe(201);
    } finally {
      s3.wire.corruptPut = null;
    }
    expect(corrupted).toBeGreaterThanOrEqual(2);
    const log = await t.app.db.selectFrom('publish_log').selectAll().where('path', '=', 'data/wire.json').orderBy('id').execute();
    expect(log.map((l) => `${l.action}:${l.status}`)).toEqual(['upload:mismatch', 'upload:error', 'upload:verified']);
    expect(log[0]!.cdn_hash).not.toBe(sha('{"wire":1}'));
    expect(await s3.getText(bucket, 'pub/data/wire.json')).toBe('{"wire":1}');
    expect((await meta('data/wire.json')).cdn).toMatchObject({ sync_verified: true, attempts: 2 });
  });

  it('s3rver (the test server) ignores a wrong x-amz-checksum-sha256 and Content-MD5: there only the read-back catches a changed body', async () => {
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const body = Buffer.from('checked?');
    const other = (alg: string) => createHash(alg).update('something else').digest('base64');
    const md5 = createHash('md5').update(body).digest('hex');
    for (const extra of [{ ChecksumSHA256: other('sha256') }, { ContentMD5: other('md5') }]) {
      const out = await s3.raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'probe/checksum', Body: body, ContentLength: body.length, ...extra }));
      expect(out.ETag).toBe(`"${md5}"`); // accepted as sent
    }
    await s3.deleteRaw(bucket, 'probe/checksum');
  });

  it('switches URLs with local_fallback_mode and back', async () => {
    await api('PATCH', '/api/v1/sites/app', { local_fallback_mode: true });
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json()).toMatchObject({ source: 'local', url: 'https://pub.example.com/p/app/data/feed.json' });
    const manifest = (await api('GET', '/api/v1/sites/app/manifest')).json();
    expect(manifest.mode).toBe('local');
    expect(manifest.files.every((f: { source: string }) => f.source === 'local')).toBe(true);
    await api('PATCH', '/api/v1/sites/app', { local_fallback_mode: false });
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json().source).toBe('cdn');
  });

  it('finds an object corrupted behind its back, points at local, re-uploads and alerts', async () => {
    await s3.putRaw(bucket, 'pub/data/feed.json', 'tampered');
    await api('PATCH', '/api/v1/sites/app', { health: { sample_size: 1000 } });
    const report = (await api('POST', '/api/v1/sites/app/health-check')).json();
    expect(report.mirrorMismatch).toEqual(['data/feed.json']);
    // The re-upload ran (immediate task backend) and verified again.
    expect(await s3.getText(bucket, 'pub/data/feed.json')).toBe('{"items":[1,2,3]}');
    expect((await meta('data/feed.json')).cdn.sync_verified).toBe(true);
    const alerts = (await api('GET', '/api/v1/alerts')).json().alerts;
    expect(alerts.filter((a: { kind: string; status: string }) => a.kind === 'publish.mirror_mismatch' && a.status === 'open')).toHaveLength(1);
    const log = await t.app.db.selectFrom('publish_log').select(['action', 'status']).where('path', '=', 'data/feed.json').orderBy('id').execute();
    expect(log.map((l) => `${l.action}:${l.status}`)).toEqual(expect.arrayContaining(['health:mismatch', 'upload:verified']));
    // The next clean check resolves it.
    await api('POST', '/api/v1/sites/app/health-check');
    const after = (await api('GET', '/api/v1/alerts?status=resolved')).json().alerts;
    expect(after.some((a: { kind: string }) => a.kind === 'publish.mirror_mismatch')).toBe(true);
  });

  it('fails over to local after N failed checks, and back only after M healthy ones; a pin wins', async () => {
    cdnAnswers = 503;
    const first = (await api('POST', '/api/v1/sites/app/health-check')).json();
    expect(first).toMatchObject({ cdnHealthy: false, failover: { state: 'cdn', switched: false } });
    const second = (await api('POST', '/api/v1/sites/app/health-check')).json();
    expect(second.failover).toEqual({ state: 'local', switched: true });
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json().source).toBe('local');
    expect((await api('GET', '/api/v1/alerts?status=open&kind=publish.cdn_failover')).json().alerts).toHaveLength(1);
    cdnAnswers = 200;
    expect((await api('POST', '/api/v1/sites/app/health-check')).json().failover).toEqual({ state: 'local', switched: false });
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json().source).toBe('local'); // hysteresis
    expect((await api('POST', '/api/v1/sites/app/health-check')).json().failover).toEqual({ state: 'cdn', switched: true });
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json().source).toBe('cdn');
    expect((await api('GET', '/api/v1/alerts?status=open&kind=publish.cdn_failover')).json().alerts).toHaveLength(0);
    // Pinned to local, healthy checks change nothing; pinned to the CDN, failing ones do not either.
    await api('PATCH', '/api/v1/sites/app', { failover: { pin: 'local' } });
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json().source).toBe('local');
    await api('PATCH', '/api/v1/sites/app', { failover: { pin: 'cdn' } });
    cdnAnswers = 503;
    await api('POST', '/api/v1/sites/app/health-check');
    await api('POST', '/api/v1/sites/app/health-check');
    expect((await api('GET', '/api/v1/sites/app/url?path=data/feed.json')).json().source).toBe('cdn');
    cdnAnswers = 200;
    await api('PATCH', '/api/v1/sites/app', { failover: { pin: 'auto' } });
    await api('POST', '/api/v1/sites/app/health-check');
    await api('POST', '/api/v1/sites/app/health-check');
  });

  it('removes bucket objects, files, .prev and empty parents on delete', async () => {
    await put('old/a/one.txt', '1');
    await put('old/a/one.txt', '1b');
    await put('old/two.txt', '2');
    expect(await s3.getText(bucket, 'pub/old/a/one.txt')).toBe('1b');
    expect((await api('DELETE', '/api/v1/sites/app/content/old/a/one.txt')).statusCode).toBe(204);
    expect(await s3.getText(bucket, 'pub/old/a/one.txt')).toBeNull();
    expect((await api('DELETE', '/api/v1/sites/app/content/old?recursive=true')).statusCode).toBe(204);
    expect(await s3.getText(bucket, 'pub/old/two.txt')).toBeNull();
    const rows = await t.app.db.selectFrom('published_files').select('path').where('path', 'like', 'old/%').execute();
    expect(rows).toEqual([]);
  });

  it('dead-letters an upload after its attempts when the bucket is down, and alerts once', async () => {
    const down = await api('POST', '/api/v1/sites', {
      name: 'down',
      s3: { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'nowhere', access_key_id: 'S3RVER', secret_access_key: 'S3RVER' },
    });
    expect(down.statusCode, down.body).toBe(201);
    for (const p of ['a.txt', 'b.txt']) {
      const res = await api('PUT', `/api/v1/sites/down/content/${p}`, 'x', { 'content-type': 'text/plain' });
      expect(res.statusCode).toBe(201); // the local write stands whatever the bucket does
    }
    const m = (await api('GET', '/api/v1/sites/down/content/a.txt')).json();
    expect(m.cdn).toMatchObject({ status: 'dead_letter', sync_verified: false, attempts: 3 });
    expect(m.cdn.last_error).toBeTruthy();
    const dead = await t.app.tasks.deadLetters();
    expect(dead.filter((d) => d.taskName === 'publish.upload').length).toBeGreaterThanOrEqual(2);
    const alerts = (await api('GET', '/api/v1/alerts?kind=publish.mirror_dead_letter')).json().alerts;
    expect(alerts).toHaveLength(1);
    expect(alerts[0].occurrences).toBe(2);
    expect((await api('GET', '/api/v1/sites/down/url?path=a.txt')).json().source).toBe('local');
  });
});
