import { Worker } from 'node:worker_threads';

/**
 * Writes and hashes an upload's bytes on a worker thread, so the main thread only parses HTTP and copies
 * each body chunk once into a shared ring (issue 12, "Upload throughput"; docs/files.md).
 *
 * Why: with sha256 (~0.6 s of CPU per GiB here) and the write queue on the main thread, an upload was
 * bound by that one thread (~1.9 s of it per GiB) while the other core waited. Node has no incremental
 * hash off the main thread, so one persistent worker (started at the first large upload) does, per
 * upload: pwrite of the bytes from the ring into the temp file, then sha256 of the very same bytes, then
 * an acknowledgement that frees that part of the ring. The hash is therefore of exactly the bytes written,
 * in order. The ring is fixed (RING_BYTES per upload in flight), so memory does not grow with the upload;
 * the parser's chunks are dropped as soon as they are copied.
 *
 * Safety of the shared descriptor: the worker writes to the main thread's fd, so the fd must not be
 * closed (and its number reused by another open) while the worker may still write to it. Every session
 * ends with `end()` or `drop()`, whose answer the worker sends after its last write for that session
 * (messages are handled in order); the stage closes the file only after that answer, or once the worker
 * has exited (it can no longer write).
 */

/**
 * Bytes of the ring of one upload: what may be copied but not yet written. The main thread waits for room
 * ~3,000 times per GiB with 1 MiB, ~1,600 with 2 MiB, ~500-1,400 with 4 MiB; 1 GiB uploads at the same
 * load ran 1.8-3.1 s with 1 MiB and 1.3-2.8 s with 2 or 4 MiB (peak RSS 121-128 MB either way).
 */
export const RING_BYTES = 2 * 1024 * 1024;
/**
 * Uploads the one writer thread takes at once. It is one core: a third upload gains nothing there, and
 * hashed on the main thread instead it uses the main thread's spare time; this also bounds the rings'
 * memory (RING_BYTES each) whatever the number of uploads.
 */
export const MAX_SESSIONS = 2;
/** Rings kept for the next uploads once theirs have ended. */
const SPARE_RINGS = 2;
/** The main thread tells the worker about copied bytes in stretches of this much (or when it goes idle). */
const POST_BYTES = 256 * 1024;
/**
 * The worker's largest single write (then the hash of those bytes, still in its cache). Writing 1 GiB from
 * a 1 MiB ring here: 0.21-0.28 s of system CPU in 64-256 KiB writes, but 0.2-2.5 s in 1 MiB writes (the
 * kernel's copy into the page cache, copy_folio_from_iter_atomic, as measured for the slabs in docs/files.md).
 */
const WRITE_BYTES = 128 * 1024;

// Plain JavaScript, run with `eval: true`: no build step or module loader involved (dist/, tsx, vitest).
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { readSync, writeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const sessions = new Map();
const WRITE_BYTES = ${WRITE_BYTES};
let scratch = null;
const failure = (err) => ({ code: err && typeof err.code === 'string' ? err.code : 'EIO', message: String((err && err.message) || err) });
function fail(id, s, err) {
  s.failed = true;
  parentPort.postMessage({ id, error: failure(err) });
}
parentPort.on('message', (m) => {
  const s = sessions.get(m.id);
  if (m.op === 'open') {
    const n = { fd: m.fd, ring: new Uint8Array(m.ring), position: m.position, hash: createHash('sha256'), failed: false };
    sessions.set(m.id, n);
    try {
      // Bytes the main thread wrote before handing over: hashed from the file (the page cache).
      if (scratch === null && m.rehash > 0) scratch = Buffer.allocUnsafe(256 * 1024);
      for (let at = 0; at < m.rehash; ) {
        const r = readSync(n.fd, scratch, 0, Math.min(scratch.length, m.rehash - at), at);
        if (r === 0) throw Object.assign(new Error('temp file shorter than what was written to it'), { code: 'EIO' });
        n.hash.update(scratch.subarray(0, r));
        at += r;
      }
    } catch (err) {
      fail(m.id, n, err);
    }
  } else if (m.op === 'write') {
    if (!s || s.failed) return;
    try {
      let start = m.start;
      let left = m.length;
      while (left > 0) {
        const seg = Math.min(left, s.ring.length - start, WRITE_BYTES);
        const view = s.ring.subarray(start, start + seg);
        for (let off = 0; off < seg; ) {
          const w = writeSync(s.fd, view, off, seg - off, s.position + off);
          if (w === 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
          off += w;
        }
        s.hash.update(view);
        s.position += seg;
        left -= seg;
        start = (start + seg) % s.ring.length;
      }
      parentPort.postMessage({ id: m.id, done: m.length });
    } catch (err) {
      fail(m.id, s, err);
    }
  } else if (m.op === 'end') {
    sessions.delete(m.id);
    if (!s || s.failed) parentPort.postMessage({ id: m.id, closed: true, error: { code: 'EIO', message: 'upload writer failed earlier' } });
    else parentPort.postMessage({ id: m.id, closed: true, digest: s.hash.digest('hex') });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
    parentPort.postMessage({ id: m.id, closed: true });
  }
});
`;

interface WorkerReply {
  id: number;
  done?: number;
  closed?: true;
  digest?: string;
  error?: { code: string; message: string };
}

const errnoError = (e: { code: string; message: string }) => Object.assign(new Error(e.message), { code: e.code });

/** The one writer thread of the process, started lazily; referenced only while a session is open. */
class WriterThread {
  private worker: Worker | null = null;
  private readonly sessions = new Map<number, OffloadedWrite>();
  private readonly spareRings: SharedArrayBuffer[] = [];
  private nextId = 1;

  /**
   * Opens a session on the worker (starting it if needed). Throws when no worker can be started, or when
   * MAX_SESSIONS uploads already have one (the caller then keeps writing and hashing on the main thread).
   */
  open(fd: number, position: number, rehash: number): OffloadedWrite {
    if (this.sessions.size >= MAX_SESSIONS) throw new Error('the writer thread has as many uploads as it takes');
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // Rings are reused: a fresh one per upload would stay resident until a full GC (the bench's server grew
    // by a ring per upload).
    const ring = this.spareRings.pop() ?? new SharedArrayBuffer(RING_BYTES);
    const session = new OffloadedWrite(id, Buffer.from(ring), (m) => worker.postMessage(m), () => this.forget(id, ring));
    if (this.sessions.size === 0) worker.ref();
    this.sessions.set(id, session);
    worker.postMessage({ op: 'open', id, fd, ring, position, rehash });
    return session;
  }

  private start(): Worker {
    // Small heap: the worker allocates little besides its messages.
    const worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    worker.unref();
    worker.on('message', (m: WorkerReply) => this.sessions.get(m.id)?.receive(m));
    const gone = (err?: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      const error = Object.assign(new Error(`upload writer thread stopped${err ? `: ${err.message}` : ''}`), { code: 'EIO' });
      for (const s of [...this.sessions.values()]) s.threadGone(error);
      this.sessions.clear();
    };
    worker.on('error', gone);
    worker.on('exit', () => gone());
    this.worker = worker;
    return worker;
  }

  /** The worker answered end or drop: it will not touch the session's ring again. */
  private forget(id: number, ring: SharedArrayBuffer): void {
    if (!this.sessions.delete(id)) return;
    if (this.spareRings.length < SPARE_RINGS) this.spareRings.push(ring);
    if (this.sessions.size === 0) this.worker?.unref();
  }

  /** Uploads the worker has now (tests). */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** Stops the thread (tests: a worker that dies mid-upload). */
  async stopForTests(): Promise<void> {
    await this.worker?.terminate();
  }
}

export const writerThread = new WriterThread();

/**
 * One upload's session with the writer thread: bytes are copied into the ring at increasing offsets and
 * written by the worker at the file position given at open(), in order.
 */
export class OffloadedWrite {
  /** Bytes copied into the ring so far, and bytes the worker has written and hashed. */
  private produced = 0;
  private consumed = 0;
  /** Copied bytes not yet announced to the worker, starting at ring offset `pendingStart`. */
  private pending = 0;
  private pendingStart = 0;
  private flushScheduled = false;
  private failure: Error | null = null;
  /** No more announcements: end() or drop() was asked for, or the worker is gone. */
  private closed = false;
  private closing: Promise<string | null> | null = null;
  private gone = false;
  private spaceWaiter: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private closeWaiter: { resolve: (digest: string | null) => void; reject: (err: Error) => void } | null = null;

  constructor(
    private readonly id: number,
    private readonly ring: Buffer,
    private readonly post: (message: object) => void,
    private readonly forget: () => void,
  ) {}

  /** Copies the buffers into the ring, waiting for room when it is full. Rejects once the worker failed. */
  async write(buffers: readonly Buffer[]): Promise<void> {
    const size = this.ring.length;
    for (const b of buffers) {
      for (let off = 0; off < b.length; ) {
        if (this.failure) throw this.failure;
        const free = size - (this.produced - this.consumed);
        if (free === 0) {
          this.announce();
          await new Promise<void>((resolve, reject) => (this.spaceWaiter = { resolve, reject }));
          continue;
        }
        const at = this.produced % size;
        const n = Math.min(b.length - off, free, size - at);
        // Buffer#copy is a plain memmove; TypedArray#set into shared memory copies with relaxed atomics,
        // several times slower (13 % of an upload's samples in perf).
        b.copy(this.ring, at, off, off + n);
        off += n;
        this.produced += n;
        this.pending += n;
        if (this.pending >= POST_BYTES) this.announce();
      }
    }
    if (this.pending > 0 && !this.flushScheduled) {
      // Announce the rest once this turn of the event loop has copied whatever else arrived.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.announce();
      });
    }
    if (this.failure) throw this.failure;
  }

  private announce(): void {
    if (this.pending === 0 || this.closed) return;
    this.post({ op: 'write', id: this.id, start: this.pendingStart, length: this.pending });
    this.pendingStart = (this.pendingStart + this.pending) % this.ring.length;
    this.pending = 0;
  }

  /** Waits for every copied byte to be written and returns the sha256 (hex) of all of them. */
  async end(): Promise<string> {
    if (this.failure || this.closing) {
      await this.drop();
      throw this.failure ?? new Error('upload writer session already closed');
    }
    this.announce();
    const digest = await this.close('end');
    if (digest === null) throw this.failure ?? new Error('upload writer gave no digest');
    return digest;
  }

  /** Ends the session without a digest; resolves once the worker will no longer touch the file. */
  async drop(): Promise<void> {
    await (this.closing ?? this.close('drop')).catch(() => {});
  }

  private close(op: 'end' | 'drop'): Promise<string | null> {
    this.closed = true;
    this.closing = this.gone
      ? Promise.resolve(null)
      : new Promise<string | null>((resolve, reject) => {
          this.closeWaiter = { resolve, reject };
          this.post({ op, id: this.id });
        });
    return this.closing;
  }

  /** A message of the worker about this session. */
  receive(m: WorkerReply): void {
    if (m.done !== undefined) {
      this.consumed += m.done;
      this.wake();
    }
    if (m.error && !m.closed) {
      this.failure ??= errnoError(m.error);
      this.wake();
    }
    if (m.closed) {
      this.forget();
      const waiter = this.closeWaiter;
      this.closeWaiter = null;
      if (m.error) {
        this.failure ??= errnoError(m.error);
        waiter?.reject(this.failure);
      } else waiter?.resolve(m.digest ?? null);
      this.wake();
    }
  }

  /** The worker exited: nothing will be written any more, and the file may be closed. */
  threadGone(error: Error): void {
    this.failure ??= error;
    this.closed = true;
    this.gone = true;
    const waiter = this.closeWaiter;
    this.closeWaiter = null;
    waiter?.reject(this.failure);
    this.wake();
  }

  private wake(): void {
    const waiter = this.spaceWaiter;
    if (!waiter) return;
    this.spaceWaiter = null;
    if (this.failure) waiter.reject(this.failure);
    else waiter.resolve();
  }
}
