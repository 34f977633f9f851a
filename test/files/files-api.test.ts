import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FilesService } from '../../src/modules/files/files.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

describe.each(testDialects())(`${FilesService.name} over HTTP on %s`, (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
    bob = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const req = (user: TestUser, method: string, url: string, payload?: string | Buffer | object, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, payload: payload as string, headers: { ...user.headers, ...headers } });
  const put = (user: TestUser, p: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    req(user, 'PUT', `/api/v1/files/${p}`, body, headers);
  const diskPath = (user: TestUser, p: string) => path.join(t.config.storageRoot, user.user.id, p);
  const rows = (user: TestUser) =>
    t.app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', user.user.id).orderBy('path').execute();
  const rowOf = async (user: TestUser, p: string) => (await rows(user)).find((r) => r.path === p);

  describe('PUT /api/v1/files/{path}', () => {
    it('stores the raw body, creates parents with index rows, answers 201 with metadata', async () => {
      const res = await put(alice, 'put/deep/er/hello.txt', 'hello world', { 'content-type': 'application/json' });
      expect(res.statusCode).toBe(201);
      const meta = res.json();
      expect(meta).toMatchObject({
        path: 'put/deep/er/hello.txt',
        name: 'hello.txt',
        size: 11,
        content_type: 'text/plain; charset=utf-8',
        is_directory: false,
        sha256: sha('hello world'),
      });
      expect(res.headers.etag).toBe(meta.etag);
      expect(await readFile(diskPath(alice, 'put/deep/er/hello.txt'), 'utf8')).toBe('hello world');
      const indexed = (await rows(alice)).filter((r) => r.path.startsWith('put'));
      expect(indexed.map((r) => [r.path, r.parent_path, r.is_directory])).toEqual([
        ['put', '', 1],
        ['put/deep', 'put', 1],
        ['put/deep/er', 'put/deep', 1],
        ['put/deep/er/hello.txt', 'put/deep/er', 0],
      ]);
    });

    it('replaces with 200, keeping the index row id', async () => {
      const first = await put(alice, 'put/replace.bin', 'one');
      const id = (await rowOf(alice, 'put/replace.bin'))!.id;
      const second = await put(alice, 'put/replace.bin', 'second version');
      expect(first.statusCode).toBe(201);
      expect(second.statusCode).toBe(200);
      expect(second.json().size).toBe(14);
      const row = (await rowOf(alice, 'put/replace.bin'))!;
      expect(row.id).toBe(id);
      expect(row.sha256).toBe(sha('second version'));
      expect(row.size).toBe(14);
    });

    it('accepts bodies larger than the JSON body limit and any content type', async () => {
      const big = Buffer.alloc(t.config.server.bodyLimitBytes + 1024, 7);
      const res = await put(alice, 'put/big.bin', big, { 'content-type': 'application/octet-stream' });
      expect(res.statusCode).toBe(201);
      expect(res.json().size).toBe(big.length);
      const json = await put(alice, 'put/data.json', '{"broken json', { 'content-type': 'application/json' });
      expect(json.statusCode).toBe(201);
      expect(await readFile(diskPath(alice, 'put/data.json'), 'utf8')).toBe('{"broken json');
    });

    it('stores an empty body', async () => {
      const res = await put(alice, 'put/empty', '');
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ size: 0, sha256: sha('') });
    });

    it('If-Match: succeeds with the current ETag, 412 with a stale one, and writes nothing', async () => {
      const v1 = (await put(alice, 'put/cas.txt', 'v1')).json();
      const v2 = await put(alice, 'put/cas.txt', 'v2', { 'if-match': v1.etag });
      expect(v2.statusCode).toBe(200);
      const stale = await put(alice, 'put/cas.txt', 'lost update', { 'if-match': v1.etag });
      expect(stale.statusCode).toBe(412);
      expect(stale.json().error.code).toBe('precondition_failed');
      expect(await readFile(diskPath(alice, 'put/cas.txt'), 'utf8')).toBe('v2');
      const missing = await put(alice, 'put/nope.txt', 'x', { 'if-match': '*' });
      expect(missing.statusCode).toBe(412);
      expect(existsSync(diskPath(alice, 'put/nope.txt'))).toBe(false);
      const createOnly = await put(alice, 'put/cas.txt', 'x', { 'if-none-match': '*' });
      expect(createOnly.statusCode).toBe(412);
    });

    it('refuses to overwrite a folder, or to write below a file (409)', async () => {
      await put(alice, 'put/dir/file.txt', 'x');
      expect((await put(alice, 'put/dir', 'x')).statusCode).toBe(409);
      const below = await put(alice, 'put/dir/file.txt/child', 'x');
      expect(below.statusCode).toBe(409);
      expect(below.json().error.code).toBe('conflict');
    });

    it('concurrent writers with the same If-Match: exactly one wins, the others get 412', async () => {
      const etag = (await put(alice, 'race2/doc.txt', 'v0')).json().etag;
      const results = await Promise.all(['a', 'b', 'c', 'd'].map((v) => put(alice, 'race2/doc.txt', `v1-${v}`, { 'if-match': etag })));
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 412, 412, 412]);
      const winner = results.find((r) => r.statusCode === 200)!.json();
      expect(await readFile(diskPath(alice, 'race2/doc.txt'), 'utf8')).toBe(`v1-${['a', 'b', 'c', 'd'][results.findIndex((r) => r.statusCode === 200)]}`);
      expect((await rowOf(alice, 'race2/doc.txt'))!.sha256).toBe(winner.sha256);
    });

    it('concurrent uploads cannot jointly exceed the quota', async () => {
      const q = await createUserWithKey(t.app, { quotaBytes: 1000 });
      const results = await Promise.all([1, 2, 3].map((i) => put(q, `q/${i}.bin`, Buffer.alloc(400))));
      expect(results.map((r) => r.statusCode).sort()).toEqual([201, 201, 413]);
      expect((await rows(q)).filter((r) => r.is_directory === 0)).toHaveLength(2);
      expect((await readdir(diskPath(q, 'q'))).filter((n) => n.endsWith('.bin'))).toHaveLength(2);
    });

    it('an upload whose folder is deleted mid-body ends in 409 and leaves nothing', async () => {
      await put(alice, 'race/keep.txt', 'x');
      const body = new PassThrough();
      const upload = t.app.files.put(alice.user.id, 'race/late.bin', body);
      body.write(Buffer.alloc(1024));
      await vi.waitFor(async () => expect((await readdir(diskPath(alice, 'race'))).some((n) => n.startsWith('.sv-tmp-'))).toBe(true), { interval: 5 });
      await t.app.files.delete(alice.user.id, 'race', { recursive: true });
      body.end(Buffer.alloc(1024));
      await expect(upload).rejects.toMatchObject({ code: 'conflict' });
      expect(existsSync(diskPath(alice, 'race'))).toBe(false);
      expect((await rows(alice)).filter((r) => r.path === 'race' || r.path.startsWith('race/'))).toEqual([]);
    });

    it('refuses the root and requires authentication', async () => {
      expect((await put(alice, '', 'x')).statusCode).toBe(400);
      const anon = await t.app.http.inject({ method: 'PUT', url: '/api/v1/files/x.txt', payload: 'x' });
      expect(anon.statusCode).toBe(401);
    });
  });

  describe('path rules over HTTP', () => {
    it('stores NFC: a decomposed name and its composed form address the same file', async () => {
      const decomposed = encodeURIComponent('rules/cafe\u0301.txt'.normalize('NFD')).replace(/%2F/g, '/');
      expect((await put(alice, decomposed, 'crème')).statusCode).toBe(201);
      const composed = await req(alice, 'GET', `/api/v1/files/${encodeURIComponent('rules/caf\u00e9.txt').replace(/%2F/g, '/')}`);
      expect(composed.statusCode).toBe(200);
      expect(composed.body).toBe('crème');
      expect(await readdir(diskPath(alice, 'rules'))).toEqual(['caf\u00e9.txt']);
    });

    it.each([
      ['a segment over 255 bytes', `rules/${'x'.repeat(256)}`],
      ['a segment over 255 bytes in UTF-8', `rules/${encodeURIComponent('é'.repeat(128))}`],
      ['a control character', 'rules/a%01b'],
      ['a NUL', 'rules/a%00b'],
      ['a backslash', 'rules/a%5Cb'],
      // (Encoded dot-dot is covered over a real socket in upload-e2e: inject's URL parser resolves it.)
      ['an empty segment', 'rules//x'],
      ['a reserved temp name', 'rules/.sv-tmp-abc'],
    ])('400 invalid_path for %s, on every verb, writing nothing', async (_why, p) => {
      for (const [method, url] of [
        ['PUT', `/api/v1/files/${p}`],
        ['GET', `/api/v1/files/${p}`],
        ['DELETE', `/api/v1/files/${p}`],
        ['GET', `/api/v1/meta/${p}`],
        ['GET', `/api/v1/dirs/${p}`],
        ['POST', `/api/v1/dirs/${p}`],
      ] as const) {
        const res = await req(alice, method, url, method === 'PUT' ? 'x' : undefined);
        expect(res.statusCode, `${method} ${url}`).toBe(400);
        expect(res.json().error.code).toBe('invalid_path');
      }
      const decoded = decodeURIComponent(p);
      for (const body of [{ from: decoded, to: 'rules/ok' }, { from: 'rules', to: decoded }]) {
        expect((await req(alice, 'POST', '/api/v1/move', body)).statusCode).toBe(400);
        expect((await req(alice, 'POST', '/api/v1/copy', body)).statusCode).toBe(400);
      }
      expect((await req(alice, 'POST', '/api/v1/shares', { path: decoded })).statusCode).toBe(400);
      expect(await readdir(diskPath(alice, 'rules'))).toEqual(['caf\u00e9.txt']);
    });
  });

  describe('quota and free space', () => {
    it('413 over quota (declared length and when replacing counts the difference), nothing written', async () => {
      const q = await createUserWithKey(t.app, { quotaBytes: 100 });
      expect((await put(q, 'a.bin', Buffer.alloc(60))).statusCode).toBe(201);
      const over = await put(q, 'sub/b.bin', Buffer.alloc(41));
      expect(over.statusCode).toBe(413);
      expect(over.json().error.code).toBe('quota_exceeded');
      expect(existsSync(diskPath(q, 'sub'))).toBe(false);
      expect((await rows(q)).map((r) => r.path)).toEqual(['a.bin']);
      // Replacing a.bin frees its 60 bytes first.
      expect((await put(q, 'a.bin', Buffer.alloc(100))).statusCode).toBe(200);
      expect((await put(q, 'c.bin', Buffer.alloc(1))).statusCode).toBe(413);
      expect(await readdir(diskPath(q, ''))).toEqual(['a.bin']);
    });

    it('413 for a chunked upload that grows past the quota, nothing left behind', async () => {
      const q = await createUserWithKey(t.app, { quotaBytes: 1000 });
      const body = Readable.from((function* () {
        for (let i = 0; i < 10; i++) yield Buffer.alloc(200, i);
      })());
      await expect(t.app.files.put(q.user.id, 'x/chunked.bin', body)).rejects.toMatchObject({ code: 'quota_exceeded' });
      expect(await readdir(diskPath(q, ''))).toEqual([]);
      expect(await rows(q)).toEqual([]);
    });

    it('507 when the disk would drop below the free-space floor, nothing written', async () => {
      const low = await createTestApp({ dialect, env: { STORMVAULT_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER) } });
      try {
        const u = await createUserWithKey(low.app);
        const res = await low.app.http.inject({ method: 'PUT', url: '/api/v1/files/new/x.txt', payload: 'x', headers: u.headers });
        expect(res.statusCode).toBe(507);
        expect(res.json().error.code).toBe('insufficient_storage');
        expect(existsSync(path.join(low.config.storageRoot, u.user.id, 'new'))).toBe(false);
        expect(await low.app.db.selectFrom('stored_files').selectAll().execute()).toEqual([]);
      } finally {
        await low.cleanup();
      }
    });
  });

  describe('GET / HEAD /api/v1/files/{path}', () => {
    const body = '0123456789abcdefghij';
    beforeAll(async () => {
      await put(alice, 'get/page.html', body);
    });

    it('streams the file with validators', async () => {
      const res = await req(alice, 'GET', '/api/v1/files/get/page.html');
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe(body);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-length']).toBe(String(body.length));
      expect(res.headers.etag).toMatch(/^".+"$/);
      expect(new Date(res.headers['last-modified'] as string).getTime()).not.toBeNaN();
      // User content must not run as script in our origin.
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toBe('sandbox');
    });

    it('HEAD answers the same headers without a body', async () => {
      const res = await req(alice, 'HEAD', '/api/v1/files/get/page.html');
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('');
      expect(res.headers['content-length']).toBe(String(body.length));
    });

    it('serves byte ranges (206) and refuses unsatisfiable ones (416)', async () => {
      const mid = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { range: 'bytes=2-5' });
      expect(mid.statusCode).toBe(206);
      expect(mid.body).toBe('2345');
      expect(mid.headers['content-range']).toBe(`bytes 2-5/${body.length}`);
      const suffix = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { range: 'bytes=-3' });
      expect(suffix.body).toBe('hij');
      const open = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { range: 'bytes=18-' });
      expect(open.body).toBe('ij');
      const bad = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { range: 'bytes=20-30' });
      expect(bad.statusCode).toBe(416);
      expect(bad.headers['content-range']).toBe(`bytes */${body.length}`);
      expect(bad.json().error.code).toBe('range_not_satisfiable');
      const stale = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { range: 'bytes=0-1', 'if-range': '"old"' });
      expect(stale.statusCode).toBe(200);
      expect(stale.body).toBe(body);
    });

    it('answers 304 to If-None-Match with the current ETag', async () => {
      const etag = (await req(alice, 'HEAD', '/api/v1/files/get/page.html')).headers.etag as string;
      const res = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { 'if-none-match': etag });
      expect(res.statusCode).toBe(304);
      expect(res.body).toBe('');
      const changed = await req(alice, 'GET', '/api/v1/files/get/page.html', undefined, { 'if-none-match': '"other"' });
      expect(changed.statusCode).toBe(200);
    });

    it('404 for a missing file, 409 for a folder', async () => {
      expect((await req(alice, 'GET', '/api/v1/files/get/missing')).statusCode).toBe(404);
      expect((await req(alice, 'GET', '/api/v1/files/get')).statusCode).toBe(409);
    });

    it("never reaches another user's files: 404, not 403", async () => {
      for (const [method, url] of [
        ['GET', '/api/v1/files/get/page.html'],
        ['HEAD', '/api/v1/files/get/page.html'],
        ['GET', '/api/v1/meta/get/page.html'],
        ['GET', '/api/v1/dirs/get'],
        ['DELETE', '/api/v1/files/get/page.html'],
      ] as const) {
        const res = await req(bob, method, url);
        expect(res.statusCode, `${method} ${url}`).toBe(404);
      }
      const move = await req(bob, 'POST', '/api/v1/move', { from: 'get/page.html', to: 'mine.html' });
      expect(move.statusCode).toBe(404);
      expect(await readFile(diskPath(alice, 'get/page.html'), 'utf8')).toBe(body);
    });
  });

  describe('GET /api/v1/meta/{path}', () => {
    it('describes files and folders', async () => {
      await put(alice, 'meta/a.txt', 'abc');
      const file = (await req(alice, 'GET', '/api/v1/meta/meta/a.txt')).json();
      expect(file).toMatchObject({ path: 'meta/a.txt', name: 'a.txt', size: 3, is_directory: false, sha256: sha('abc') });
      expect(file.modified_at).toMatch(/^\d{4}-/);
      expect(file.created_at).toMatch(/^\d{4}-/);
      const folder = (await req(alice, 'GET', '/api/v1/meta/meta')).json();
      expect(folder).toMatchObject({ path: 'meta', name: 'meta', is_directory: true, content_type: 'inode/directory', sha256: null });
      const root = await req(alice, 'GET', '/api/v1/meta/');
      expect(root.json()).toMatchObject({ path: '', is_directory: true });
      expect((await req(alice, 'GET', '/api/v1/meta/meta/none')).statusCode).toBe(404);
    });

    it('computes and stores sha256 for rows indexed without one (reconciliation contract)', async () => {
      await put(alice, 'meta/recon.txt', 'reconciled');
      await t.app.db.updateTable('stored_files').set({ sha256: null }).where('owner_id', '=', alice.user.id).where('path', '=', 'meta/recon.txt').execute();
      const meta = (await req(alice, 'GET', '/api/v1/meta/meta/recon.txt')).json();
      expect(meta.sha256).toBe(sha('reconciled'));
      expect((await rowOf(alice, 'meta/recon.txt'))!.sha256).toBe(sha('reconciled'));
    });

    it('indexes a file found on disk without a row, and corrects a stale row (the disk wins)', async () => {
      await put(alice, 'meta/placeholder', 'x');
      await writeFile(diskPath(alice, 'meta/outside-api.csv'), 'a,b\n');
      const meta = (await req(alice, 'GET', '/api/v1/meta/meta/outside-api.csv')).json();
      expect(meta).toMatchObject({ size: 4, content_type: 'text/csv; charset=utf-8', sha256: sha('a,b\n') });
      expect(await rowOf(alice, 'meta/outside-api.csv')).toBeTruthy();
      await writeFile(diskPath(alice, 'meta/outside-api.csv'), 'changed on disk');
      const fresh = (await req(alice, 'GET', '/api/v1/meta/meta/outside-api.csv')).json();
      expect(fresh).toMatchObject({ size: 15, sha256: sha('changed on disk') });
    });
  });

  describe('folders: GET and POST /api/v1/dirs/{path}', () => {
    it('creates a folder and its parents (201), 200 when it exists, 409 over a file', async () => {
      const res = await req(alice, 'POST', '/api/v1/dirs/mk/a/b');
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ path: 'mk/a/b', is_directory: true });
      expect(existsSync(diskPath(alice, 'mk/a/b'))).toBe(true);
      expect((await rows(alice)).filter((r) => r.path.startsWith('mk')).map((r) => r.path)).toEqual(['mk', 'mk/a', 'mk/a/b']);
      expect((await req(alice, 'POST', '/api/v1/dirs/mk/a')).statusCode).toBe(200);
      await put(alice, 'mk/file', 'x');
      expect((await req(alice, 'POST', '/api/v1/dirs/mk/file')).statusCode).toBe(409);
      expect((await req(alice, 'POST', '/api/v1/dirs/mk/file/sub')).statusCode).toBe(409);
    });

    it('lists sorted by name with limit and an opaque cursor', async () => {
      const names = ['b.txt', 'a.txt', 'C.txt', 'é.txt', '10.txt', '2.txt', 'z'];
      for (const n of names) await put(alice, `list/${n}`, n);
      await req(alice, 'POST', '/api/v1/dirs/list/sub');
      const all: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = cursor ? `?limit=3&cursor=${encodeURIComponent(cursor)}` : '?limit=3';
        const res = await req(alice, 'GET', `/api/v1/dirs/list${q}`);
        expect(res.statusCode).toBe(200);
        const body = res.json();
        expect(body.path).toBe('list');
        expect(body.entries.length).toBeLessThanOrEqual(3);
        all.push(...body.entries.map((e: { name: string }) => e.name));
        cursor = body.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      // Byte order, the same on every database.
      expect(all).toEqual([...names, 'sub'].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    });

    it('lists the root with an empty path', async () => {
      const res = await req(bob, 'GET', '/api/v1/dirs');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ path: '', entries: [], next_cursor: null });
      await put(bob, 'top.txt', 'x');
      const names = (await req(bob, 'GET', '/api/v1/dirs/')).json().entries.map((e: { name: string }) => e.name);
      expect(names).toEqual(['top.txt']);
    });

    it('rejects bad limits and cursors (400), missing folders (404), files (409)', async () => {
      expect((await req(alice, 'GET', '/api/v1/dirs/list?limit=0')).statusCode).toBe(400);
      expect((await req(alice, 'GET', '/api/v1/dirs/list?limit=5000')).statusCode).toBe(400);
      expect((await req(alice, 'GET', '/api/v1/dirs/list?limit=abc')).statusCode).toBe(400);
      expect((await req(alice, 'GET', '/api/v1/dirs/list?cursor=garbage')).statusCode).toBe(400);
      expect((await req(alice, 'GET', '/api/v1/dirs/list?sort=name')).statusCode).toBe(400);
      expect((await req(alice, 'GET', '/api/v1/dirs/nowhere')).statusCode).toBe(404);
      expect((await req(alice, 'GET', '/api/v1/dirs/list/a.txt')).statusCode).toBe(409);
    });
  });

  describe('DELETE /api/v1/files/{path}', () => {
    it('deletes a file and its row', async () => {
      await put(alice, 'del/one.txt', 'x');
      const res = await req(alice, 'DELETE', '/api/v1/files/del/one.txt');
      expect(res.statusCode).toBe(204);
      expect(existsSync(diskPath(alice, 'del/one.txt'))).toBe(false);
      expect(await rowOf(alice, 'del/one.txt')).toBeUndefined();
      expect((await req(alice, 'DELETE', '/api/v1/files/del/one.txt')).statusCode).toBe(404);
    });

    it('needs recursive=true for a non-empty folder, then removes the whole subtree', async () => {
      await put(alice, 'del/tree/a/b.txt', 'x');
      await put(alice, 'del/tree/c.txt', 'y');
      const refused = await req(alice, 'DELETE', '/api/v1/files/del/tree');
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe('not_empty');
      expect(existsSync(diskPath(alice, 'del/tree/a/b.txt'))).toBe(true);
      expect((await req(alice, 'DELETE', '/api/v1/files/del/tree?recursive=true')).statusCode).toBe(204);
      expect(existsSync(diskPath(alice, 'del/tree'))).toBe(false);
      expect((await rows(alice)).filter((r) => r.path.startsWith('del/tree'))).toEqual([]);
    });

    it('deletes an empty folder without the flag; rejects a bad flag; keeps look-alike siblings', async () => {
      await req(alice, 'POST', '/api/v1/dirs/del/empty');
      await put(alice, 'del/empty_sibling/x', 'keep');
      await put(alice, 'del/empty%25/x', 'keep');
      expect((await req(alice, 'DELETE', '/api/v1/files/del/empty?recursive=yes')).statusCode).toBe(400);
      expect((await req(alice, 'DELETE', '/api/v1/files/del/empty')).statusCode).toBe(204);
      expect(await rowOf(alice, 'del/empty_sibling/x')).toBeTruthy();
      expect(await rowOf(alice, 'del/empty%/x')).toBeTruthy();
      expect((await req(alice, 'DELETE', '/api/v1/files/')).statusCode).toBe(400);
    });
  });

  describe('POST /api/v1/move and /api/v1/copy', () => {
    it('moves a folder with its subtree, keeping row ids', async () => {
      await put(alice, 'mv/src/a.txt', 'a');
      await put(alice, 'mv/src/sub/b.txt', 'b');
      const before = new Map((await rows(alice)).map((r) => [r.path, r.id]));
      const res = await req(alice, 'POST', '/api/v1/move', { from: 'mv/src', to: 'mv/new/place' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ path: 'mv/new/place', is_directory: true });
      const after = new Map((await rows(alice)).map((r) => [r.path, r]));
      expect(after.get('mv/new/place/a.txt')!.id).toBe(before.get('mv/src/a.txt'));
      expect(after.get('mv/new/place/sub/b.txt')!.id).toBe(before.get('mv/src/sub/b.txt'));
      expect(after.get('mv/new/place/sub/b.txt')!.parent_path).toBe('mv/new/place/sub');
      expect(after.get('mv/new/place')!.parent_path).toBe('mv/new');
      expect(after.get('mv/new')!.is_directory).toBe(1);
      expect([...after.keys()].filter((p) => p.startsWith('mv/src'))).toEqual([]);
      expect(await readFile(diskPath(alice, 'mv/new/place/sub/b.txt'), 'utf8')).toBe('b');
      expect(existsSync(diskPath(alice, 'mv/src'))).toBe(false);
    });

    it('refuses an existing target (409) unless overwrite, then replaces it', async () => {
      await put(alice, 'mv/x.txt', 'x');
      await put(alice, 'mv/y.txt', 'y');
      const xId = (await rowOf(alice, 'mv/x.txt'))!.id;
      const refused = await req(alice, 'POST', '/api/v1/move', { from: 'mv/x.txt', to: 'mv/y.txt' });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe('already_exists');
      const ok = await req(alice, 'POST', '/api/v1/move', { from: 'mv/x.txt', to: 'mv/y.txt', overwrite: true });
      expect(ok.statusCode).toBe(200);
      expect(await readFile(diskPath(alice, 'mv/y.txt'), 'utf8')).toBe('x');
      expect((await rowOf(alice, 'mv/y.txt'))!.id).toBe(xId);
      expect(await rowOf(alice, 'mv/x.txt')).toBeUndefined();
      // A folder replaced by a file.
      await put(alice, 'mv/folder/inner.txt', 'i');
      const over = await req(alice, 'POST', '/api/v1/move', { from: 'mv/y.txt', to: 'mv/folder', overwrite: true });
      expect(over.statusCode).toBe(200);
      expect(await readFile(diskPath(alice, 'mv/folder'), 'utf8')).toBe('x');
      expect(await rowOf(alice, 'mv/folder/inner.txt')).toBeUndefined();
      expect((await readdir(diskPath(alice, 'mv'))).filter((n) => n.startsWith('.sv-tmp-'))).toEqual([]);
    });

    it('rejects moving into itself, onto itself, a missing source, and bad bodies', async () => {
      await put(alice, 'mv2/d/f.txt', 'f');
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d', to: 'mv2/d/inside' })).statusCode).toBe(400);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d', to: 'mv2/d' })).statusCode).toBe(400);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d/f.txt', to: 'mv2', overwrite: true })).statusCode).toBe(400);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/none', to: 'mv2/x' })).statusCode).toBe(404);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d' })).statusCode).toBe(400);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d', to: 'x', extra: 1 })).statusCode).toBe(400);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d', to: 'a/../b' })).statusCode).toBe(400);
      expect((await req(alice, 'POST', '/api/v1/move', { from: 'mv2/d', to: 'mv2/d/f.txt/x' })).statusCode).toBe(400);
      expect(await readFile(diskPath(alice, 'mv2/d/f.txt'), 'utf8')).toBe('f');
    });

    it('copies a file and a folder tree with new rows and hashes', async () => {
      await put(alice, 'cp/src/a.txt', 'aaa');
      await put(alice, 'cp/src/deep/b.txt', 'bb');
      const file = await req(alice, 'POST', '/api/v1/copy', { from: 'cp/src/a.txt', to: 'cp/a-copy.txt' });
      expect(file.statusCode).toBe(201);
      expect(file.json()).toMatchObject({ path: 'cp/a-copy.txt', size: 3, sha256: sha('aaa') });
      const tree = await req(alice, 'POST', '/api/v1/copy', { from: 'cp/src', to: 'cp/dst/tree' });
      expect(tree.statusCode).toBe(201);
      const all = await rows(alice);
      const src = all.find((r) => r.path === 'cp/src/deep/b.txt')!;
      const dst = all.find((r) => r.path === 'cp/dst/tree/deep/b.txt')!;
      expect(dst.id).not.toBe(src.id);
      expect(dst.sha256).toBe(sha('bb'));
      expect(dst.parent_path).toBe('cp/dst/tree/deep');
      expect(all.find((r) => r.path === 'cp/dst')!.is_directory).toBe(1);
      expect(await readFile(diskPath(alice, 'cp/dst/tree/deep/b.txt'), 'utf8')).toBe('bb');
      expect(await readFile(diskPath(alice, 'cp/src/deep/b.txt'), 'utf8')).toBe('bb');
      expect((await req(alice, 'POST', '/api/v1/copy', { from: 'cp/src', to: 'cp/dst/tree' })).statusCode).toBe(409);
      const over = await req(alice, 'POST', '/api/v1/copy', { from: 'cp/src/a.txt', to: 'cp/dst/tree', overwrite: true });
      expect(over.statusCode).toBe(201);
      expect((await rows(alice)).filter((r) => r.path.startsWith('cp/dst/tree/'))).toEqual([]);
      expect((await req(alice, 'POST', '/api/v1/copy', { from: 'cp/src', to: 'cp/src/again' })).statusCode).toBe(400);
    });

    it('copy respects the quota and writes nothing when refused', async () => {
      const q = await createUserWithKey(t.app, { quotaBytes: 10 });
      await put(q, 'd/six.bin', Buffer.alloc(6));
      const res = await req(q, 'POST', '/api/v1/copy', { from: 'd', to: 'e' });
      expect(res.statusCode).toBe(413);
      expect(existsSync(diskPath(q, 'e'))).toBe(false);
      expect((await rows(q)).map((r) => r.path)).toEqual(['d', 'd/six.bin']);
    });
  });

  it('documents every files endpoint in OpenAPI', async () => {
    const paths = Object.keys((await t.app.http.inject({ method: 'GET', url: '/api/docs/json' })).json().paths);
    for (const p of ['/api/v1/files/*', '/api/v1/meta/*', '/api/v1/dirs', '/api/v1/dirs/*', '/api/v1/move', '/api/v1/copy']) {
      expect(paths.some((x) => x.replace(/\{\*\}|\{wildcard\}/, '*') === p || x === p), p).toBe(true);
    }
  });
});
