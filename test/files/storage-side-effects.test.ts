import { existsSync, lstatSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEMP_PREFIX } from '../../src/storage/safe-path.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

// Issue 12: "a GET by a brand-new user does not create their root folder as a side effect", and "free-space
// floor not enforced while streaming" (a chunked upload filled the volume to 0 before its 507).

/** Bytes of every file below `dir` (what our pretend volume holds). */
function bytesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(path.join(dir, name), { throwIfNoEntry: false });
    if (st?.isFile()) total += st.size;
  }
  return total;
}

const MiB = 1024 * 1024;

describe.each(testDialects())('files storage side effects on %s', (dialect) => {
  describe('reads create nothing', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp({ dialect });
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    it('a brand-new user reading their empty root, metadata and a missing file leaves no folder behind', async () => {
      const u = await createUserWithKey(t.app);
      const root = path.join(t.config.storageRoot, u.user.id);
      const list = await t.app.http.inject({ method: 'GET', url: '/api/v1/dirs', headers: u.headers });
      expect(list.statusCode).toBe(200);
      expect(list.json()).toMatchObject({ path: '', entries: [], next_cursor: null });
      const meta = await t.app.http.inject({ method: 'GET', url: '/api/v1/meta', headers: u.headers });
      expect(meta.statusCode).toBe(200);
      expect(meta.json()).toMatchObject({ path: '', is_directory: true });
      for (const url of ['/api/v1/files/missing.txt', '/api/v1/meta/missing.txt', '/api/v1/dirs/missing']) {
        expect((await t.app.http.inject({ method: 'GET', url, headers: u.headers })).statusCode).toBe(404);
      }
      expect((await t.app.http.inject({ method: 'HEAD', url: '/api/v1/files/missing.txt', headers: u.headers })).statusCode).toBe(404);
      expect(existsSync(root)).toBe(false);

      // The first write creates it.
      const put = await t.app.http.inject({ method: 'PUT', url: '/api/v1/files/a.txt', payload: 'a', headers: u.headers });
      expect(put.statusCode).toBe(201);
      expect(readdirSync(root)).toEqual(['a.txt']);
    });
  });

  describe('free-space floor while a chunked body streams', () => {
    const capacity = 24 * MiB;
    const floor = 8 * MiB;
    let t: TestApp;
    let port: number;
    let peak = 0;
    beforeAll(async () => {
      // A pretend 24 MiB volume: free space is what the files under the storage root leave of it.
      t = await createTestApp({
        dialect,
        env: { STORMVAULT_MIN_FREE_BYTES: String(floor) },
        freeBytes: async () => {
          const used = bytesUnder(t.config.storageRoot);
          peak = Math.max(peak, used);
          return capacity - used;
        },
      });
      await t.app.http.listen({ host: '127.0.0.1', port: 0 });
      port = (t.app.http.server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    /** PUTs a chunked body (no Content-Length) of up to `total` bytes, stopping once the answer arrives. */
    function chunkedPut(url: string, headers: Record<string, string>, total: number): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        let answered = false;
        const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: url, headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() });
            req.destroy();
          });
        });
        req.on('error', (err) => (answered ? undefined : reject(err)));
        const chunk = Buffer.alloc(64 * 1024, 9);
        let sent = 0;
        const pump = () => {
          while (!answered && sent < total) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          if (!answered) req.end();
        };
        pump();
      });
    }

    it('stops at the floor with 507, keeps nothing, and other uploads still fit', async () => {
      const u = await createUserWithKey(t.app);
      const res = await chunkedPut('/api/v1/files/big/huge.bin', u.headers, 150 * MiB);
      expect(res.status).toBe(507);
      expect(JSON.parse(res.body).error.code).toBe('insufficient_storage');
      // The volume never went below the floor (plus the one stretch between two checks).
      expect(peak).toBeLessThanOrEqual(capacity - floor + MiB);
      const root = path.join(t.config.storageRoot, u.user.id);
      expect(readdirSync(root, { recursive: true }).filter((n) => String(n).includes(TEMP_PREFIX))).toEqual([]);
      expect(existsSync(path.join(root, 'big'))).toBe(false);
      expect(await t.app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', u.user.id).execute()).toEqual([]);

      // Room was kept for everyone else.
      const small = await t.app.http.inject({ method: 'PUT', url: '/api/v1/files/small.txt', payload: 'still fits', headers: u.headers });
      expect(small.statusCode).toBe(201);
    });
  });
});
