import { Transform, type Readable } from 'node:stream';
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
  /**
   * What the app's clients (openBucket) send, seen on the wire: object reads by key, the
   * x-amz-checksum-sha256 header of each PUT by key, and a hook
   * that changes a PUT body after the app hashed it (a byte flipped on the way to the server).
   */
  wire: { gets: string[]; putChecksums: Map<string, string | undefined>; corruptPut: ((key: string) => boolean) | null };
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
  const wire: S3rverHandle['wire'] = { gets: [], putChecksums: new Map(), corruptPut: null };
  const watch = (c: S3Client) => {
    bucketPathWorkaround(c);
    c.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        const request = args.request as { body?: unknown; headers?: Record<string, string> };
        if (context.commandName === 'GetObjectCommand' && input.Key) wire.gets.push(input.Key);
        if (context.commandName === 'PutObjectCommand' && input.Key) wire.putChecksums.set(input.Key, request.headers?.['x-amz-checksum-sha256']);
        if (context.commandName === 'PutObjectCommand' && input.Key && wire.corruptPut?.(input.Key) && request.body && typeof (request.body as Readable).pipe === 'function') {
          let first = true;
          request.body = (request.body as Readable).pipe(
            new Transform({
              transform(chunk: Buffer, _e, done) {
                if (first && chunk.length > 0) {
                  first = false;
                  chunk = Buffer.from(chunk);
                  chunk[0] = chunk[0]! ^ 0x01;
                }
                done(null, chunk);
              },
            }),
          );
        }
        return next(args);
      },
      { step: 'build', name: 'testWire' },
    );
  };
  return {
    wire,
    endpoint,
    port: Number(new URL(endpoint).port),
    raw,
    newBucket: () => server.newBucket(),
    openBucket: (target) => {
      const m = openS3Bucket(target, { configureClient: watch, timeoutMs: 5000 });
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
