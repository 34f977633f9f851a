import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

/** Where a site's mirror lives and how to reach it. */
export interface S3Target {
  endpoint: string | null;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
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
const httpStatus = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

function bucketError(what: string, err: unknown): BucketError {
  const name = errName(err);
  const msg = err instanceof Error ? err.message : String(err);
  return new BucketError(`${what}: ${name && name !== 'Error' ? `${name}: ` : ''}${msg || 'failed'}`, name || undefined, { cause: err });
}

/**
 * The publishing mirror's view of an S3 bucket (issue 11 "Mirror to the bucket"): put a file read from
 * disk (one PUT up to a threshold, multipart above it, each part streamed from its byte range of the
 * file, so memory does not grow with the file), read an object back and hash it (an ETag is never taken
 * for a content hash: multipart ETags are not MD5s of the content), delete, list.
 */
export class S3Mirror {
  private readonly client: S3Client;

  constructor(
    private readonly target: S3Target,
    options: { timeoutMs?: number; maxAttempts?: number } = {},
  ) {
    this.client = new S3Client({
      endpoint: target.endpoint ?? undefined,
      region: target.region,
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
      // Path-style (http://host/bucket/key): S3-compatible servers and test servers rarely do virtual hosts.
      forcePathStyle: true,
      // The SDK's default streaming checksum trailer (aws-chunked) is rejected by S3-compatible servers
      // such as s3rver and older MinIO; our own sha256 read-back is the integrity check.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Retries are the task framework's job (backoff, dead letter); one SDK attempt keeps failures prompt.
      maxAttempts: options.maxAttempts ?? 1,
      requestHandler: { requestTimeout: options.timeoutMs ?? 30_000, connectionTimeout: Math.min(options.timeoutMs ?? 30_000, 5000) },
    });
  }

  get bucket(): string {
    return this.target.bucket;
  }

  /**
   * Uploads `size` bytes read by `read(start, end)` (inclusive range of the local file) to `key`.
   * Returns the sha256 of the bytes actually sent.
   */
  async put(
    key: string,
    size: number,
    read: (start: number, end: number) => Promise<Readable>,
    meta: { contentType: string; cacheControl: string; sha256: string; multipartThreshold: number },
    signal?: AbortSignal,
  ): Promise<{ sentSha256: string }> {
    const hash = createHash('sha256');
    const common = { Bucket: this.target.bucket, Key: key, ContentType: meta.contentType, CacheControl: meta.cacheControl, Metadata: { sha256: meta.sha256 } };
    if (size <= meta.multipartThreshold) {
      const body = size === 0 ? null : (await read(0, size - 1)).pipe(hashing(hash));
      try {
        await this.client.send(new PutObjectCommand({ ...common, Body: body ?? '', ContentLength: size }), { abortSignal: signal });
      } catch (err) {
        body?.destroy();
        throw bucketError(`PUT ${key}`, err);
      }
      return { sentSha256: hash.digest('hex') };
    }
    let uploadId: string | undefined;
    try {
      uploadId = (await this.client.send(new CreateMultipartUploadCommand(common), { abortSignal: signal })).UploadId;
      if (!uploadId) throw new BucketError(`multipart upload of ${key}: the server returned no upload id`);
      const parts: { ETag: string | undefined; PartNumber: number }[] = [];
      // Parts go up one after another, so the running hash sees the bytes in order.
      for (let start = 0, n = 1; start < size; start += PART_BYTES, n++) {
        const end = Math.min(size, start + PART_BYTES) - 1;
        const body = (await read(start, end)).pipe(hashing(hash));
        const res = await this.client.send(new UploadPartCommand({ Bucket: this.target.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: end - start + 1 }), { abortSignal: signal });
        parts.push({ ETag: res.ETag, PartNumber: n });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.target.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
      return { sentSha256: hash.digest('hex') };
    } catch (err) {
      if (uploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: key, UploadId: uploadId })).catch(() => {});
      throw err instanceof BucketError ? err : bucketError(`multipart upload of ${key}`, err);
    }
  }

  /** Reads the object back and hashes it; null when there is no such object. */
  async hash(key: string, signal?: AbortSignal): Promise<{ sha256: string; size: number } | null> {
    let body: Readable;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.target.bucket, Key: key }), { abortSignal: signal });
      body = res.Body as Readable;
    } catch (err) {
      if (errName(err) === 'NoSuchKey' || httpStatus(err) === 404) return null;
      throw bucketError(`GET ${key}`, err);
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
      throw bucketError(`reading ${key} back`, err);
    }
    return { sha256: hash.digest('hex'), size };
  }

  async remove(key: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: key }), { abortSignal: signal });
    } catch (err) {
      if (errName(err) === 'NoSuchKey' || httpStatus(err) === 404) return;
      throw bucketError(`DELETE ${key}`, err);
    }
  }

  /** Every key below `prefix`, in the bucket's order (S3 lists in UTF-8 byte order), a page at a time. */
  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<Array<{ key: string; size: number }>> {
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListObjectsV2Command({ Bucket: this.target.bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal });
      } catch (err) {
        throw bucketError(`listing ${prefix}`, err);
      }
      yield (res.Contents ?? []).map((o) => ({ key: o.Key ?? '', size: o.Size ?? 0 }));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  /** True when the bucket answers (credentials and reachability). */
  async ping(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.target.bucket }), { abortSignal: signal });
    } catch (err) {
      throw bucketError(`bucket ${this.target.bucket}`, err);
    }
  }

  close(): void {
    this.client.destroy();
  }
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}
