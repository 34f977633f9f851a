import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error: the package ships no types
import S3rver from '@20minutes/s3rver';
import { S3Mirror, type S3Target } from '../../src/storage/s3-mirror.ts';

/**
 * `@20minutes/s3rver` 4.x in-process on 127.0.0.1 for the publishing tests (issue 11: an S3 protocol
 * server, real signatures checked). Known pitfall of 4.0.4, worked around here only: it computes the
 * signature of bucket-level requests (`/bucket/`) over `/bucket` and answers SignatureDoesNotMatch, so the
 * clients handed out send those as `/bucket` (signed that way too; S3 accepts both). The same workaround
 * as the bs branch's test/helpers/s3-server.ts; this file goes when that harness is on main.
 */
export interface S3rverHandle {
  endpoint: string;
  port: number;
  newBucket(): Promise<string>;
  /** The app's S3 client factory, with the workaround (hand to createApp's publishing.openBucket). */
  openBucket: (target: S3Target) => S3Mirror;
  /** A raw client, to look at or tamper with the bucket behind the server's back. */
  raw: S3Client;
  getText(bucket: string, key: string): Promise<string | null>;
  putRaw(bucket: string, key: string, body: string): Promise<void>;
  deleteRaw(bucket: string, key: string): Promise<void>;
  stop(): Promise<void>;
}

const bucketPathWorkaround = (c: S3Client) =>
  c.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { path?: string };
      if (typeof request.path === 'string' && /^\/[^/]+\/$/.test(request.path)) request.path = request.path.slice(0, -1);
      return next(args);
    },
    { step: 'build', name: 's3rverBucketPathWorkaround' },
  );

export async function startS3rver(port = 0): Promise<S3rverHandle> {
  const directory = await mkdtemp(path.join(tmpdir(), 'sv-pub-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port, silent: !process.env.S3RVER_LOG, directory });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  const raw = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  bucketPathWorkaround(raw);
  const mirrors: S3Mirror[] = [];
  return {
    endpoint,
    port: address.port,
    raw,
    newBucket: async () => {
      const name = `sv-pub-${randomBytes(5).toString('hex')}`;
      await raw.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    openBucket: (target) => {
      const m = new S3Mirror(target, { configureClient: bucketPathWorkaround, timeoutMs: 5000 });
      mirrors.push(m);
      return m;
    },
    getText: async (bucket, key) => {
      try {
        const res = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await res.Body!.transformToString();
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return null;
        throw err;
      }
    },
    putRaw: async (bucket, key, body) => void (await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))),
    deleteRaw: async (bucket, key) => void (await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))),
    stop: async () => {
      for (const m of mirrors) m.close();
      raw.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
