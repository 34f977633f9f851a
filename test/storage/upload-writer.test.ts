import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { LimitExceeded, UploadAborted } from '../../src/storage/blob-store.port.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { MAX_SESSIONS, RING_BYTES, writerThread } from '../../src/storage/upload-writer.ts';
import { describeBlobStoreConformance } from './blob-store.conformance.ts';

// Issue 12 (upload throughput): uploads beyond a threshold are written and hashed on one worker thread,
// from a ring the main thread copies the body into. These tests hold that path to what the main-thread
// path promises: the exact bytes and their sha256, limits and aborts that keep nothing, errors of the
// disk as the port's errors, and no write to a file once it is closed.

const dirs: string[] = [];
async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sv-writer-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `data` in chunks of the given sizes, cycled (odd sizes make the ring wrap at every offset). */
function chunks(data: Buffer, sizes: number[]): Readable {
  let at = 0;
  let i = 0;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      const n = sizes[i++ % sizes.length]!;
      this.push(data.subarray(at, at + n));
      at += n;
    },
  });
}

// Every conformance case with the writer thread taking each upload from its first byte.
describeBlobStoreConformance('fs, writer thread from the first byte', async () => new FsBlobStore(await tempRoot(), { offload: { afterBytes: 0 } }));

describe('uploads on the writer thread', () => {
  let root: string;
  beforeEach(async () => {
    root = await tempRoot();
  });

  it('stores exactly the bytes, hashed, when it takes over mid-upload (re-reading what was written before)', async () => {
    const data = randomBytes(3 * RING_BYTES + 12_345);
    const store = new FsBlobStore(root, { offload: { afterBytes: 100_000 } });
    const staged = await store.stage('a.bin', chunks(data, [65_536, 1, 99_999, 7_000, 250_000]));
    expect(staged.size).toBe(data.length);
    expect(staged.sha256).toBe(sha(data));
    await staged.commit();
    expect((await readFile(path.join(root, 'a.bin'))).equals(data)).toBe(true);
  });

  it('takes a single chunk larger than the ring', async () => {
    const data = randomBytes(2 * RING_BYTES + 3);
    const store = new FsBlobStore(root, { offload: { afterBytes: 0 } });
    const staged = await store.stage('a.bin', Readable.from([data.subarray(0, 10), data.subarray(10)]));
    expect(staged.sha256).toBe(sha(data));
    await staged.commit();
    expect((await readFile(path.join(root, 'a.bin'))).equals(data)).toBe(true);
  });

  it('keeps uploads that run at once apart, beyond MAX_SESSIONS on the main thread', async () => {
    const store = new FsBlobStore(root, { offload: { afterBytes: 0 } });
    const bodies = [randomBytes(RING_BYTES + 1), randomBytes(3 * RING_BYTES), randomBytes(5000), randomBytes(2 * RING_BYTES + 9)];
    expect(bodies.length).toBeGreaterThan(MAX_SESSIONS);
    const staged = await Promise.all(bodies.map((b, i) => store.stage(`f${i}`, chunks(b, [40_000, 65_536]))));
    expect(staged.map((s) => s.sha256)).toEqual(bodies.map(sha));
    await Promise.all(staged.map((s) => s.commit()));
    for (const [i, b] of bodies.entries()) expect((await readFile(path.join(root, `f${i}`))).equals(b)).toBe(true);
  });

  it('a body over maxBytes after the hand-over is LimitExceeded and keeps nothing', async () => {
    const store = new FsBlobStore(root, { offload: { afterBytes: 1000 } });
    const source = chunks(randomBytes(RING_BYTES * 2), [65_536]);
    await expect(store.stage('a.bin', source, { maxBytes: RING_BYTES })).rejects.toBeInstanceOf(LimitExceeded);
    expect(await readdir(root)).toEqual([]);
    expect(source.destroyed).toBe(false);
  });

  it('a source that fails after the hand-over is UploadAborted and keeps nothing', async () => {
    const store = new FsBlobStore(root, { offload: { afterBytes: 1000 } });
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= 3 * RING_BYTES) return void this.destroy(new Error('client went away'));
        this.push(randomBytes(65_536));
        sent += 65_536;
      },
    });
    await expect(store.stage('a.bin', source)).rejects.toBeInstanceOf(UploadAborted);
    expect(await readdir(root)).toEqual([]);
  });

  it('a writer thread that dies mid-upload fails that upload, keeps nothing, and the next upload gets a new one', async () => {
    const store = new FsBlobStore(root, { offload: { afterBytes: 0 } });
    const source = new PassThrough();
    const pending = store.stage('a.bin', source);
    source.write(randomBytes(RING_BYTES / 2));
    await vi.waitFor(() => expect(writerThread.openSessions).toBe(1));
    await writerThread.stopForTests();
    source.end(randomBytes(RING_BYTES));
    await expect(pending).rejects.toThrow(/writer thread stopped/);
    expect(await readdir(root)).toEqual([]);

    const data = randomBytes(RING_BYTES + 77);
    const staged = await store.stage('b.bin', chunks(data, [65_536]));
    expect(staged.sha256).toBe(sha(data));
  });

  it('a full disk under the writer thread fails the session with ENOSPC (which the store reports as StorageFull)', async () => {
    // /dev/full answers every write with ENOSPC: the session's end() reports it with its errno code.
    const full = await open('/dev/full', constants.O_WRONLY);
    try {
      const session = writerThread.open(full.fd, 0, 0);
      await session.write([randomBytes(300_000)]);
      // No more than MAX_SESSIONS at once (this one counts).
      const more: Array<ReturnType<typeof writerThread.open>> = [];
      expect(() => {
        for (let i = 0; i < MAX_SESSIONS; i++) more.push(writerThread.open(full.fd, 0, 0));
      }).toThrow(/as many uploads/);
      expect(more.length).toBe(MAX_SESSIONS - 1);
      for (const m of more) await m.drop();
      const failure = await session.end().then(
        () => null,
        (err: NodeJS.ErrnoException) => err,
      );
      expect(failure?.code).toBe('ENOSPC');
    } finally {
      await full.close();
    }
  });
});
