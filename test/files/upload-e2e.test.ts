import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TEMP_PREFIX } from '../../src/storage/safe-path.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/** Every temp file anywhere below `dir`. */
async function tempFilesBelow(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => path.basename(e).startsWith(TEMP_PREFIX));
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe.each(testDialects())('file uploads over a real socket on %s', (dialect) => {
  let t: TestApp;
  let port: number;
  let alice: TestUser;

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    await t.app.http.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.http.server.address() as AddressInfo).port;
    alice = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const userDir = (u: TestUser) => path.join(t.config.storageRoot, u.user.id);

  /** Sends a request with a raw (unnormalised) path and an optional body; resolves with the response. */
  function send(method: string, rawPath: string, user: TestUser, body?: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path: rawPath, headers: { ...user.headers, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /**
   * Starts an upload that declares `declared` bytes, sends `sent` of them, waits until the server has
   * put them into a temp file, then kills the connection.
   */
  async function killedUpload(user: TestUser, rawPath: string, declared: number, sent: number): Promise<void> {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path: rawPath,
      headers: { ...user.headers, 'content-length': String(declared), 'content-type': 'application/octet-stream' },
    });
    req.on('error', () => {}); // the reset we are about to cause
    req.write(Buffer.alloc(sent, 1));
    // The server is demonstrably mid-upload once its temp file holds bytes.
    await vi.waitFor(async () => expect((await tempFilesBelow(userDir(user))).length).toBeGreaterThan(0), { timeout: 10_000, interval: 10 });
    req.destroy();
    // Cleanup on the server side is asynchronous: wait for its observable end, the temp file vanishing.
    await vi.waitFor(async () => expect(await tempFilesBelow(userDir(user))).toEqual([]), { timeout: 10_000, interval: 10 });
  }

  it('a killed upload leaves no partial file, no temp file, no created folder and no index row', async () => {
    await killedUpload(alice, '/api/v1/files/killed/deep/file.bin', 8 * 1024 * 1024, 512 * 1024);
    // The folders the upload created go right after its temp file.
    await vi.waitFor(() => expect(existsSync(path.join(userDir(alice), 'killed'))).toBe(false), { timeout: 10_000, interval: 10 });
    const rows = await t.app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', alice.user.id).where('path', 'like', 'killed%').execute();
    expect(rows).toEqual([]);
    // The server is fine afterwards.
    const ok = await send('PUT', '/api/v1/files/killed/deep/file.bin', alice, Buffer.from('complete'));
    expect(ok.status).toBe(201);
  });

  it('a killed replace leaves the old version intact, on disk and in the index', async () => {
    const first = await send('PUT', '/api/v1/files/keep/version.txt', alice, Buffer.from('old version'));
    expect(first.status).toBe(201);
    const before = await t.app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', alice.user.id).where('path', '=', 'keep/version.txt').executeTakeFirstOrThrow();
    await killedUpload(alice, '/api/v1/files/keep/version.txt', 4 * 1024 * 1024, 256 * 1024);
    expect(await readFile(path.join(userDir(alice), 'keep/version.txt'), 'utf8')).toBe('old version');
    const after = await t.app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', alice.user.id).where('path', '=', 'keep/version.txt').executeTakeFirstOrThrow();
    expect(after).toEqual(before);
  });

  it('answers 413 with Connection: close when the declared size is over quota, without reading the body', async () => {
    const small = await createUserWithKey(t.app, { quotaBytes: 1024 });
    const res = await send('PUT', '/api/v1/files/too-big.bin', small, Buffer.alloc(64 * 1024));
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect(JSON.parse(res.body).error.code).toBe('quota_exceeded');
    expect(existsSync(path.join(userDir(small), 'too-big.bin'))).toBe(false);
  });

  it('refuses raw dot-segment and encoded traversal paths that no client library normalised (400)', async () => {
    for (const raw of [
      '/api/v1/files/../../etc/passwd',
      '/api/v1/files/a/../../x',
      '/api/v1/files/%2e%2e/%2e%2e/x',
      '/api/v1/files/a/%2E%2E/b',
      '/api/v1/files/a%2f..%2f..%2fx',
      '/api/v1/files/a%5c..%5cx',
      '/api/v1/files/a%00b',
      '/api/v1/files/a//b',
      '/api/v1/meta/..',
      '/api/v1/dirs/./a',
    ]) {
      for (const method of raw.startsWith('/api/v1/files') ? ['PUT', 'GET', 'DELETE'] : ['GET']) {
        const res = await send(method, raw, alice, method === 'PUT' ? Buffer.from('evil') : undefined);
        expect(res.status, `${method} ${raw}`).toBe(400);
        expect(JSON.parse(res.body).error.code, `${method} ${raw}`).toBe('invalid_path');
      }
    }
    expect(existsSync(path.join(t.config.storageRoot, 'x'))).toBe(false);
    expect(existsSync(path.join(t.dir, 'x'))).toBe(false);
  });

  /** A chunked upload (no Content-Length), sent in `parts` pieces. */
  function chunkedUpload(user: TestUser, rawPath: string, parts: Buffer[]): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: rawPath, headers: { ...user.headers, 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(err)));
      for (const part of parts) req.write(part);
      req.end();
    });
  }

  it('accepts a chunked upload without Content-Length, and refuses one that outgrows the quota (413, nothing kept)', async () => {
    const ok = await chunkedUpload(alice, '/api/v1/files/chunked/ok.bin', [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2)]);
    expect(ok.status).toBe(201);
    expect(JSON.parse(ok.body).size).toBe(3000);
    const small = await createUserWithKey(t.app, { quotaBytes: 4096 });
    const over = await chunkedUpload(small, '/api/v1/files/deep/over.bin', Array.from({ length: 8 }, () => Buffer.alloc(1024)));
    expect(over.status).toBe(413);
    await vi.waitFor(async () => expect(existsSync(path.join(userDir(small), 'deep'))).toBe(false), { timeout: 10_000, interval: 10 });
    expect(await tempFilesBelow(userDir(small))).toEqual([]);
  });

  it('serves a share link to an anonymous client over the socket', async () => {
    await send('PUT', '/api/v1/files/pub/hello.txt', alice, Buffer.from('hello, world'));
    const created = await send('POST', '/api/v1/shares', alice, Buffer.from(JSON.stringify({ path: 'pub/hello.txt' })), { 'content-type': 'application/json' });
    expect(created.status).toBe(201);
    const { url } = JSON.parse(created.body);
    const res = await new Promise<RawResponse>((resolve, reject) => {
      http.get(`http://127.0.0.1:${port}${new URL(url).pathname}`, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks).toString('utf8') }));
      }).on('error', reject);
    });
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello, world');
  });

  it('streams a multi-megabyte upload and download intact', async () => {
    const body = Buffer.alloc(12 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    const up = await send('PUT', '/api/v1/files/big/blob.bin', alice, body);
    expect(up.status).toBe(201);
    const down = await new Promise<Buffer>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/api/v1/files/big/blob.bin', headers: alice.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
    });
    expect(down.equals(body)).toBe(true);
  });

  /** GET with the given headers over the socket; the whole body as bytes. */
  function getBytes(rawPath: string, user: TestUser, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: rawPath, headers: { ...user.headers, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      }).on('error', reject);
    });
  }

  it('answers ranges that span the server\'s 1 MiB read buffers with exactly the requested bytes', async () => {
    const MiB = 1024 * 1024;
    const body = Buffer.alloc(3 * MiB + 777);
    for (let i = 0; i + 4 <= body.length; i += 4) body.writeUInt32BE(i, i);
    expect((await send('PUT', '/api/v1/files/ranges/blob.bin', alice, body)).status).toBe(201);
    for (const [start, end] of [[MiB - 3, 2 * MiB + 5], [0, 3 * MiB + 776], [2 * MiB, 3 * MiB + 100], [5, 5]] as const) {
      const res = await getBytes('/api/v1/files/ranges/blob.bin', alice, { range: `bytes=${start}-${end}` });
      expect(res.status).toBe(206);
      expect(res.body.equals(body.subarray(start, end + 1))).toBe(true);
    }
    const whole = await getBytes('/api/v1/files/ranges/blob.bin', alice);
    expect(whole.body.equals(body)).toBe(true);
  });

  it('closes the file when a client goes away mid-download', async () => {
    const body = Buffer.alloc(16 * 1024 * 1024, 7);
    expect((await send('PUT', '/api/v1/files/gone/blob.bin', alice, body)).status).toBe(201);
    const target = path.join(userDir(alice), 'gone', 'blob.bin');
    const openHere = async () => {
      const fds = await readdir('/proc/self/fd').catch(() => null);
      if (!fds) return null; // not Linux: nothing to observe
      const links = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
      return links.filter((l) => l === target).length;
    };
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/v1/files/gone/blob.bin', headers: alice.headers }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {}); // the reset we cause
      req.on('close', resolve);
      setImmediate(() => req.on('error', reject));
    });
    await vi.waitFor(async () => expect(await openHere() ?? 0).toBe(0), { timeout: 10_000, interval: 10 });
    // The server goes on serving the same file.
    const again = await getBytes('/api/v1/files/gone/blob.bin', alice, { range: 'bytes=0-9' });
    expect(again.body.equals(body.subarray(0, 10))).toBe(true);
  });
});
