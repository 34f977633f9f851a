import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeUserPath, TEMP_PREFIX } from '../../src/storage/safe-path.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

const CANARY = 'canary: must never be served or changed';
const SECRET = "bob's secret: must never be served or changed";

/** path → sha256 of every regular file and link target below `dir`, skipping `skip` subtrees. */
async function snapshot(dir: string, skip: (abs: string) => boolean): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const abs = path.join(d, name);
      if (skip(abs)) continue;
      const st = await lstat(abs);
      if (st.isSymbolicLink()) out.set(abs, 'link');
      else if (st.isDirectory()) {
        out.set(abs, 'dir');
        await visit(abs);
      } else out.set(abs, createHash('sha256').update(await readFile(abs)).digest('hex'));
    }
  };
  await visit(dir);
  return out;
}

/** Hostile path material: traversal, encodings, separators, controls, links placed on disk, other users. */
function hostilePaths(bobId: string, count: number, seed: number): string[] {
  const segment = fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom('..', '.', '', '...', '%2e%2e', '%2E%2e', '..%2f', '%2f', '%5c', '..\\..', '\\', '~', '$HOME', '*', '?', ':') },
    { weight: 4, arbitrary: fc.constantFrom('link-out', 'link-etc', 'link-bob', 'file-link', 'inner-link', 'dangling', 'real', 'etc', 'passwd') },
    { weight: 2, arbitrary: fc.constantFrom(bobId, 'storage', 'data', 'test.db', `${TEMP_PREFIX}x`, 'x'.repeat(256), 'é'.repeat(128), 'e\u0301') },
    { weight: 4, arbitrary: fc.constantFrom('\u0000', 'a\u0000b', '\n', '\r', '\u001b[31m', '\u007f', '\u0085', '\u202e', '\ud800', '\uFEFF') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }) },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,8}$/) },
  );
  const pathArb = fc.tuple(fc.constantFrom('', '/', '//', '../', '/etc/', '\\'), fc.array(segment, { minLength: 1, maxLength: 6 }), fc.constantFrom('', '/', '/..', '/.')).map(
    ([pre, segs, post]) => pre + segs.join('/') + post,
  );
  return fc.sample(pathArb, { numRuns: count, seed });
}

function isLegal(p: string): boolean {
  try {
    normalizeUserPath(p);
    return true;
  } catch {
    return false;
  }
}

/** The path as a URL: each segment percent-encoded so the server sees exactly this string. */
const asUrlPath = (p: string) => p.split('/').map((s) => encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'))).join('/');

describe.each(testDialects())('hostile paths on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let outside: string;
  let aliceRoot: string;
  let bobRoot: string;
  let shareToken: string;

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
    bob = await createUserWithKey(t.app);
    aliceRoot = path.join(t.config.storageRoot, alice.user.id);
    bobRoot = path.join(t.config.storageRoot, bob.user.id);
    outside = path.join(t.dir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'canary.txt'), CANARY);
    await t.app.files.put(bob.user.id, 'secret.txt', Readable.from([Buffer.from(SECRET)]));
    await t.app.files.put(alice.user.id, 'real/inside.txt', Readable.from([Buffer.from('inside')]));
    await t.app.files.mkdir(alice.user.id, 'shared');
    // Links placed on disk by someone with shell access: none may be followed.
    await symlink(outside, path.join(aliceRoot, 'link-out'));
    await symlink('/etc', path.join(aliceRoot, 'link-etc'));
    await symlink(bobRoot, path.join(aliceRoot, 'link-bob'));
    await symlink(path.join(outside, 'canary.txt'), path.join(aliceRoot, 'file-link'));
    await symlink(path.join(aliceRoot, 'real'), path.join(aliceRoot, 'inner-link'));
    await symlink(path.join(outside, 'missing'), path.join(aliceRoot, 'dangling'));
    await symlink(outside, path.join(aliceRoot, 'shared', 'link-out'));
    const share = await t.app.http.inject({ method: 'POST', url: '/api/v1/shares', headers: alice.headers, payload: { path: 'shared' } });
    shareToken = share.json().token;
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('never follows a symbolic link placed on disk (400 invalid_path), whatever the endpoint', async () => {
    const inj = (method: string, url: string, payload?: unknown) =>
      t.app.http.inject({ method: method as 'GET', url, headers: alice.headers, payload: payload as string });
    for (const [method, url, payload] of [
      ['GET', '/api/v1/files/link-out/canary.txt'],
      ['GET', '/api/v1/files/file-link'],
      ['GET', '/api/v1/files/link-bob/secret.txt'],
      ['GET', '/api/v1/files/link-etc/passwd'],
      ['GET', '/api/v1/files/inner-link/inside.txt'],
      ['HEAD', '/api/v1/files/file-link'],
      ['PUT', '/api/v1/files/link-out/new.txt', 'evil'],
      ['PUT', '/api/v1/files/file-link', 'evil'],
      ['PUT', '/api/v1/files/dangling', 'evil'],
      ['PUT', '/api/v1/files/dangling/x', 'evil'],
      ['GET', '/api/v1/meta/link-out'],
      ['GET', '/api/v1/dirs/link-out'],
      ['GET', '/api/v1/dirs/link-bob'],
      ['POST', '/api/v1/dirs/link-out/sub'],
      ['DELETE', '/api/v1/files/link-out?recursive=true'],
      ['DELETE', '/api/v1/files/link-bob/secret.txt'],
      ['POST', '/api/v1/move', { from: 'link-out/canary.txt', to: 'stolen.txt' }],
      ['POST', '/api/v1/move', { from: 'real/inside.txt', to: 'link-out/planted.txt' }],
      ['POST', '/api/v1/copy', { from: 'file-link', to: 'stolen.txt' }],
      ['POST', '/api/v1/copy', { from: 'real', to: 'link-bob/planted' }],
      ['POST', '/api/v1/shares', { path: 'link-out' }],
      ['POST', '/api/v1/shares', { path: 'file-link' }],
    ] as const) {
      const res = await inj(method, url, payload);
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(payload ?? '')}`).toBe(400);
      if (method !== 'HEAD') expect(res.json().error.code).toBe('invalid_path');
    }
    const viaShare = await t.app.http.inject({ method: 'GET', url: `/s/${shareToken}/link-out/canary.txt` });
    expect(viaShare.statusCode).toBe(400);
    expect(await readFile(path.join(outside, 'canary.txt'), 'utf8')).toBe(CANARY);
    expect(await readdir(outside)).toEqual(['canary.txt']);
    expect(await readdir(bobRoot)).toEqual(['secret.txt']);
  });

  it('a copied folder leaves links behind instead of copying what they point at', async () => {
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/copy', headers: alice.headers, payload: { from: 'shared', to: 'shared-copy' } });
    expect(res.statusCode).toBe(201);
    expect(await readdir(path.join(aliceRoot, 'shared-copy'))).toEqual([]);
  });

  it('thousands of generated hostile paths at every path-taking endpoint write nothing outside the root and serve nothing from outside', async () => {
    const outsideRoots = (abs: string) => abs === aliceRoot || abs.startsWith(`${path.join(t.dir, 'data')}/stormvault.db`) || /\/test\.db(-wal|-shm|-journal)?$/.test(abs);
    const before = await snapshot(t.dir, outsideRoots);
    // Two tiers, one generator: thousands of exact strings straight into the service (URL parsing must not
    // be what saves us), and a slice of them through HTTP at every path-taking endpoint.
    // Paths that happen to be legal only create files inside the root, and each costs real disk work:
    // keep a few dozen of them, and every hostile one.
    const generated = hostilePaths(bob.user.id, 3000, 20261122);
    const legal = generated.filter(isLegal);
    const paths = [...generated.filter((p) => !isLegal(p)), ...legal.slice(0, 25)];
    const httpPaths = [...paths.slice(0, 60), ...legal.slice(25, 40)];
    const statuses = new Map<number, number>();
    const leaked: string[] = [];
    const inj = async (method: string, url: string, payload?: unknown, headers = alice.headers) => {
      const res = await t.app.http.inject({ method: method as 'GET', url, headers, payload: payload as string });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode >= 500) leaked.push(`${res.statusCode} ${method} ${url} ${JSON.stringify(payload ?? '')}: ${res.body}`);
      if (res.body.includes(CANARY) || res.body.includes(SECRET)) leaked.push(`served outside content: ${method} ${url}`);
      return res;
    };
    let calls = 0;
    const files = t.app.files;
    const me = alice.user.id;
    for (const p of paths) {
      for (const call of [
        () => files.put(me, p, Readable.from([Buffer.from('fuzz')])),
        () => files.meta(me, p),
        () => files.list(me, p),
        () => files.mkdir(me, p),
        () => files.move(me, p, 'fuzz-moved', { overwrite: true }),
        () => files.copy(me, 'real', p),
        () => files.copy(me, p, 'fuzz-copy', { overwrite: true }),
        () => files.delete(me, p, { recursive: true }),
        () => t.app.shares.open(shareToken, undefined, p),
      ]) {
        calls++;
        await call().then(
          async (result) => {
            // A share resolving to a file hands back an open descriptor: close it.
            if (result && typeof result === 'object' && 'kind' in result && result.kind === 'file') await result.file.close();
          },
          (err: { code?: string }) => {
            if (!err.code || err.code === 'internal') leaked.push(`service threw non-domain error for ${JSON.stringify(p)}: ${String(err)}`);
          },
        );
      }
    }
    for (const p of httpPaths) {
      const u = asUrlPath(p);
      await inj('PUT', `/api/v1/files/${u}`, 'fuzz');
      await inj('GET', `/api/v1/files/${u}`);
      await inj('HEAD', `/api/v1/files/${u}`);
      await inj('GET', `/api/v1/meta/${u}`);
      await inj('GET', `/api/v1/dirs/${u}`);
      await inj('POST', `/api/v1/dirs/${u}`);
      await inj('POST', '/api/v1/move', { from: p, to: 'fuzz-moved', overwrite: true });
      // Move a real file *to* the hostile path; if that was legal, move it back for the next round.
      const moved = await inj('POST', '/api/v1/move', { from: 'real/inside.txt', to: p });
      if (moved.statusCode === 200) await files.move(me, moved.json().path, 'real/inside.txt');
      await inj('POST', '/api/v1/copy', { from: 'real', to: p });
      await inj('POST', '/api/v1/copy', { from: p, to: 'fuzz-copy', overwrite: true });
      await inj('POST', '/api/v1/shares', { path: p });
      await inj('GET', `/s/${shareToken}/${u}`, undefined, {} as typeof alice.headers);
      await inj('DELETE', `/api/v1/files/${u}?recursive=true`);
      calls += 13;
    }
    if (process.env.FUZZ_DEBUG) console.log(JSON.stringify([...statuses]));
    expect(leaked).toEqual([]);
    expect(calls).toBe(paths.length * 9 + httpPaths.length * 13);
    expect(paths.length).toBeGreaterThan(2000);
    // Both refusals and (harmless) successes happened: the generator is neither all-valid nor all-invalid.
    expect(statuses.get(400)).toBeGreaterThan(httpPaths.length * 3);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);

    const after = await snapshot(t.dir, outsideRoots);
    expect([...after.entries()].filter(([k, v]) => before.get(k) !== v)).toEqual([]);
    expect([...before.keys()].filter((k) => !after.has(k))).toEqual([]);
    // Everything inside alice's root still resolves inside it, and no new link appeared.
    const realRoot = await realpath(aliceRoot);
    const inside = await snapshot(aliceRoot, () => false);
    const links = [...inside.entries()].filter(([, v]) => v === 'link').map(([k]) => path.relative(aliceRoot, k)).sort();
    expect(links).toEqual(['dangling', 'file-link', 'inner-link', 'link-bob', 'link-etc', 'link-out', 'shared/link-out']);
    for (const [abs, kind] of inside) {
      if (kind === 'link') continue;
      expect((await realpath(abs)).startsWith(realRoot + path.sep), abs).toBe(true);
    }
    expect(await readFile(path.join(outside, 'canary.txt'), 'utf8')).toBe(CANARY);
    expect(await readFile(path.join(bobRoot, 'secret.txt'), 'utf8')).toBe(SECRET);
  }, 120_000); // ~30k calls: a few seconds on an idle machine, far more on a loaded shared runner
});
