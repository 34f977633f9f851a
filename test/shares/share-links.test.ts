import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { sha256Hex } from '../../src/lib/crypto.ts';
import { ShareLinksRepository } from '../../src/modules/shares/share-links.repository.ts';
import { ShareLinksService } from '../../src/modules/shares/share-links.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

describe.each(testDialects())(`${ShareLinksService.name} on %s`, (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  const clock = new ManualClock(Date.UTC(2026, 5, 1));

  beforeAll(async () => {
    t = await createTestApp({ dialect, clock, env: { STORMVAULT_PUBLIC_URL: 'https://vault.example.com', STORMVAULT_LOGIN_MAX_ATTEMPTS: '3' } });
    alice = await createUserWithKey(t.app);
    bob = await createUserWithKey(t.app);
    const put = (p: string, body: string) => t.app.files.put(alice.user.id, p, Readable.from([Buffer.from(body)]));
    await put('docs/report.txt', 'quarterly report');
    await put('album/one.jpg', 'jpeg one');
    await put('album/sub/two.jpg', 'jpeg two');
    await put('private/secret.txt', 'not shared');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const api = (user: TestUser, method: string, url: string, payload?: object) =>
    t.app.http.inject({ method: method as 'GET', url, headers: user.headers, payload: payload as never });
  const visit = (url: string, headers: Record<string, string> = {}) => t.app.http.inject({ method: 'GET', url, headers });
  const share = async (payload: object) => {
    const res = await api(alice, 'POST', '/api/v1/shares', payload);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; token: string; url: string; path: string; download_count: number };
  };
  const tokenPath = (url: string) => new URL(url).pathname;

  it('creates a link with a >=128-bit token stored only as a hash', async () => {
    const link = await share({ path: 'docs/report.txt' });
    expect(link).toMatchObject({ path: 'docs/report.txt', download_count: 0, expires_at: null, has_password: false, status: 'active' });
    expect(Buffer.from(link.token, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    expect(link.url).toBe(`https://vault.example.com/s/${link.token}`);
    const row = await t.app.db.selectFrom('share_links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(sha256Hex(link.token));
    expect(JSON.stringify(row)).not.toContain(link.token);
    const other = await share({ path: 'docs/report.txt' });
    expect(other.token).not.toBe(link.token);
  });

  it('serves a shared file publicly, as an attachment, with Range support', async () => {
    const link = await share({ path: 'docs/report.txt' });
    const res = await visit(tokenPath(link.url));
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('quarterly report');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="report.txt"/);
    expect(res.headers['cache-control']).toBe('no-store');
    const part = await visit(tokenPath(link.url), { range: 'bytes=0-8' });
    expect(part.statusCode).toBe(206);
    expect(part.body).toBe('quarterly');
    const head = await t.app.http.inject({ method: 'HEAD', url: tokenPath(link.url) });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('16');
  });

  it('lists a shared folder and serves files inside it, never outside', async () => {
    const link = await share({ path: 'album' });
    const listing = await visit(`/s/${link.token}`);
    expect(listing.statusCode).toBe(200);
    expect(listing.json()).toMatchObject({ path: '', next_cursor: null });
    expect(listing.json().entries.map((e: { path: string }) => e.path)).toEqual(['one.jpg', 'sub']);
    expect(JSON.stringify(listing.json())).not.toContain('album');
    const sub = await visit(`/s/${link.token}/sub`);
    expect(sub.json().entries.map((e: { path: string }) => e.path)).toEqual(['sub/two.jpg']);
    const file = await visit(`/s/${link.token}/sub/two.jpg`);
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe('jpeg two');
    for (const escape of ['../private/secret.txt', '%2e%2e/private/secret.txt', '..%2fprivate%2fsecret.txt', 'sub/../../private/secret.txt', '%00']) {
      const res = await visit(`/s/${link.token}/${escape}`);
      expect([400, 404], escape).toContain(res.statusCode);
      expect(res.body).not.toContain('not shared');
    }
    expect((await visit(`/s/${link.token}/missing.jpg`)).statusCode).toBe(404);
    // A file link has no inside.
    const fileLink = await share({ path: 'docs/report.txt' });
    expect((await visit(`/s/${fileLink.token}/anything`)).statusCode).toBe(404);
  });

  it('needs X-Share-Password for a protected link: 401 without or wrong, 200 with it', async () => {
    const link = await share({ path: 'docs/report.txt', password: 'open sesame' });
    const row = await t.app.db.selectFrom('share_links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$/);
    const none = await visit(`/s/${link.token}`);
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('unauthorized');
    expect((await visit(`/s/${link.token}`, { 'x-share-password': 'wrong' })).statusCode).toBe(401);
    const ok = await visit(`/s/${link.token}`, { 'x-share-password': 'open sesame' });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('quarterly report');
  });

  it('throttles wrong passwords per link (429 with Retry-After), even with the right one, until the window passes', async () => {
    const link = await share({ path: 'docs/report.txt', password: 'right one' });
    const max = t.config.auth.loginMaxAttempts;
    for (let i = 0; i < max; i++) expect((await visit(`/s/${link.token}`, { 'x-share-password': `wrong ${i}` })).statusCode).toBe(401);
    const blocked = await visit(`/s/${link.token}`, { 'x-share-password': 'right one' });
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    clock.advance(t.config.auth.loginWindowSeconds * 1000 + 1);
    expect((await visit(`/s/${link.token}`, { 'x-share-password': 'right one' })).statusCode).toBe(200);
  });

  it('404 once expired', async () => {
    const link = await share({ path: 'docs/report.txt', expires_at: new Date(clock.now().getTime() + 60_000).toISOString() });
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(200);
    clock.advance(60_000);
    const res = await visit(`/s/${link.token}`);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
    const listed = (await api(alice, 'GET', '/api/v1/shares')).json().shares.find((s: { id: string }) => s.id === link.id);
    expect(listed.status).toBe('expired');
  });

  it('404 once max_downloads is used up (HEAD does not count)', async () => {
    const link = await share({ path: 'docs/report.txt', max_downloads: 2 });
    await t.app.http.inject({ method: 'HEAD', url: `/s/${link.token}` });
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(200);
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(200);
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(404);
    const row = await t.app.db.selectFrom('share_links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
    expect(row.download_count).toBe(2);
  });

  it('only delivered downloads count: a 304 or a 416 spends nothing (issue 12)', async () => {
    const link = await share({ path: 'docs/report.txt', max_downloads: 2 });
    const etag = (await t.app.http.inject({ method: 'HEAD', url: `/s/${link.token}` })).headers.etag as string;
    for (let i = 0; i < 3; i++) {
      expect((await visit(`/s/${link.token}`, { 'if-none-match': etag })).statusCode).toBe(304);
      expect((await visit(`/s/${link.token}`, { range: 'bytes=500-600' })).statusCode).toBe(416);
    }
    const spent = async () => (await t.app.db.selectFrom('share_links').select('download_count').where('id', '=', link.id).executeTakeFirstOrThrow()).download_count;
    expect(await spent()).toBe(0);
    expect((await visit(`/s/${link.token}`, { range: 'bytes=0-8' })).statusCode).toBe(206);
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(200);
    expect(await spent()).toBe(2);
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(404);
  });

  it('consumeDownload is scoped to the link owner', async () => {
    const link = await share({ path: 'docs/report.txt', max_downloads: 5 });
    const repo = new ShareLinksRepository(t.app.db);
    const now = clock.now().toISOString();
    expect(await repo.consumeDownload(bob.user.id, link.id, now)).toBe(false);
    expect(await repo.consumeDownload(alice.user.id, link.id, now)).toBe(true);
    const row = await t.app.db.selectFrom('share_links').select('download_count').where('id', '=', link.id).executeTakeFirstOrThrow();
    expect(row.download_count).toBe(1);
  });

  it('concurrent downloads never overrun max_downloads', async () => {
    const link = await share({ path: 'docs/report.txt', max_downloads: 3 });
    const results = await Promise.all(Array.from({ length: 10 }, () => visit(`/s/${link.token}`)));
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(3);
    expect(results.filter((r) => r.statusCode === 404)).toHaveLength(7);
  });

  it('revokes: 204, then the link is 404; only the owner can revoke', async () => {
    const link = await share({ path: 'docs/report.txt' });
    expect((await api(bob, 'DELETE', `/api/v1/shares/${link.id}`)).statusCode).toBe(404);
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(200);
    expect((await api(alice, 'DELETE', `/api/v1/shares/${link.id}`)).statusCode).toBe(204);
    expect((await visit(`/s/${link.token}`)).statusCode).toBe(404);
    expect((await api(alice, 'DELETE', `/api/v1/shares/${link.id}`)).statusCode).toBe(404);
  });

  it('lists only your own links, without tokens', async () => {
    const mine = await share({ path: 'album' });
    const list = (await api(alice, 'GET', '/api/v1/shares')).json().shares as Array<{ id: string }>;
    expect(list.some((s) => s.id === mine.id)).toBe(true);
    expect(JSON.stringify(list)).not.toContain(mine.token);
    expect((await api(bob, 'GET', '/api/v1/shares')).json().shares).toEqual([]);
  });

  it('a link survives a move of its file or of a parent folder, and dies with a delete', async () => {
    await t.app.files.put(alice.user.id, 'moving/box/item.txt', Readable.from([Buffer.from('item')]));
    const fileLink = await share({ path: 'moving/box/item.txt' });
    const folderLink = await share({ path: 'moving/box' });
    expect((await api(alice, 'POST', '/api/v1/move', { from: 'moving/box', to: 'moved/crate' })).statusCode).toBe(200);
    expect((await visit(`/s/${fileLink.token}`)).body).toBe('item');
    expect((await visit(`/s/${folderLink.token}/item.txt`)).body).toBe('item');
    const listed = (await api(alice, 'GET', '/api/v1/shares')).json().shares.find((s: { id: string }) => s.id === fileLink.id);
    expect(listed.path).toBe('moved/crate/item.txt');
    // Replacing the file's content keeps the link too (same index row).
    await t.app.http.inject({ method: 'PUT', url: '/api/v1/files/moved/crate/item.txt', headers: alice.headers, payload: 'item v2' });
    expect((await visit(`/s/${fileLink.token}`)).body).toBe('item v2');
    expect((await api(alice, 'DELETE', '/api/v1/files/moved?recursive=true')).statusCode).toBe(204);
    expect((await visit(`/s/${fileLink.token}`)).statusCode).toBe(404);
    expect((await visit(`/s/${folderLink.token}`)).statusCode).toBe(404);
  });

  it('rejects bad input with 400 and changes nothing', async () => {
    const count = async () => (await t.app.db.selectFrom('share_links').select('id').execute()).length;
    const before = await count();
    for (const payload of [
      {},
      { path: '../etc' },
      { path: '' },
      { path: 'docs/report.txt', expires_at: 'tomorrow' },
      { path: 'docs/report.txt', expires_at: '2020-01-01T00:00:00Z' },
      { path: 'docs/report.txt', max_downloads: 0 },
      { path: 'docs/report.txt', max_downloads: 1.5 },
      { path: 'docs/report.txt', password: '' },
      { path: 'docs/report.txt', extra: true },
    ]) {
      const res = await api(alice, 'POST', '/api/v1/shares', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    expect((await api(alice, 'POST', '/api/v1/shares', { path: 'docs/missing.txt' })).statusCode).toBe(404);
    expect((await api(bob, 'POST', '/api/v1/shares', { path: 'docs/report.txt' })).statusCode).toBe(404);
    expect((await t.app.http.inject({ method: 'POST', url: '/api/v1/shares', payload: { path: 'docs/report.txt' } })).statusCode).toBe(401);
    expect(await count()).toBe(before);
  });

  it('unknown or malformed tokens are 404', async () => {
    for (const token of ['nope', 'A'.repeat(43), '%00', 'a'.repeat(500)]) {
      expect((await visit(`/s/${token}`)).statusCode, token).toBe(404);
    }
  });
});
