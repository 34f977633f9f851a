import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { assertBlobKey, compareKeys, isKeyWithin, parentKey, relativeKey, segmentProblem } from './blob-key.ts';
import {
  BlobConflict,
  BlobNotFound,
  InvalidBlobKey,
  type BlobReadHandle,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type CopiedEntry,
  type ListedBlob,
  type ScanEntry,
  type StagedBlob,
  type StagedCopy,
  type StageOptions,
} from './blob-store.port.ts';
import { FsBlobStore } from './fs-blob-store.ts';

// The s3 adapter of the BlobStore port: key `a/b` is the object `<keyPrefix>a/b` of one bucket. S3 has no
// folders: a folder exists while an object lies below it (folders: 'implied'), and no rename: a move is a
// copy then a delete, per object.
//
// stage() spools the body to a local temp file (through the fs adapter, so size, sha256, the byte limit
// and the local free-space floor are the same code) and commit() uploads it with one PutObject whose
// length is known: an object appears whole or not at all, which is the atomicity S3 itself guarantees.
// One PutObject carries at most 5 GiB; that is the ceiling of this adapter until it grows multipart.

/** How to reach a bucket. */
export interface S3Connection {
  /** e.g. https://s3.eu-west-1.amazonaws.com, or http://127.0.0.1:9000 for MinIO or a test server. */
  endpoint?: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/**
 * An S3 client as this adapter needs it: path-style addressing (`/bucket/key`: works with MinIO, test
 * servers and bucket names with dots), and checksums only WHEN_REQUIRED. Since SDK 3.729 the default
 * (WHEN_SUPPORTED) sends every upload with a streaming CRC32 trailer (aws-chunked encoding) and validates
 * response checksums; S3-compatible servers such as s3rver, and many self-hosted ones, reject or
 * mis-store such bodies. Integrity does not depend on it: stage() computes the sha256 itself and commit()
 * sends it as x-amz-checksum-sha256, which S3 verifies.
 */
export function createS3Client(connection: S3Connection): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: connection.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export interface S3BlobStoreOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key ('' or ending in '/'), so several stores can share a bucket. */
  keyPrefix?: string;
  /** Local folder for spooling stages (default: the OS temp dir). */
  spoolDir?: string;
}

/** Longest object key S3 accepts, in UTF-8 bytes. */
const MAX_OBJECT_KEY_BYTES = 1024;
/** Parallel requests of a tree copy, move or delete. */
const PARALLEL = 8;

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
};

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^W\//, '').replace(/"/g, '');

export class S3BlobStore implements BlobStore {
  readonly folders = 'implied' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly spoolDir: string;
  private spool: Promise<FsBlobStore> | undefined;

  constructor(options: S3BlobStoreOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix ?? '';
    if (this.keyPrefix !== '' && !this.keyPrefix.endsWith('/')) throw new Error('S3BlobStore: keyPrefix must be empty or end with "/"');
    this.spoolDir = options.spoolDir ?? path.join(tmpdir(), 'stormvault-s3-spool');
  }

  private objectKey(key: string): string {
    const objectKey = this.keyPrefix + key;
    if (Buffer.byteLength(objectKey) > MAX_OBJECT_KEY_BYTES) throw new InvalidBlobKey(key, 'too_long', `S3 keys are at most ${MAX_OBJECT_KEY_BYTES} bytes`);
    return objectKey;
  }

  /** The listing prefix of a folder key: 'a' → '<p>a/', '' → '<p>'. */
  private folderPrefix(key: string): string {
    return key === '' ? this.keyPrefix : `${this.objectKey(key)}/`;
  }

  private async head(key: string): Promise<BlobStat | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { kind: 'file', size: out.ContentLength ?? 0, mtimeMs: out.LastModified?.getTime() ?? 0, version: unquote(out.ETag) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private async isFolder(key: string): Promise<boolean> {
    if (key === '') return true;
    const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.folderPrefix(key), MaxKeys: 1 }));
    return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
  }

  async stat(key: string): Promise<BlobStat | null> {
    assertBlobKey(key, { allowRoot: true });
    if (key !== '') {
      const file = await this.head(key);
      if (file) return file;
    }
    return (await this.isFolder(key)) ? { kind: 'folder', size: 0, mtimeMs: 0, version: null } : null;
  }

  async open(key: string): Promise<BlobReadHandle> {
    assertBlobKey(key);
    const st = await this.head(key);
    if (!st) throw (await this.isFolder(key)) ? new BlobConflict(key, 'is_folder') : new BlobNotFound(key);
    let used = false;
    return {
      stat: st,
      stream: (range?: ByteRange) => {
        if (used) throw new Error('BlobReadHandle.stream() called twice or after close()');
        used = true;
        const start = range?.start ?? 0;
        const end = range?.end ?? st.size - 1;
        if (end < start) return Readable.from([]);
        const out = new PassThrough();
        // If-Match: another version committed since open() fails the stream (412) rather than mixing versions.
        this.client
          .send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: `bytes=${start}-${end}`, IfMatch: `"${st.version}"` }))
          .then((res) => {
            const body = res.Body as Readable;
            body.on('error', (err) => out.destroy(err));
            out.on('close', () => body.destroy());
            body.pipe(out);
          })
          .catch((err: Error) => out.destroy(err));
        return out;
      },
      close: async () => {
        used = true;
      },
    };
  }

  private spoolStore(): Promise<FsBlobStore> {
    this.spool ??= mkdir(this.spoolDir, { recursive: true }).then(() => new FsBlobStore(this.spoolDir));
    return this.spool;
  }

  async stage(key: string, source: Readable, options: StageOptions = {}): Promise<StagedBlob> {
    assertBlobKey(key);
    this.objectKey(key);
    const spool = await this.spoolStore();
    const spoolKey = `s3-spool-${randomBytes(12).toString('hex')}`;
    const staged = await spool.stage(spoolKey, source, options);
    await staged.commit();
    let done = false;
    const abort = async () => {
      if (done) return;
      done = true;
      await spool.remove(spoolKey).catch(() => {});
    };
    return {
      key,
      size: staged.size,
      sha256: staged.sha256,
      abort,
      commit: async (to = key) => {
        if (done) throw new Error('StagedBlob already committed or aborted');
        try {
          assertBlobKey(to);
          if (parentKey(to) !== parentKey(key)) throw new InvalidBlobKey(to, 'malformed', `a stage for ${JSON.stringify(key)} can only be committed in its folder`);
          if (await this.isFolder(to)) throw new BlobConflict(to, 'is_folder');
          const body = (await spool.open(spoolKey)).stream();
          await this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.objectKey(to),
              Body: body,
              ContentLength: staged.size,
              ChecksumSHA256: Buffer.from(staged.sha256, 'hex').toString('base64'),
              Metadata: { sha256: staged.sha256 },
            }),
          );
          const st = await this.head(to);
          if (!st) throw new BlobNotFound(to);
          return st;
        } finally {
          await abort();
        }
      },
    };
  }

  async stageCopy(from: string, to: string): Promise<StagedCopy> {
    assertBlobKey(from);
    assertBlobKey(to);
    this.objectKey(to);
    const top = await this.stat(from);
    if (!top) throw new BlobNotFound(from);
    // Nothing is written before commit(): the copy is a list of objects to copy, checked now.
    const entries: CopiedEntry[] = [{ rel: '', kind: top.kind, size: top.size, mtimeMs: top.mtimeMs }];
    const objects: string[] = top.kind === 'file' ? [''] : [];
    if (top.kind === 'folder') {
      for await (const batch of this.scan(from)) {
        for (const e of batch) {
          if (e.kind !== 'file' && e.kind !== 'folder') continue;
          const rel = relativeKey(e.key, from);
          entries.push({ rel, kind: e.kind, size: e.size, mtimeMs: e.mtimeMs });
          if (e.kind === 'file') objects.push(rel);
        }
      }
    }
    let done = false;
    return {
      key: to,
      entries,
      abort: async () => {
        done = true;
      },
      commit: async () => {
        if (done) throw new Error('StagedCopy already committed or aborted');
        done = true;
        const target = await this.stat(to);
        if (target?.kind === 'folder') throw new BlobConflict(to, 'is_folder');
        if (target && top.kind === 'folder') throw new BlobConflict(to, 'not_folder');
        await inParallel(objects, (rel) => this.copyObject(rel === '' ? from : `${from}/${rel}`, rel === '' ? to : `${to}/${rel}`));
      },
    };
  }

  private async copyObject(from: string, to: string): Promise<void> {
    const source = `${this.bucket}/${this.objectKey(from)}`.split('/').map(encodeURIComponent).join('/');
    await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: this.objectKey(to), CopySource: source }));
  }

  async ensureFolder(key: string): Promise<string[]> {
    assertBlobKey(key, { allowRoot: true });
    return [];
  }

  async removeEmptyFolders(): Promise<void> {}

  async hasEntries(key: string): Promise<boolean> {
    assertBlobKey(key, { allowRoot: true });
    const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.folderPrefix(key), MaxKeys: 1 }));
    return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
  }

  async remove(key: string): Promise<void> {
    assertBlobKey(key);
    const below = await this.allObjectsBelow(key);
    // One DeleteObject per object: DeleteObjects needs a Content-MD5 that the WHEN_REQUIRED client computes
    // as CRC32 instead, which some S3-compatible servers refuse.
    await inParallel([key, ...below], (k) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(k) })));
  }

  async move(from: string, to: string): Promise<void> {
    assertBlobKey(from);
    assertBlobKey(to);
    this.objectKey(to);
    const src = await this.stat(from);
    if (!src) throw new BlobNotFound(from);
    const dst = await this.stat(to);
    if (dst?.kind === 'folder') throw new BlobConflict(to, 'is_folder');
    if (dst && src.kind === 'folder') throw new BlobConflict(to, 'exists');
    const rels = src.kind === 'file' ? [''] : (await this.allObjectsBelow(from)).map((k) => relativeKey(k, from));
    // Copy everything before deleting anything: a crash in between leaves both copies, never neither.
    const pairs = rels.map((rel) => [rel === '' ? from : `${from}/${rel}`, rel === '' ? to : `${to}/${rel}`] as const);
    await inParallel(pairs, ([f, t]) => this.copyObject(f, t));
    await inParallel(pairs, ([f]) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(f) })));
  }

  async freeBytes(): Promise<number | null> {
    return null;
  }

  /** Keys of every object strictly below folder `key`. */
  private async allObjectsBelow(key: string): Promise<string[]> {
    const prefix = this.folderPrefix(key);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out: ListObjectsV2CommandOutput = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key.slice(this.keyPrefix.length));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async list(key: string): Promise<ListedBlob[]> {
    assertBlobKey(key, { allowRoot: true });
    const listPrefix = this.folderPrefix(key);
    const out: ListedBlob[] = [];
    let token: string | undefined;
    do {
      const res: ListObjectsV2CommandOutput = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: listPrefix, Delimiter: '/', ContinuationToken: token }),
      );
      // A listing's ETag is the object's, as HeadObject gives it (stat()).
      for (const o of res.Contents ?? []) {
        const name = o.Key!.slice(listPrefix.length);
        if (name === '' || segmentProblem(name) !== null) continue;
        out.push({ name, kind: 'file', size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0, version: unquote(o.ETag) });
      }
      for (const p of res.CommonPrefixes ?? []) {
        const name = p.Prefix!.slice(listPrefix.length, -1);
        if (name === '' || segmentProblem(name) !== null) continue;
        out.push({ name, kind: 'folder', size: 0, mtimeMs: 0, version: null });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  scan(prefix: string): AsyncIterable<readonly ScanEntry[]> {
    assertBlobKey(prefix, { allowRoot: true });
    return this.scanTree(prefix);
  }

  /**
   * One listing per folder (Delimiter '/'), sorted here rather than trusting the server's order (S3 sorts
   * by UTF-8 bytes, but not every compatible server does), then the same walk as the fs adapter: a
   * folder's own entry at `name`, its content at `name/`.
   */
  private async *scanTree(prefix: string): AsyncGenerator<readonly ScanEntry[]> {
    if (prefix !== '' && (await this.head(prefix))) return; // a file: nothing below it
    const stack: Array<{ items: Array<{ sortKey: string; entry: ScanEntry | null; key: string }>; next: number }> = [];
    const listLevel = async (folder: string) => {
      const items: Array<{ sortKey: string; entry: ScanEntry | null; key: string }> = [];
      const listPrefix = this.folderPrefix(folder);
      let token: string | undefined;
      do {
        const out: ListObjectsV2CommandOutput = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: listPrefix, Delimiter: '/', ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) {
          const name = o.Key!.slice(listPrefix.length);
          const key = folder === '' ? name : `${folder}/${name}`;
          if (name === '' || !isKeyWithin(key, folder)) continue;
          items.push({ sortKey: name, key, entry: { kind: 'file', key, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 } });
        }
        for (const p of out.CommonPrefixes ?? []) {
          const name = p.Prefix!.slice(listPrefix.length, -1);
          if (name === '') continue;
          const key = folder === '' ? name : `${folder}/${name}`;
          items.push({ sortKey: name, key, entry: { kind: 'folder', key, size: 0, mtimeMs: 0 } });
          items.push({ sortKey: `${name}/`, key, entry: null });
        }
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      items.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
      return { items, next: 0 };
    };
    stack.push(await listLevel(prefix));
    let batch: ScanEntry[] = [];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.items.length) {
        stack.pop();
        continue;
      }
      const item = frame.items[frame.next++]!;
      if (item.entry) batch.push(item.entry);
      else {
        if (batch.length > 0) {
          yield batch;
          batch = [];
        }
        stack.push(await listLevel(item.key));
      }
    }
    if (batch.length > 0) yield batch;
  }
}

/** Runs `fn` over `items`, at most PARALLEL at a time; fails with the first error. */
async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
}
