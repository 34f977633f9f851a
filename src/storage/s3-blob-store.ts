import { createHash, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
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
// commit() and the publishing mirror send through the same putFile(): one PutObject up to a threshold,
// multipart above it, each part streamed from its byte range of a local file, so memory does not grow
// with the file (and the 5 GiB ceiling of one PutObject does not apply).
//
// Besides the port, the publishing mirror (issue 11) uses putFile, readBackSha256 (an object read back
// and hashed: an ETag is never taken for a content hash, multipart ETags are not MD5s of the content),
// deleteObject and ping. This is the one S3 code path of the server.

/** How to reach a bucket. */
export interface S3Connection {
  /** e.g. https://s3.eu-west-1.amazonaws.com, or http://127.0.0.1:9000 for MinIO or a test server. */
  endpoint?: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** SDK attempts per request (default the SDK's 3). The mirror uses 1: its retries are the task framework's. */
  maxAttempts?: number;
  /** Per-request timeout in ms (default none); connecting gets at most 5 s of it. */
  timeoutMs?: number;
  /** Name resolution of the client's sockets (the outbound policy's connectLookup for a site's own endpoint). */
  lookup?: LookupFunction;
}

/** Size of one part of a multipart upload (S3's minimum is 5 MiB for all parts but the last). */
export const PART_BYTES = 8 * 1024 * 1024;

/** A bucket operation failed (network, credentials, server). Carries the S3 error name when there is one. */
export class BucketError extends Error {
  constructor(
    message: string,
    readonly s3Code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BucketError';
  }
}

const errName = (err: unknown) => (err as { name?: string }).name ?? '';

function bucketError(what: string, err: unknown): BucketError {
  if (err instanceof BucketError) return err;
  const name = errName(err);
  const msg = err instanceof Error ? err.message : String(err);
  return new BucketError(`${what}: ${name && name !== 'Error' ? `${name}: ` : ''}${msg || 'failed'}`, name || undefined, { cause: err });
}

/** What putFile() sends besides the bytes. */
export interface PutFileOptions {
  contentType?: string;
  cacheControl?: string;
  /** Stored as object metadata `sha256` (what the index believes the content is). */
  sha256?: string;
  /**
   * Sent as x-amz-checksum-sha256 on a single PUT, so a server that checks it (S3, MinIO; not s3rver 4.x)
   * refuses other bytes with BadDigest: the commit's staged sha256, the mirror's index sha256.
   */
  checksumSha256?: string;
  /** Up to this size one PUT; above it multipart. Default: PART_BYTES. */
  multipartThreshold?: number;
  signal?: AbortSignal;
}

/** Where a publishing site's mirror lives (one bucket, objects below `keyPrefix`). */
export interface S3Target {
  endpoint: string | null;
  region: string;
  bucket: string;
  /** '' or ending in '/'. */
  keyPrefix: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * An S3BlobStore of its own client for `target` (closed with the store): the publishing mirror's bucket.
 * One SDK attempt and a timeout by default, so a failure reaches the task framework's retries promptly.
 */
export function openS3Bucket(target: S3Target, options: { timeoutMs?: number; maxAttempts?: number; lookup?: LookupFunction; configureClient?: (client: S3Client) => void } = {}): S3BlobStore {
  const client = createS3Client({
    endpoint: target.endpoint ?? undefined,
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    maxAttempts: options.maxAttempts ?? 1,
    timeoutMs: options.timeoutMs ?? 30_000,
    lookup: options.lookup,
  });
  options.configureClient?.(client);
  return new S3BlobStore({ client, bucket: target.bucket, keyPrefix: target.keyPrefix, ownsClient: true });
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
    ...(connection.maxAttempts !== undefined ? { maxAttempts: connection.maxAttempts } : {}),
    // The SDK's handler keeps connections alive (keepAlive, 50 sockets per host) by default; agent options
    // given here are merged into those defaults.
    ...(connection.timeoutMs !== undefined || connection.lookup
      ? {
          requestHandler: {
            ...(connection.timeoutMs !== undefined ? { requestTimeout: connection.timeoutMs, connectionTimeout: Math.min(connection.timeoutMs, 5000) } : {}),
            ...(connection.lookup ? { httpAgent: { lookup: connection.lookup }, httpsAgent: { lookup: connection.lookup } } : {}),
          },
        }
      : {}),
  });
}

export interface S3BlobStoreOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key ('' or ending in '/'), so several stores can share a bucket. */
  keyPrefix?: string;
  /** Local folder for spooling stages (default: the OS temp dir). */
  spoolDir?: string;
  /** close() destroys the client (openS3Bucket); otherwise the caller owns it. */
  ownsClient?: boolean;
}

/** Longest object key S3 accepts, in UTF-8 bytes. */
const MAX_OBJECT_KEY_BYTES = 1024;
/** commit() sends one PUT (checksummed by the server) up to this size, multipart above it. */
const COMMIT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
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
  private readonly ownsClient: boolean;

  constructor(options: S3BlobStoreOptions) {
    this.client = options.client;
    this.ownsClient = options.ownsClient === true;
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
          await this.putFile(to, staged.size, async (start, end) => (await spool.open(spoolKey)).stream({ start, end }), {
            sha256: staged.sha256,
            checksumSha256: staged.sha256,
            multipartThreshold: COMMIT_MULTIPART_THRESHOLD,
          });
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

  /** The bucket this store writes to. */
  get bucketName(): string {
    return this.bucket;
  }

  /**
   * Uploads `size` bytes read by `read(start, end)` (an inclusive byte range of a local file) to `key`:
   * one PutObject up to `multipartThreshold`, else a multipart upload of PART_BYTES parts, each read from
   * its own range (aborted on failure, so no parts are left behind). Returns the sha256 of the bytes
   * actually sent, hashed as they streamed (the source is read once).
   * @throws BucketError
   */
  async putFile(key: string, size: number, read: (start: number, end: number) => Promise<Readable>, options: PutFileOptions = {}): Promise<{ sentSha256: string }> {
    const objectKey = this.objectKey(key);
    const signal = options.signal;
    const hash = createHash('sha256');
    const common = {
      Bucket: this.bucket,
      Key: objectKey,
      ...(options.contentType ? { ContentType: options.contentType } : {}),
      ...(options.cacheControl ? { CacheControl: options.cacheControl } : {}),
      ...(options.sha256 ? { Metadata: { sha256: options.sha256 } } : {}),
    };
    if (size <= (options.multipartThreshold ?? PART_BYTES)) {
      const body = size === 0 ? null : (await read(0, size - 1)).pipe(hashing(hash));
      try {
        await this.client.send(
          new PutObjectCommand({
            ...common,
            Body: body ?? '',
            ContentLength: size,
            ...(options.checksumSha256 ? { ChecksumSHA256: Buffer.from(options.checksumSha256, 'hex').toString('base64') } : {}),
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        body?.destroy();
        throw bucketError(`PUT ${objectKey}`, err);
      }
      return { sentSha256: hash.digest('hex') };
    }
    let uploadId: string | undefined;
    try {
      uploadId = (await this.client.send(new CreateMultipartUploadCommand(common), { abortSignal: signal })).UploadId;
      if (!uploadId) throw new BucketError(`multipart upload of ${objectKey}: the server returned no upload id`);
      const parts: { ETag: string | undefined; PartNumber: number }[] = [];
      // Parts go up one after another, so the running hash sees the bytes in order.
      for (let start = 0, n = 1; start < size; start += PART_BYTES, n++) {
        const end = Math.min(size, start + PART_BYTES) - 1;
        const body = (await read(start, end)).pipe(hashing(hash));
        const res = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: end - start + 1 }), { abortSignal: signal });
        parts.push({ ETag: res.ETag, PartNumber: n });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
      return { sentSha256: hash.digest('hex') };
    } catch (err) {
      if (uploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId })).catch(() => {});
      throw bucketError(`multipart upload of ${objectKey}`, err);
    }
  }

  /** Reads the object at `key` back and hashes it; null when there is none. @throws BucketError */
  async readBackSha256(key: string, signal?: AbortSignal): Promise<{ sha256: string; size: number } | null> {
    const objectKey = this.objectKey(key);
    let body: Readable;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), { abortSignal: signal });
      body = res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw bucketError(`GET ${objectKey}`, err);
    }
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _e, done) {
            size += chunk.length;
            hash.update(chunk);
            done();
          },
        }),
      );
    } catch (err) {
      throw bucketError(`reading ${objectKey} back`, err);
    }
    return { sha256: hash.digest('hex'), size };
  }

  /** Deletes the one object at `key` (not a folder tree: see remove()); nothing there is fine. @throws BucketError */
  async deleteObject(key: string, signal?: AbortSignal): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }), { abortSignal: signal });
    } catch (err) {
      if (isNotFound(err)) return;
      throw bucketError(`DELETE ${objectKey}`, err);
    }
  }

  /** Resolves when the bucket answers (reachability and credentials). @throws BucketError */
  async ping(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
    } catch (err) {
      throw bucketError(`bucket ${this.bucket}`, err);
    }
  }

  /** Releases the client when this store owns it (openS3Bucket). */
  close(): void {
    if (this.ownsClient) this.client.destroy();
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

/** Passes chunks through, hashing them. */
function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}
