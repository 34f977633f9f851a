import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublishingService } from '../../src/modules/publishing/publishing.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

describe.each(testDialects())(`${PublishingService.name} (local side) on %s`, (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let member: TestUser;
  let outsider: TestUser;
  let orgId: string;

  beforeAll(async () => {
    t = await createTestApp({ dialect, env: { STORMVAULT_PUBLIC_URL: 'https://pub.example.com' } });
    admin = await createUserWithKey(t.app);
    member = await createUserWithKey(t.app);
    outsider = await createUserWithKey(t.app);
    const org = await t.app.http.inject({ method: 'POST', url: '/api/v1/organizations', headers: admin.headers, payload: { name: 'Team' } });
    orgId = org.json().id;
    const add = await t.app.http.inject({ method: 'PUT', url: '/api/v1/organizations/members', headers: { ...admin.headers, 'x-organization': orgId }, payload: { username: member.user.username, role: 'member' } });
    expect(add.statusCode, add.body).toBe(200);
    const site = await api(admin, 'POST', '/api/v1/sites', { name: 'docs', cache_control: 'public, max-age=300' });
    expect(site.statusCode, site.body).toBe(201);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  function api(user: TestUser, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) {
    return t.app.http.inject({ method: method as 'GET', url, headers: { ...user.headers, 'x-organization': orgId, ...headers }, payload: payload as never });
  }
  const put = (user: TestUser, p: string, body: string | Buffer) => api(user, 'PUT', `/api/v1/sites/docs/content/${p}`, body, { 'content-type': 'application/octet-stream' });
  const local = (p: string) => path.join(t.config.publishing.root, 'docs', p);

  it('creates sites for org admins only, and answers settings without the secret', async () => {
    expect((await api(member, 'POST', '/api/v1/sites', { name: 'nope' })).statusCode).toBe(403);
    expect((await t.app.http.inject({ method: 'POST', url: '/api/v1/sites', payload: { name: 'x' } })).statusCode).toBe(401);
    // Authorisation before validation: a member sending garbage still gets 403, not 400.
    expect((await api(member, 'POST', '/api/v1/sites', { bogus: true })).statusCode).toBe(403);
    expect((await api(admin, 'POST', '/api/v1/sites', { name: 'Bad Name' })).statusCode).toBe(400);
    expect((await api(admin, 'POST', '/api/v1/sites', { name: 'docs' })).statusCode).toBe(409);
    const patched = await api(admin, 'PATCH', '/api/v1/sites/docs', { s3: { bucket: 'team-docs', access_key_id: 'AKIA1', secret_access_key: 'very-secret-value' } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.body).not.toContain('very-secret-value');
    expect(patched.json().s3).toMatchObject({ bucket: 'team-docs', access_key_id: 'AKIA1', secret_access_key_set: true });
    const row = await t.app.db.selectFrom('publish_sites').selectAll().where('name', '=', 'docs').executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain('very-secret-value');
    expect(row.s3_secret_access_key_enc).toMatch(/^v1\./);
    const got = await api(member, 'GET', '/api/v1/sites/docs');
    expect(got.statusCode).toBe(200);
    expect(got.body).not.toContain('very-secret-value');
    // Members cannot change settings; outsiders cannot even see the site.
    expect((await api(member, 'PATCH', '/api/v1/sites/docs', { cdn_enabled: false })).statusCode).toBe(403);
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/sites/docs', headers: outsider.headers })).statusCode).toBe(404);
    expect((await api(admin, 'PATCH', '/api/v1/sites/docs', { cdn_enabled: true })).statusCode).toBe(400); // no cdn_base_url yet
    expect((await api(admin, 'PATCH', '/api/v1/sites/docs', { health: { time_zone: 'Mars/Olympus' } })).statusCode).toBe(400);
    expect((await api(admin, 'PATCH', '/api/v1/sites/docs', { health: { business_hours: '8-18' } })).statusCode).toBe(400);
    // This suite is about the local side: no bucket to mirror to.
    const cleared = await api(admin, 'PATCH', '/api/v1/sites/docs', { s3: { bucket: null, access_key_id: null, secret_access_key: null } });
    expect(cleared.json().s3).toMatchObject({ bucket: null, secret_access_key_set: false });
  });

  it('publishes a file atomically, keeps one .prev, and serves it publicly with validators', async () => {
    const first = await put(member, 'app/config.json', '{"v":1}');
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ path: 'app/config.json', size: 7, url: 'https://pub.example.com/p/docs/app/config.json', source: 'local' });
    const second = await put(member, 'app/config.json', '{"v":2}');
    expect(second.statusCode).toBe(200);
    const third = await put(member, 'app/config.json', '{"v":3}');
    expect(third.json().generation).toBe(3);
    expect(await readFile(local('app/config.json'), 'utf8')).toBe('{"v":3}');
    expect(await readFile(local('app/config.json.prev'), 'utf8')).toBe('{"v":2}');

    const res = await t.app.http.inject({ method: 'GET', url: '/p/docs/app/config.json' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('{"v":3}');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.headers['last-modified']).toBeTruthy();
    const again = await t.app.http.inject({ method: 'GET', url: '/p/docs/app/config.json', headers: { 'if-none-match': String(res.headers.etag) } });
    expect(again.statusCode).toBe(304);
    const part = await t.app.http.inject({ method: 'GET', url: '/p/docs/app/config.json', headers: { range: 'bytes=1-3' } });
    expect(part.statusCode).toBe(206);
    expect(part.body).toBe('"v"');
    // Kept versions and reserved names are never served or written.
    expect((await t.app.http.inject({ method: 'GET', url: '/p/docs/app/config.json.prev' })).statusCode).toBe(404);
    expect((await put(member, 'app/x.prev', 'no')).statusCode).toBe(400);
    expect((await t.app.http.inject({ method: 'GET', url: '/p/docs/../etc/passwd' })).statusCode).toBe(404);
    expect((await t.app.http.inject({ method: 'GET', url: '/p/nosuchsite/a' })).statusCode).toBe(404);
  });

  it('refuses a .json body that does not parse, and leaves the published version alone', async () => {
    const res = await put(member, 'app/config.json', '{"v":4');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/valid JSON/);
    expect(await readFile(local('app/config.json'), 'utf8')).toBe('{"v":3}');
    expect(await readFile(local('app/config.json.prev'), 'utf8')).toBe('{"v":2}');
    // Found inside a small chunk (checked as it passes), not only at the end.
    const inside = await put(member, 'app/config.json', '{"v":4,}');
    expect(inside.statusCode).toBe(400);
    expect(inside.json().error.message).toMatch(/valid JSON at byte 7/);
    expect(await readFile(local('app/config.json'), 'utf8')).toBe('{"v":3}');
    expect((await readdir(local('app'))).sort()).toEqual(['config.json', 'config.json.prev']);
    // An error early in a big body (found while the rest streams to disk) refuses it the same way.
    const early = await put(member, 'app/config.json', Buffer.concat([Buffer.from('{"v":5}}'), Buffer.alloc(12 * 1024 * 1024, 0x20)]));
    expect(early.statusCode).toBe(400);
    expect(early.json().error.message).toMatch(/valid JSON/);
    expect(await readFile(local('app/config.json'), 'utf8')).toBe('{"v":3}');
    expect((await readdir(local('app'))).sort()).toEqual(['config.json', 'config.json.prev']);
    expect((await put(member, 'notes/readme.txt', 'not json, and that is fine')).statusCode).toBe(201);
  });

  it('checks a .json body handed over in one chunk larger than the check may lag behind, in full', async () => {
    // One 10 MB chunk goes to disk at once while the check follows it: a problem in its last bytes is
    // still found before anything is renamed into place.
    const site = (await t.app.publishing.sites.findPublic('docs'))!;
    const items = `[${Array.from({ length: 250_000 }, (_, i) => `{"id":"${String(i).padStart(24, 'x')}","n":${i}}`).join(',')}]`;
    const good = Buffer.from(items);
    expect(good.length).toBeGreaterThan(9 * 1024 * 1024);
    const { Readable } = await import('node:stream');
    const written = await t.app.publishing.content.write(site, 'big/one.json', Readable.from([good]));
    expect(written.file.size).toBe(good.length);
    expect((await readFile(local('big/one.json'))).equals(good)).toBe(true);
    const bad = Buffer.from(good);
    bad[bad.length - 3] = 0x01; // a control byte in the last number, 3 bytes before the end
    await expect(t.app.publishing.content.write(site, 'big/one.json', Readable.from([bad]))).rejects.toThrow(`not valid JSON at byte ${bad.length - 3}`);
    expect((await readFile(local('big/one.json'))).equals(good)).toBe(true);
    expect((await readdir(local('big'))).sort()).toEqual(['one.json']);
    expect((await api(member, 'DELETE', '/api/v1/sites/docs/content/big?recursive=true')).statusCode).toBe(204);
  });

  it('refuses a write over a folder with 409 and leaves the folder, its files and no temp file behind', async () => {
    expect((await put(member, 'over/folder/kept.txt', 'kept')).statusCode).toBe(201);
    const res = await put(member, 'over/folder', 'a file where a folder is');
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json().error.message).toMatch(/"over\/folder" is a folder/);
    expect(await readFile(local('over/folder/kept.txt'), 'utf8')).toBe('kept');
    expect((await readdir(local('over'))).sort()).toEqual(['folder']);
    expect((await api(member, 'GET', '/api/v1/sites/docs/content/over/folder/kept.txt')).statusCode).toBe(200);
    expect((await api(member, 'DELETE', '/api/v1/sites/docs/content/over?recursive=true')).statusCode).toBe(204);
  });

  it('rolls back to .prev and back again', async () => {
    const rolled = await api(member, 'POST', '/api/v1/sites/docs/content/app/config.json/rollback');
    expect(rolled.statusCode, rolled.body).toBe(200);
    expect(await readFile(local('app/config.json'), 'utf8')).toBe('{"v":2}');
    expect(await readFile(local('app/config.json.prev'), 'utf8')).toBe('{"v":3}');
    const meta = await api(member, 'GET', '/api/v1/sites/docs/content/app/config.json');
    expect(meta.json()).toMatchObject({ path: 'app/config.json', size: 7, cdn: { status: 'pending', sync_verified: false } });
    expect(meta.json().sha256).toBe((await import('node:crypto')).createHash('sha256').update('{"v":2}').digest('hex'));
    expect((await api(member, 'POST', '/api/v1/sites/docs/content/notes/readme.txt/rollback')).statusCode).toBe(404);
  });

  it('resolves URLs and lists everything in the manifest', async () => {
    const url = await api(member, 'GET', '/api/v1/sites/docs/url?path=app/config.json');
    expect(url.json()).toMatchObject({ url: 'https://pub.example.com/p/docs/app/config.json', source: 'local' });
    const manifest = await api(member, 'GET', '/api/v1/sites/docs/manifest');
    expect(manifest.statusCode).toBe(200);
    const body = manifest.json();
    expect(body.mode).toBe('local');
    expect(body.files.map((f: { path: string }) => f.path)).toEqual(['app/config.json', 'notes/readme.txt']);
    const listing = await api(member, 'GET', '/api/v1/sites/docs/content/app?limit=1');
    expect(listing.json().files.map((f: { path: string }) => f.path)).toEqual(['app/config.json']);
  });

  it('refuses with 507 and writes nothing when free disk would fall below the site floor', async () => {
    expect((await api(admin, 'PATCH', '/api/v1/sites/docs', { health: { min_free_bytes: Number.MAX_SAFE_INTEGER } })).statusCode).toBe(200);
    const res = await put(member, 'big/file.bin', 'x'.repeat(1000));
    expect(res.statusCode).toBe(507);
    await expect(stat(local('big'))).rejects.toThrow();
    const alerts = await api(member, 'GET', '/api/v1/alerts');
    expect(alerts.json().alerts.map((a: { kind: string }) => a.kind)).toContain('publish.disk_low');
    await put(member, 'big/file2.bin', 'y');
    const again = await api(member, 'GET', '/api/v1/alerts');
    // One open alert per condition, however many refusals.
    expect(again.json().alerts.filter((a: { kind: string }) => a.kind === 'publish.disk_low')).toHaveLength(1);
    expect((await api(admin, 'PATCH', '/api/v1/sites/docs', { health: { min_free_bytes: 0 } })).statusCode).toBe(200);
  });

  it('deletes a file with its .prev, a folder recursively, and the empty parents', async () => {
    await put(member, 'deep/a/b/one.txt', '1');
    await put(member, 'deep/a/b/one.txt', '1b');
    await put(member, 'deep/a/two.txt', '2');
    expect((await api(member, 'DELETE', '/api/v1/sites/docs/content/deep/a/b/one.txt')).statusCode).toBe(204);
    await expect(stat(local('deep/a/b/one.txt.prev'))).rejects.toThrow();
    await expect(stat(local('deep/a/b'))).rejects.toThrow(); // emptied parent removed
    expect((await stat(local('deep/a'))).isDirectory()).toBe(true);
    expect((await api(member, 'DELETE', '/api/v1/sites/docs/content/deep')).statusCode).toBe(409);
    expect((await api(member, 'DELETE', '/api/v1/sites/docs/content/deep?recursive=true')).statusCode).toBe(204);
    await expect(stat(local('deep'))).rejects.toThrow();
    expect((await api(member, 'GET', '/api/v1/sites/docs/content/deep/a/two.txt')).statusCode).toBe(404);
    expect((await t.app.http.inject({ method: 'GET', url: '/p/docs/deep/a/two.txt' })).statusCode).toBe(404);
    // No bucket configured to mirror to: nothing is left pending deletion either.
    expect((await stat(local(''))).isDirectory()).toBe(true);
  });
});
