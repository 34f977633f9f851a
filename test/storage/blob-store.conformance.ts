import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { blobKey, compareKeys } from '../../src/storage/blob-key.ts';
import {
  BlobConflict,
  BlobNotFound,
  InvalidBlobKey,
  LimitExceeded,
  UploadAborted,
  type BlobStore,
  type ScanEntry,
} from '../../src/storage/blob-store.port.ts';

// One conformance suite for every BlobStore adapter (DESIGN.md: "each port with one conformance suite run
// against every adapter"). An adapter's test file calls describeBlobStoreConformance with a factory that
// returns a fresh, empty store for each test.

export type StoreFactory = () => Promise<BlobStore>;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const body = (b: Buffer | string) => Readable.from([Buffer.from(b)]);

/** A body delivered in many small chunks (as a socket does). */
function chunked(data: Buffer, chunk = 64 * 1024): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      this.push(data.subarray(at, at + chunk));
      at += chunk;
    },
  });
}

async function put(store: BlobStore, key: string, data: Buffer | string): Promise<void> {
  if (store.folders === 'explicit') {
    const parent = key.includes('/') ? key.slice(0, key.lastIndexOf('/')) : '';
    await store.ensureFolder(parent);
  }
  const staged = await store.stage(key, body(data));
  await staged.commit();
}

async function read(store: BlobStore, key: string, range?: { start: number; end: number }): Promise<string> {
  const h = await store.open(key);
  return (await buffer(h.stream(range))).toString();
}

async function scanAll(store: BlobStore, prefix = ''): Promise<ScanEntry[]> {
  const out: ScanEntry[] = [];
  for await (const batch of store.scan(prefix)) out.push(...batch);
  return out;
}

const listing = (entries: ScanEntry[]) => entries.map((e) => `${e.kind}:${e.key}${e.kind === 'file' ? `:${e.size}` : ''}`);

export function describeBlobStoreConformance(adapter: string, newStore: StoreFactory): void {
  describe(`BlobStore conformance: ${adapter}`, () => {
    let sut: BlobStore;
    beforeEach(async () => {
      sut = await newStore();
    });

    describe('keys', () => {
      const bad = ['../x', 'a/../b', 'a//b', '/a', 'a/', '.', '.sv-tmp-abc', 'a/.sv-tmp-x', 'a\\b', 'a\u0000b', 'a\nb', 'e\u0301', '\ud800'];
      it.each(bad)('refuses %j everywhere, changing nothing', async (key) => {
        await expect(sut.stat(key)).rejects.toBeInstanceOf(InvalidBlobKey);
        await expect(sut.open(key)).rejects.toBeInstanceOf(InvalidBlobKey);
        await expect(sut.stage(key, body('x'))).rejects.toBeInstanceOf(InvalidBlobKey);
        await expect(sut.remove(key)).rejects.toBeInstanceOf(InvalidBlobKey);
        await expect(sut.move('ok', key)).rejects.toBeInstanceOf(InvalidBlobKey);
        await expect(sut.ensureFolder(key)).rejects.toBeInstanceOf(InvalidBlobKey);
        expect(await scanAll(sut)).toEqual([]);
      });

      it('blobKey() joins, normalises to NFC and validates', () => {
        expect(blobKey('u1', 'docs/e\u0301.txt')).toBe('u1/docs/\u00e9.txt');
        expect(blobKey('', 'a')).toBe('a');
        expect(() => blobKey('u1', '../x')).toThrow(InvalidBlobKey);
      });

      it('compareKeys() is the byte order of UTF-8', () => {
        fc.assert(
          fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
            expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
          }),
        );
      });
    });

    describe('stage and commit', () => {
      it('hashes and counts while streaming, and shows nothing before commit', async () => {
        const data = randomBytes(3 * 1024 * 1024 + 17);
        await sut.ensureFolder('docs');
        const staged = await sut.stage('docs/big.bin', chunked(data));
        expect(staged.size).toBe(data.length);
        expect(staged.sha256).toBe(sha(data));
        expect(await sut.stat('docs/big.bin')).toBeNull();
        expect(listing(await scanAll(sut))).toEqual(sut.folders === 'explicit' ? ['folder:docs'] : []);
        const st = await staged.commit();
        expect(st).toMatchObject({ kind: 'file', size: data.length });
        expect(st.version).toEqual(expect.any(String));
        const h = await sut.open('docs/big.bin');
        expect(h.stat).toMatchObject({ kind: 'file', size: data.length, version: st.version });
        expect(sha(await buffer(h.stream()))).toBe(sha(data));
      });

      it('an empty body is an empty file', async () => {
        const staged = await sut.stage('empty', Readable.from([]));
        expect(staged).toMatchObject({ size: 0, sha256: sha(Buffer.alloc(0)) });
        await staged.commit();
        expect(await read(sut, 'empty')).toBe('');
        expect(await sut.stat('empty')).toMatchObject({ kind: 'file', size: 0 });
      });

      it('a source that already ended stages what is left of it (nothing), without waiting forever', async () => {
        const source = body('consumed');
        await buffer(source);
        const staged = await sut.stage('late', source);
        expect(staged.size).toBe(0);
        await staged.abort();
      });

      it('replaces a file atomically, with a new version', async () => {
        await put(sut, 'a.txt', 'old');
        const before = (await sut.stat('a.txt'))!;
        const staged = await sut.stage('a.txt', body('new content'));
        expect(await read(sut, 'a.txt')).toBe('old');
        const after = await staged.commit();
        expect(await read(sut, 'a.txt')).toBe('new content');
        expect(after.version).not.toBe(before.version);
        expect(after.size).toBe(11);
      });

      it('commits under another name in the same folder, never elsewhere', async () => {
        await sut.ensureFolder('d');
        const staged = await sut.stage('d/incoming', body('abc'));
        await expect(staged.commit('other/abc')).rejects.toBeInstanceOf(InvalidBlobKey);
        await sut.stage('d/incoming', body('abc')).then((s) => s.commit(`d/${s.sha256}`));
        expect(listing(await scanAll(sut, 'd'))).toEqual([`file:d/${sha(Buffer.from('abc'))}:3`]);
      });

      it('abort leaves nothing, and is idempotent', async () => {
        await sut.ensureFolder('d');
        const staged = await sut.stage('d/x', body('abc'));
        await staged.abort();
        await staged.abort();
        expect(await sut.stat('d/x')).toBeNull();
        expect(await scanAll(sut, 'd')).toEqual([]);
        expect(await sut.hasEntries('d')).toBe(false);
      });

      it('refuses a body over maxBytes with LimitExceeded, keeps nothing and leaves the source alive', async () => {
        const source = chunked(randomBytes(4_000_000), 1000);
        await expect(sut.stage('big', source, { maxBytes: 100_000 })).rejects.toBeInstanceOf(LimitExceeded);
        expect(source.destroyed).toBe(false);
        expect(await sut.stat('big')).toBeNull();
        expect(await scanAll(sut)).toEqual([]);
        // Exactly at the limit is fine.
        await (await sut.stage('ok', body(Buffer.alloc(10)), { maxBytes: 10 })).commit();
        expect((await sut.stat('ok'))!.size).toBe(10);
      });

      it('a source that fails mid-way is UploadAborted and keeps nothing', async () => {
        let sent = 0;
        const source = new Readable({
          read() {
            if (sent++ < 3) this.push(Buffer.alloc(64 * 1024, 1));
            else this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
          },
        });
        await expect(sut.stage('cut', source)).rejects.toBeInstanceOf(UploadAborted);
        expect(await sut.stat('cut')).toBeNull();
        expect(await scanAll(sut)).toEqual([]);
      });

      it('a source closed before its end is UploadAborted', async () => {
        const source = new Readable({ read() {} });
        source.push(Buffer.from('partial'));
        const staging = sut.stage('cut', source);
        setImmediate(() => source.destroy());
        await expect(staging).rejects.toBeInstanceOf(UploadAborted);
        expect(await scanAll(sut)).toEqual([]);
      });

      if (adapter.startsWith('fs')) {
        it('needs the folder to exist (explicit folders)', async () => {
          await expect(sut.stage('nope/x', body('a'))).rejects.toBeInstanceOf(BlobNotFound);
        });
      }

      it('refuses to commit over a folder', async () => {
        await put(sut, 'd/inner', 'x');
        const staged = await sut.stage('d', body('file'));
        await expect(staged.commit()).rejects.toMatchObject({ constructor: BlobConflict, reason: 'is_folder' });
        expect(await read(sut, 'd/inner')).toBe('x');
      });
    });

    describe('reads', () => {
      it('stat tells files, folders and nothing apart', async () => {
        await put(sut, 'f/g/h.txt', 'hello');
        expect(await sut.stat('f/g/h.txt')).toMatchObject({ kind: 'file', size: 5 });
        expect(await sut.stat('f/g')).toMatchObject({ kind: 'folder', size: 0, version: null });
        expect(await sut.stat('f')).toMatchObject({ kind: 'folder' });
        expect(await sut.stat('')).toMatchObject({ kind: 'folder' });
        expect(await sut.stat('f/none')).toBeNull();
        expect(await sut.stat('nothing/at/all')).toBeNull();
      });

      it('open streams a byte range, and close releases without streaming', async () => {
        await put(sut, 'r.txt', '0123456789');
        expect(await read(sut, 'r.txt', { start: 2, end: 5 })).toBe('2345');
        expect(await read(sut, 'r.txt', { start: 9, end: 9 })).toBe('9');
        expect(await read(sut, 'r.txt')).toBe('0123456789');
        const h = await sut.open('r.txt');
        expect(h.stat.size).toBe(10);
        await h.close();
        await h.close();
      });

      it('open refuses missing keys and folders with typed errors', async () => {
        await put(sut, 'd/x', 'x');
        await expect(sut.open('missing')).rejects.toBeInstanceOf(BlobNotFound);
        await expect(sut.open('d')).rejects.toMatchObject({ constructor: BlobConflict, reason: 'is_folder' });
      });

      it('hasEntries sees content, not empty or missing folders', async () => {
        await put(sut, 'd/x', 'x');
        expect(await sut.hasEntries('d')).toBe(true);
        expect(await sut.hasEntries('')).toBe(true);
        expect(await sut.hasEntries('none')).toBe(false);
        expect(await sut.hasEntries('d/x')).toBe(false);
      });
    });

    describe('folders', () => {
      it('ensureFolder reports what it created, and removeEmptyFolders undoes exactly that', async () => {
        const created = await sut.ensureFolder('a/b/c');
        if (sut.folders === 'implied') {
          expect(created).toEqual([]);
          return;
        }
        expect(created).toEqual(['a', 'a/b', 'a/b/c']);
        expect(await sut.ensureFolder('a/b/c')).toEqual([]);
        expect(await sut.ensureFolder('a/b/d')).toEqual(['a/b/d']);
        await put(sut, 'a/b/d/keep', 'k');
        await sut.removeEmptyFolders(created);
        expect(listing(await scanAll(sut))).toEqual(['folder:a', 'folder:a/b', 'folder:a/b/d', 'file:a/b/d/keep:1']);
      });

      it('ensureFolder refuses a file on the way', async () => {
        await put(sut, 'file', 'x');
        if (sut.folders === 'explicit') await expect(sut.ensureFolder('file/sub')).rejects.toMatchObject({ constructor: BlobConflict, reason: 'not_folder' });
      });
    });

    describe('remove and move', () => {
      it('removes a file, a whole tree, and nothing without complaint', async () => {
        await put(sut, 't/a', 'a');
        await put(sut, 't/s/b', 'b');
        await put(sut, 'keep', 'k');
        await sut.remove('t/a');
        expect(await sut.stat('t/a')).toBeNull();
        await sut.remove('t');
        expect(await sut.stat('t')).toBeNull();
        await sut.remove('t');
        expect(listing(await scanAll(sut))).toEqual(['file:keep:1']);
      });

      it('moves a file, replacing a file at the target', async () => {
        await put(sut, 'm/a', 'A');
        await put(sut, 'm/b', 'B');
        await sut.move('m/a', 'm/b');
        expect(await sut.stat('m/a')).toBeNull();
        expect(await read(sut, 'm/b')).toBe('A');
        await sut.ensureFolder('n');
        await sut.move('m/b', 'n/c');
        expect(await read(sut, 'n/c')).toBe('A');
      });

      it('moves a folder tree', async () => {
        await put(sut, 'src/x/1', '1');
        await put(sut, 'src/2', '22');
        await sut.move('src', 'dst');
        expect(listing(await scanAll(sut))).toEqual(['folder:dst', 'file:dst/2:2', 'folder:dst/x', 'file:dst/x/1:1']);
      });

      it('refuses moves onto folders and from nothing', async () => {
        await put(sut, 'a', 'a');
        await put(sut, 'f/x', 'x');
        await put(sut, 'g/y', 'y');
        await expect(sut.move('none', 'b')).rejects.toBeInstanceOf(BlobNotFound);
        await expect(sut.move('a', 'f')).rejects.toMatchObject({ constructor: BlobConflict, reason: 'is_folder' });
        await expect(sut.move('g', 'a')).rejects.toMatchObject({ constructor: BlobConflict, reason: 'exists' });
        expect(await read(sut, 'a')).toBe('a');
      });
    });

    describe('stageCopy', () => {
      it('copies a file and a tree, visible only after commit', async () => {
        await put(sut, 's/one', '1');
        await put(sut, 's/sub/two', '22');
        const file = await sut.stageCopy('s/one', 's/one-copy');
        expect(file.entries).toEqual([{ rel: '', kind: 'file', size: 1, mtimeMs: expect.any(Number) }]);
        expect(await sut.stat('s/one-copy')).toBeNull();
        await file.commit();
        expect(await read(sut, 's/one-copy')).toBe('1');

        const tree = await sut.stageCopy('s', 'copy');
        expect(tree.entries.map((e) => `${e.kind}:${e.rel}`).sort()).toEqual(['file:one', 'file:one-copy', 'file:sub/two', 'folder:', 'folder:sub'].sort());
        expect(await sut.stat('copy')).toBeNull();
        await tree.commit();
        expect(listing(await scanAll(sut, 'copy'))).toEqual(['file:copy/one:1', 'file:copy/one-copy:1', 'folder:copy/sub', 'file:copy/sub/two:2']);
        expect(await read(sut, 's/sub/two')).toBe('22');
      });

      it('abort drops the copy', async () => {
        await put(sut, 's/one', '1');
        const copy = await sut.stageCopy('s', 't');
        await copy.abort();
        expect(listing(await scanAll(sut))).toEqual(['folder:s', 'file:s/one:1']);
        await expect(sut.stageCopy('missing', 'x')).rejects.toBeInstanceOf(BlobNotFound);
      });
    });

    describe('list', () => {
      it('gives the direct children of a folder with the stat (and version) stat() gives', async () => {
        for (const f of ['d/a', 'd/é', 'd/sub/deep', 'd-x', 'top']) await put(sut, f, f);
        const got = await sut.list('d');
        expect(got.map((e) => e.name).sort(compareKeys)).toEqual(['a', 'sub', 'é']);
        for (const e of got) {
          const st = await sut.stat(`d/${e.name}`);
          const { name: _name, ...listed } = e;
          // s3 keeps no time for folders (0 either way); a file's version must be the one stat() and open() see.
          expect(listed).toEqual(st);
        }
        expect(got.find((e) => e.name === 'a')).toMatchObject({ kind: 'file', size: 3, version: expect.any(String) });
        expect(got.find((e) => e.name === 'sub')).toMatchObject({ kind: 'folder', size: 0, version: null });
        expect((await sut.list('')).map((e) => e.name).sort(compareKeys)).toEqual(['d', 'd-x', 'top']);
      });

      it('is empty for a file or nothing, and hides stages in flight', async () => {
        await put(sut, 'f/one', '1');
        const staged = await sut.stage('f/two', body('2'));
        expect((await sut.list('f')).map((e) => e.name)).toEqual(['one']);
        await staged.abort();
        expect(await sut.list('f/one')).toEqual([]);
        expect(await sut.list('missing')).toEqual([]);
      });

      it('changes version when a file is replaced', async () => {
        await put(sut, 'v/file', 'old');
        const before = (await sut.list('v'))[0]!;
        await put(sut, 'v/file', 'newer');
        const after = (await sut.list('v'))[0]!;
        expect(after.version).not.toBe(before.version);
        expect(after.size).toBe(5);
      });
    });

    describe('scan', () => {
      it('yields every entry below the prefix in UTF-8 byte order, folders included', async () => {
        const files = ['a/b', 'a-c', 'a b', 'Z', 'é', '😀', '\uff5e', 'a/b2/c', 'a/b-/d', 'x/y/z/deep'];
        for (const f of files) await put(sut, f, f);
        const keys = (await scanAll(sut)).map((e) => e.key);
        const expected = new Set<string>();
        for (const f of files) {
          const parts = f.split('/');
          for (let i = 1; i <= parts.length; i++) expected.add(parts.slice(0, i).join('/'));
        }
        expect(keys).toEqual([...expected].sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q))));
        const entries = await scanAll(sut);
        expect(entries.find((e) => e.key === 'a')).toMatchObject({ kind: 'folder', size: 0 });
        expect(entries.find((e) => e.key === '😀')).toMatchObject({ kind: 'file', size: 4, mtimeMs: expect.any(Number) });
      });

      it('limits to the prefix, not names that merely start with it', async () => {
        for (const f of ['p/1', 'p/q/2', 'p-x', 'pp/3']) await put(sut, f, 'x');
        expect(listing(await scanAll(sut, 'p'))).toEqual(['file:p/1:1', 'folder:p/q', 'file:p/q/2:1']);
        expect(await scanAll(sut, 'p/1')).toEqual([]);
        expect(await scanAll(sut, 'none')).toEqual([]);
      });

      it('agrees with random trees (fast-check)', async () => {
        const name = fc.constantFrom('a', 'b', 'a-', 'a.b', 'ä', '𝄞', 'Ω', 'z');
        await fc.assert(
          fc.asyncProperty(fc.uniqueArray(fc.array(name, { minLength: 1, maxLength: 3 }).map((p) => p.join('/')), { maxLength: 12 }), async (paths) => {
            const store = await newStore();
            const written: string[] = [];
            for (const p of paths) {
              // A path that runs through an earlier file cannot be written on any store.
              if (written.some((w) => p.startsWith(`${w}/`) || w.startsWith(`${p}/`))) continue;
              await put(store, p, 'x');
              written.push(p);
            }
            const keys = new Set<string>();
            for (const w of written) {
              const parts = w.split('/');
              for (let i = 1; i <= parts.length; i++) keys.add(parts.slice(0, i).join('/'));
            }
            const got = (await scanAll(store)).map((e) => e.key);
            expect(got).toEqual([...keys].sort(compareKeys));
          }),
          { numRuns: 15 },
        );
      });
    });

    it('freeBytes is a number or null', async () => {
      const free = await sut.freeBytes();
      expect(free === null || (Number.isFinite(free) && free >= 0)).toBe(true);
    });
  });
}
