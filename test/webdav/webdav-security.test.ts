import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { startDavServer, type DavServer } from './helpers.ts';

const SECRET = "alice's secret: must never be served or changed";

/** Every entry below `dir` with a hash of its content: what must not change. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const abs = path.join(d, name);
      const st = await lstat(abs);
      if (st.isDirectory()) {
        out.set(abs, 'dir');
        await visit(abs);
      } else out.set(abs, createHash('sha256').update(await readFile(abs)).digest('hex'));
    }
  };
  await visit(dir);
  return out;
}

/** A raw request: the path goes on the wire exactly as given (fetch would resolve the dot segments). */
function raw(base: string, method: string, rawPath: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'OPTIONS'];

describe.each(testDialects())('WebDAV security on %s', (dialect) => {
  let s: DavServer;
  let aliceRoot: string;
  beforeAll(async () => {
    s = await startDavServer(dialect);
    await s.t.app.files.mkdir(s.alice.user.id, 'private');
    const { Readable } = await import('node:stream');
    await s.t.app.files.put(s.alice.user.id, 'private/secret.txt', Readable.from([SECRET]));
    // Bob has a file of his own so that COPY/MOVE sources exist.
    await s.t.app.files.put(s.bob.user.id, 'mine.txt', Readable.from(['bob']));
    aliceRoot = path.join(s.t.config.storageRoot, s.alice.user.id);
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  it("bob reaches none of alice's files through any method, path or Destination", async () => {
    const before = await snapshot(aliceRoot);
    const aliceId = s.alice.user.id;
    const host = new URL(s.base).host;
    const targets = [
      `/dav/${aliceId}/private/secret.txt`,
      `/dav/../${aliceId}/private/secret.txt`,
      `/dav/%2e%2e/${aliceId}/private/secret.txt`,
      `/dav/..%2f${aliceId}%2fprivate%2fsecret.txt`,
      `/dav/%2e%2e%2f%2e%2e%2f${aliceId}/private`,
      `/dav/private/secret.txt`,
      `/dav//${aliceId}`,
      `/dav/..\\${aliceId}\\private`,
      ...fc.sample(
        fc.array(fc.constantFrom('..', '.', '%2e%2e', '%2f', '%5c', aliceId, 'private', 'secret.txt', '%00', '%c0%ae', '~'), { minLength: 1, maxLength: 5 }),
        { numRuns: 40, seed: 13 },
      ).map((segs) => `/dav/${segs.join('/')}`),
    ];
    const destinations = [
      `http://${host}/dav/../${aliceId}/private/secret.txt`,
      `http://${host}/dav/%2e%2e/${aliceId}/private/stolen.txt`,
      `http://elsewhere.example/dav/private/secret.txt`,
      `http://${host}/api/v1/files/private/secret.txt`,
      `/dav/../../${aliceId}/private/secret.txt`,
      `/${aliceId}/private/secret.txt`,
      `file:///etc/passwd`,
      `/dav/%2e%2e/${aliceId}/private/secret.txt`,
    ];
    const auth = { authorization: s.basic(s.bob, s.bob.key) };
    const leaks: string[] = [];
    const check = (what: string, r: { status: number; text: string }) => {
      // Error messages may echo what bob typed (alice's id among it); her content must never appear.
      if (r.text.includes(SECRET)) leaks.push(`${what} → ${r.status}`);
      // 502 is RFC 4918's answer to a Destination on another server; any other 5xx is a bug.
      if (r.status >= 500 && !(r.status === 502 && /elsewhere|file:/.test(what))) leaks.push(`${what} → ${r.status} (server error)`);
    };
    for (const target of targets) {
      for (const method of METHODS) {
        const body = method === 'PUT' ? 'overwritten by bob' : method === 'PROPPATCH' ? '<propertyupdate xmlns="DAV:"><set><prop><x xmlns="urn:x">1</x></prop></set></propertyupdate>' : undefined;
        check(`${method} ${target}`, await raw(s.base, method, target, { ...auth, depth: '1', destination: `/dav/bob-copy-${method}` }, body));
      }
    }
    for (const destination of destinations) {
      for (const method of ['COPY', 'MOVE']) {
        const r = await raw(s.base, method, '/dav/mine.txt', { ...auth, destination, overwrite: 'T' });
        check(`${method} → ${destination}`, r);
        expect(r.status, `${method} → ${destination}`).toBeGreaterThanOrEqual(400);
      }
    }
    // A tagged If header naming alice's file never reveals or matches it.
    check('If tag', await raw(s.base, 'PUT', '/dav/if.txt', { ...auth, if: `<http://${host}/dav/../${aliceId}/private/secret.txt> (Not <DAV:no-lock>)` }, 'x'));
    expect(leaks).toEqual([]);
    expect(await snapshot(aliceRoot)).toEqual(before);
    // And alice still reads her file.
    const mine = await raw(s.base, 'GET', '/dav/private/secret.txt', { authorization: s.basic(s.alice, s.alice.key) });
    expect(mine.text).toBe(SECRET);
    // Bob's own mine.txt is still his (every COPY/MOVE above was refused).
    expect((await raw(s.base, 'GET', '/dav/mine.txt', auth)).text).toBe('bob');
  }, 120_000);
});
