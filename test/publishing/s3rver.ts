import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { openS3Bucket, type S3BlobStore, type S3Target } from '../../src/storage/s3-blob-store.ts';
import { bucketPathWorkaround, startS3Server } from '../helpers/s3-server.ts';

/**
 * The shared in-process S3 server (test/helpers/s3-server.ts, with its s3rver workarounds) plus what the
 * publishing tests need on top: the app's mirror factory with the same workaround, and raw reads and writes
 * of the bucket behind the server's back.
 */
export interface S3rverHandle {
  endpoint: string;
  port: number;
  newBucket(): Promise<string>;
  /** The app's S3 client factory, with the workaround (hand to createApp's publishing.openBucket). */
  openBucket: (target: S3Target) => S3BlobStore;
  /** A raw client, to look at or tamper with the bucket behind the server's back. */
  raw: S3Client;
  getText(bucket: string, key: string): Promise<string | null>;
  putRaw(bucket: string, key: string, body: string): Promise<void>;
  deleteRaw(bucket: string, key: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3rver(): Promise<S3rverHandle> {
  const server = await startS3Server();
  const endpoint = server.connection.endpoint!;
  const raw = server.client();
  const mirrors: S3BlobStore[] = [];
  return {
    endpoint,
    port: Number(new URL(endpoint).port),
    raw,
    newBucket: () => server.newBucket(),
    openBucket: (target) => {
      const m = openS3Bucket(target, { configureClient: bucketPathWorkaround, timeoutMs: 5000 });
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
      await server.stop();
    },
  };
}
