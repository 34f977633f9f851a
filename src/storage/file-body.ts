import type { FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';

/** Size of one read from disk: large enough that syscalls and per-chunk stream bookkeeping stay negligible. */
export const FILE_BODY_CHUNK = 1024 * 1024;

/**
 * The bytes `[start, end]` (inclusive) of an open file as the body of an HTTP response.
 *
 * Why not `fs.createReadStream`: it allocates a fresh Buffer for every chunk, and those buffers are
 * garbage the moment the socket has taken them, yet they stay resident until V8 gets round to a
 * collection (it waits for ~64 MB of external memory): a download held 30-40 MB of dead buffers at its
 * peak. When piped (Fastify pipes a stream payload into the response), this body instead writes into the
 * destination itself from two buffers it reuses, reading the next chunk while the previous one is being
 * sent; a buffer is refilled only after the destination's write callback for it ran, i.e. after the
 * kernel has copied it. That holds for sockets and HTTP responses, the only destinations this is for:
 * a destination that keeps a reference to a written chunk after its callback (a PassThrough) would see
 * it overwritten. Read any other way ('data', read(), async iteration) it is a plain file stream with
 * fresh buffers.
 *
 * Closes the handle when it ends, fails or is destroyed. A file that shrinks while being sent fails the
 * stream (the response is then cut short, so the client sees an incomplete body, never wrong bytes).
 */
export class FileBody extends Readable {
  private position: number;
  private pumping = false;
  private readonly gone: Promise<void>;
  private markClosed!: () => void;

  constructor(
    private readonly handle: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: FILE_BODY_CHUNK });
    this.position = start;
    this.gone = new Promise((resolve) => (this.markClosed = resolve));
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    if (this.pumping || this.readableFlowing !== null) return super.pipe(destination, options);
    this.pumping = true;
    (destination as unknown as Writable).emit('pipe', this); // as Readable.pipe does
    this.pump(destination as unknown as Writable, options?.end !== false).catch((err: Error) => this.destroy(err));
    return destination;
  }

  private async pump(destination: Writable, endDestination: boolean): Promise<void> {
    // Small files get small buffers; the second one only exists when there is a second chunk.
    const chunk = Math.min(FILE_BODY_CHUNK, this.end - this.position + 1);
    const buffers = [Buffer.allocUnsafeSlow(chunk), chunk < FILE_BODY_CHUNK ? null : Buffer.allocUnsafeSlow(chunk)];
    const sent: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
    const failed: { error: Error | null } = { error: null };
    for (let i = 0; this.position <= this.end; i ^= 1) {
      // Buffer i may be refilled only once its previous write has completed (or the stream is gone).
      await Promise.race([sent[i], this.gone]);
      if (this.destroyed || failed.error) break;
      const buffer = buffers[i]!;
      const want = Math.min(chunk, this.end - this.position + 1);
      const { bytesRead } = await this.handle.read(buffer, 0, want, this.position);
      if (this.destroyed) break;
      if (bytesRead === 0) throw new Error(`file shrank while being sent (expected ${this.end + 1} bytes)`);
      this.position += bytesRead;
      sent[i] = new Promise<void>((resolve) =>
        destination.write(buffer.subarray(0, bytesRead), (err) => {
          if (err) failed.error = err;
          resolve();
        }),
      );
    }
    await Promise.race([Promise.all(sent), this.gone]);
    if (this.destroyed) return;
    // A failed write means the destination is broken; it reports that itself. We just stop.
    if (failed.error) return void this.destroy();
    if (endDestination) destination.end();
    this.push(null);
    this.resume(); // no data is buffered: this only lets 'end' (then 'close') fire for whoever watches us
  }

  override _read(size: number): void {
    const want = Math.min(Math.max(size, FILE_BODY_CHUNK), this.end - this.position + 1);
    if (want <= 0) return void this.push(null);
    const buffer = Buffer.allocUnsafe(want);
    this.handle.read(buffer, 0, want, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) return void this.destroy(new Error(`file shrank while being read (expected ${this.end + 1} bytes)`));
        this.position += bytesRead;
        this.push(buffer.subarray(0, bytesRead));
        if (this.position > this.end) this.push(null);
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.markClosed();
    this.handle.close().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }
}
