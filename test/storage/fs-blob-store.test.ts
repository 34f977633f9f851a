import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { InvalidBlobKey, StorageFull, type ScanEntry } from '../../src/storage/blob-store.port.ts';
import { FsBlobStore, nodeScanFs, type ScanFs } from '../../src/storage/fs-blob-store.ts';
import { TEMP_PREFIX } from '../../src/storage/safe-path.ts';
import { describeBlobStoreConformance } from './blob-store.conformance.ts';

const dirs: string[] = [];
async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sv-fsblob-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describeBlobStoreConformance('fs', async () => new FsBlobStore(await tempRoot()));

async function scanAll(store: FsBlobStore, prefix = ''): Promise<ScanEntry[]> {
  const out: ScanEntry[] = [];
  for await (const batch of store.scan(prefix)) out.push(...batch);
  return out;
}

describe(FsBlobStore.name, () => {
  let root: string;
  let sut: FsBlobStore;
  beforeEach(async () => {
    root = await tempRoot();
    sut = new FsBlobStore(root);
  });

  describe('symbolic links are never followed', () => {
    beforeEach(async () => {
      const outside = await tempRoot();
      await writeFile(path.join(outside, 'secret'), 'secret');
      await mkdir(path.join(root, 'u'));
      await writeFile(path.join(root, 'u', 'real.txt'), 'real');
      await symlink(outside, path.join(root, 'u', 'out'));
      await symlink(path.join(root, 'u'), path.join(root, 'u', 'in'));
      await symlink(path.join(outside, 'secret'), path.join(root, 'u', 'file-link'));
    });

    it('refuses keys through or at a link, telling an escape from an internal link', async () => {
      await expect(sut.stat('u/out/secret')).rejects.toMatchObject({ constructor: InvalidBlobKey, reason: 'outside_root' });
      await expect(sut.stat('u/in/real.txt')).rejects.toMatchObject({ constructor: InvalidBlobKey, reason: 'symlink' });
      await expect(sut.open('u/file-link')).rejects.toBeInstanceOf(InvalidBlobKey);
      await expect(sut.stage('u/out/x', Readable.from(['x']))).rejects.toBeInstanceOf(InvalidBlobKey);
      await expect(sut.ensureFolder('u/out/sub')).rejects.toBeInstanceOf(InvalidBlobKey);
      await expect(sut.remove('u/out/secret')).rejects.toBeInstanceOf(InvalidBlobKey);
      await expect(sut.move('u/real.txt', 'u/out/stolen')).rejects.toBeInstanceOf(InvalidBlobKey);
      await expect(sut.stageCopy('u/out', 'u/copy')).rejects.toBeInstanceOf(InvalidBlobKey);
      expect(await readdir(path.dirname(path.join(root, 'u', 'out')))).not.toContain('copy');
    });

    it('scan reports links as skipped and never descends into them', async () => {
      const entries = await scanAll(sut);
      expect(entries.map((e) => `${e.kind}:${e.key}`)).toEqual(['folder:u', 'skipped:u/file-link', 'skipped:u/in', 'skipped:u/out', 'file:u/real.txt']);
      expect(entries.filter((e) => e.kind === 'skipped').every((e) => e.kind === 'skipped' && e.reason === 'symlink')).toBe(true);
    });

    it('list leaves links out and refuses to list through one', async () => {
      expect((await sut.list('u')).map((e) => e.name)).toEqual(['real.txt']);
      await expect(sut.list('u/out')).rejects.toMatchObject({ constructor: InvalidBlobKey, reason: 'outside_root' });
      await expect(sut.list('u/in')).rejects.toMatchObject({ constructor: InvalidBlobKey, reason: 'symlink' });
    });

    it('copies of a tree leave links out', async () => {
      const copy = await sut.stageCopy('u', 'v');
      await copy.commit();
      expect(await readdir(path.join(root, 'v'))).toEqual(['real.txt']);
    });
  });

  it('scan skips temp files and reports names that cannot be keys, special files and unreadable folders', async () => {
    await mkdir(path.join(root, 'd', 'locked'), { recursive: true });
    await writeFile(path.join(root, 'd', `${TEMP_PREFIX}inflight`), 'partial');
    await writeFile(path.join(root, 'd', 'e\u0301'), 'not NFC');
    await writeFile(path.join(root, 'd', Buffer.from([0x62, 0xff, 0x62]).toString('latin1')), 'ok latin1 name');
    execFileSync('mkfifo', [path.join(root, 'd', 'fifo')]);
    await writeFile(path.join(root, 'd', 'locked', 'x'), 'x');
    const denying: ScanFs = {
      ...nodeScanFs,
      readdir: (dir) => {
        if (dir.endsWith('/locked')) throw Object.assign(new Error(`EACCES: permission denied, scandir '${dir}'`), { code: 'EACCES' });
        return nodeScanFs.readdir(dir);
      },
    };
    const entries = await scanAll(new FsBlobStore(root, { scanFs: denying }));
    const summary = entries.map((e) => `${e.kind}:${e.key}${e.kind === 'skipped' ? `:${e.reason}` : e.kind === 'unreadable' ? `:${e.code}` : ''}`);
    expect(summary).toEqual([
      'folder:d',
      'file:d/b\u00ffb',
      'skipped:d/e\u0301:invalid_name',
      'skipped:d/fifo:special',
      'folder:d/locked',
      'unreadable:d/locked:EACCES',
    ]);
  });

  it('list leaves out what scan skips: temp files, names that cannot be keys, special files, non-UTF-8 names', async () => {
    await mkdir(path.join(root, 'd', 'sub'), { recursive: true });
    await writeFile(path.join(root, 'd', `${TEMP_PREFIX}inflight`), 'partial');
    await writeFile(path.join(root, 'd', 'e\u0301'), 'not NFC');
    await writeFile(path.join(root, 'd', 'ok \ufffd name'), 'a real U+FFFD');
    await writeFile(Buffer.concat([Buffer.from(path.join(root, 'd') + '/'), Buffer.from([0x61, 0xff])]), 'x');
    execFileSync('mkfifo', [path.join(root, 'd', 'fifo')]);
    const names = (await sut.list('d')).map((e) => e.name).sort();
    expect(names).toEqual(['ok \ufffd name', 'sub']);
  });

  it('scan reports names that are not valid UTF-8 with their bytes', async () => {
    await mkdir(path.join(root, 'd'));
    await writeFile(Buffer.concat([Buffer.from(path.join(root, 'd') + '/'), Buffer.from([0x61, 0xff])]), 'x');
    const entries = await scanAll(sut);
    expect(entries[1]).toMatchObject({ kind: 'skipped', reason: 'invalid_name', rawNameHex: '61ff' });
  });

  it('scan yields batches over many folders', async () => {
    for (let i = 0; i < 12; i++) {
      await mkdir(path.join(root, `f${i}`));
      for (let j = 0; j < 100; j++) await writeFile(path.join(root, `f${i}`, `n${j}`), '');
    }
    let batches = 0;
    let count = 0;
    for await (const batch of sut.scan('')) {
      batches++;
      count += batch.length;
    }
    expect(count).toBe(12 * 101);
    expect(batches).toBeGreaterThan(1);
  });

  describe('uploads larger than the early-writeback stretch (32 MiB; issue 12)', () => {
    const mib = 1024 * 1024;
    /** `total` bytes in 1 MiB chunks of varying content; fails instead of ending when `failAt` is reached. */
    const body = (total: number, failAt = Infinity) => {
      let produced = 0;
      return new Readable({
        read() {
          if (produced >= failAt) return void this.destroy(new Error('client went away'));
          if (produced >= total) return void this.push(null);
          this.push(Buffer.alloc(mib, produced / mib));
          produced += mib;
        },
      });
    };

    it('stores the exact bytes with the right size and sha256 while flushing in the background', async () => {
      const staged = await sut.stage('big.bin', body(80 * mib));
      const expected = createHash('sha256');
      for (let i = 0; i < 80; i++) expected.update(Buffer.alloc(mib, i));
      expect(staged.size).toBe(80 * mib);
      expect(staged.sha256).toBe(expected.digest('hex'));
      await staged.commit();
      expect((await stat(path.join(root, 'big.bin'))).size).toBe(80 * mib);
      expect(await readdir(root)).toEqual(['big.bin']);
    });

    it('an upload that fails after a flush started keeps nothing and leaves no temp file', async () => {
      await expect(sut.stage('big.bin', body(80 * mib, 40 * mib))).rejects.toThrow();
      expect(await readdir(root)).toEqual([]);
    });
  });

  describe('free-space floor (issue 12)', () => {
    /** A pretend volume of `capacity` bytes: free space is what the files under the root leave. */
    const volume = (capacity: number) => async () => capacity - Number(execFileSync('du', ['-sb', root]).toString().split('\t')[0]);

    it('aborts a stream at the floor while it arrives, keeping nothing', async () => {
      const mib = 1024 * 1024;
      const store = new FsBlobStore(root, { freeBytes: volume(8 * mib) });
      let produced = 0;
      const source = new Readable({
        read() {
          if (produced >= 64 * mib) return void this.push(null);
          produced += 64 * 1024;
          this.push(Buffer.alloc(64 * 1024, 7));
        },
      });
      await expect(store.stage('big', source, { minFreeBytes: 4 * mib })).rejects.toBeInstanceOf(StorageFull);
      // Stopped near the floor (4 MiB of the 8 MiB volume), far before the 64 MiB body ended.
      expect(produced).toBeLessThan(8 * mib);
      expect(await readdir(root)).toEqual([]);
    });

    it('refuses before reading when already below the floor, and ignores the floor when unset', async () => {
      const store = new FsBlobStore(root, { freeBytes: async () => 100 });
      const source = Readable.from([Buffer.from('x')]);
      await expect(store.stage('a', source, { minFreeBytes: 1000 })).rejects.toBeInstanceOf(StorageFull);
      await (await store.stage('a', Readable.from([Buffer.from('x')]))).commit();
      expect((await stat(path.join(root, 'a'))).size).toBe(1);
    });
  });
});
