import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

interface Pending {
  resolve: (value: Buffer | number | null) => void;
  reject: (err: Error) => void;
}

/**
 * One long-lived `git cat-file --batch` (or `--batch-check`) process of a repository: objects are asked for
 * by name (`<commit>:<path>`, a blob id) on its stdin and answered in order on its stdout, so reading a
 * version costs a pipe round trip instead of a git process (issue 9: a diff p99 ≤ 50 ms; Oxidized-web#212,
 * diffs that spawn git per request). Names must not contain a newline (callers pass validated refs).
 * A reader that fails (git exited, bad output) rejects everything pending and is not reused: `closed`.
 */
export class GitObjectReader {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #check: boolean;
  readonly #pending: Pending[] = [];
  #buf: Buffer = Buffer.alloc(0);
  /** Body bytes expected for the answer at the head of the queue (−1: waiting for a header). */
  #need = -1;
  /** Chunks of a body still arriving, and their length (no quadratic concatenation on a 16 MiB blob). */
  #parts: Buffer[] = [];
  #partsLength = 0;
  #closed = false;

  constructor(env: NodeJS.ProcessEnv, options: { check?: boolean } = {}) {
    this.#check = options.check === true;
    this.#child = spawn('git', ['cat-file', this.#check ? '--batch-check' : '--batch'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    this.#child.stdout.on('data', (d: Buffer) => this.#onData(d));
    this.#child.on('error', (err) => this.#fail(err));
    this.#child.on('close', () => this.#fail(new Error('git cat-file exited')));
    this.#child.stdin.on('error', (err) => this.#fail(err));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The object's bytes, or null when the repository has no such object. */
  read(name: string): Promise<Buffer | null> {
    if (this.#check) throw new Error('this reader was opened with --batch-check');
    return this.#ask(name) as Promise<Buffer | null>;
  }

  /** The object's size in bytes, or null when the repository has no such object (a --batch-check reader). */
  size(name: string): Promise<number | null> {
    if (!this.#check) throw new Error('this reader was opened with --batch');
    return this.#ask(name) as Promise<number | null>;
  }

  #ask(name: string): Promise<Buffer | number | null> {
    if (this.#closed) return Promise.reject(new Error('git cat-file reader is closed'));
    if (/[\n\r\0]/.test(name)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#child.stdin.write(`${name}\n`);
    });
  }

  #onData(d: Buffer): void {
    if (this.#need >= 0 && this.#partsLength + d.length < this.#need + 1) {
      this.#parts.push(d);
      this.#partsLength += d.length;
      return;
    }
    if (this.#parts.length > 0) {
      this.#buf = Buffer.concat([...this.#parts, d]);
      this.#parts = [];
      this.#partsLength = 0;
    } else this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    for (;;) {
      if (this.#need < 0) {
        const nl = this.#buf.indexOf(10);
        if (nl < 0) return;
        const header = this.#buf.subarray(0, nl).toString('latin1');
        this.#buf = this.#buf.subarray(nl + 1);
        // `<oid> <type> <size>`, or `<name> missing` / `<name> ambiguous`.
        const m = /^[0-9a-f]{40,64} \S+ (\d+)$/.exec(header);
        if (!m) {
          this.#pending.shift()?.resolve(null);
          continue;
        }
        const size = Number(m[1]);
        if (this.#check) {
          this.#pending.shift()?.resolve(size);
          continue;
        }
        this.#need = size;
      }
      // The body, then one newline.
      if (this.#buf.length < this.#need + 1) {
        this.#parts = [this.#buf];
        this.#partsLength = this.#buf.length;
        this.#buf = Buffer.alloc(0);
        return;
      }
      const body = Buffer.from(this.#buf.subarray(0, this.#need));
      this.#buf = this.#buf.subarray(this.#need + 1);
      this.#need = -1;
      this.#pending.shift()?.resolve(body);
    }
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.splice(0)) p.reject(err);
    this.#child.stdin.destroy();
    this.#child.kill();
  }

  /** Ends the git process; pending reads are rejected. */
  close(): void {
    this.#fail(new Error('git cat-file reader closed'));
  }
}
