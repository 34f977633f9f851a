import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error: the package ships no types
import S3rver from '@20minutes/s3rver';
import { createS3Client, type S3Connection } from '../../src/storage/s3-blob-store.ts';

/**
 * An S3 protocol server in-process on 127.0.0.1 (DESIGN.md: real peers over mocks), for the BlobStore
 * conformance suite and the publishing tests. `@20minutes/s3rver` 4.x: maintained, Node 20 (5.x needs
 * Node 24); it checks SigV4 signatures like S3 does.
 *
 * Known pitfall, worked around here and only here: s3rver 4.0.4 computes the signature of a bucket-level
 * request (ListObjectsV2: `GET /bucket/?list-type=2`) over `/bucket`, dropping the trailing '/' the SDK
 * signed, and answers SignatureDoesNotMatch. The clients this harness hands out therefore send such
 * requests as `/bucket?...` (signed that way too, so signatures are still checked): a build-step
 * middleware removes the '/'. S3 itself accepts both forms, so production clients need nothing.
 *
 * Two more s3rver 4.0.4 listing bugs, fixed in the server's store (its answers, not its checks):
 * - with a Delimiter, a folder that holds only sub-folders is missing from CommonPrefixes;
 * - a truncated listing (more keys than MaxKeys) fails with a 500: its continuation tokens use DES,
 *   which OpenSSL 3 no longer offers (ERR_OSSL_EVP_UNSUPPORTED).
 * The patched listing is computed from the flat list of keys, sorted by UTF-8 bytes as S3 sorts, and is
 * never truncated (it may hold more than MaxKeys entries; the adapter only relies on "at least one").
 */
export interface S3TestServer {
  /** Endpoint, region and credentials for createS3Client (path-style). */
  connection: S3Connection;
  /** A client for this server (with the workaround above). */
  client(): S3Client;
  /** Creates a fresh, empty bucket and returns its name. */
  newBucket(): Promise<string>;
  stop(): Promise<void>;
}

/** '/bucket/' → '/bucket' before signing, on any client of this server (see the comment above). */
export function bucketPathWorkaround(c: S3Client): void {
  c.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { path?: string };
      if (typeof request.path === 'string' && /^\/[^/]+\/$/.test(request.path)) request.path = request.path.slice(0, -1);
      return next(args);
    },
    { step: 'build', name: 's3rverBucketPathWorkaround' },
  );
}

export async function startS3Server(): Promise<S3TestServer> {
  const directory = await mkdtemp(path.join(tmpdir(), 'sv-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: !process.env.S3RVER_LOG, directory });
  patchListing(server.store as ListingStore);
  const address = (await server.run()) as AddressInfo;
  const connection: S3Connection = {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: 'us-east-1',
    // s3rver's built-in account.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  };
  const clients: S3Client[] = [];
  const client = () => {
    const c = createS3Client(connection);
    bucketPathWorkaround(c);
    clients.push(c);
    return c;
  };
  const admin = client();
  return {
    connection,
    client,
    newBucket: async () => {
      const name = `sv-test-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    stop: async () => {
      for (const c of clients) c.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

interface ListedObject {
  key: string;
}
interface ListingStore {
  listObjects(
    bucket: string,
    options: { delimiter?: string; prefix?: string; startAfter?: string; maxKeys?: number },
  ): Promise<{ objects: ListedObject[]; commonPrefixes: string[]; isTruncated: boolean }>;
}

const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function patchListing(store: ListingStore): void {
  const flat = store.listObjects.bind(store);
  store.listObjects = async (bucket, options) => {
    const prefix = options.prefix ?? '';
    const delimiter = options.delimiter ?? '';
    const all = await flat(bucket, { prefix: options.prefix, startAfter: options.startAfter, maxKeys: Infinity });
    const objects: ListedObject[] = [];
    const commonPrefixes = new Set<string>();
    for (const o of all.objects) {
      const rest = o.key.slice(prefix.length);
      const at = delimiter ? rest.indexOf(delimiter) : -1;
      if (at >= 0) commonPrefixes.add(prefix + rest.slice(0, at + delimiter.length));
      else objects.push(o);
    }
    objects.sort((a, b) => byUtf8(a.key, b.key));
    return { objects, commonPrefixes: [...commonPrefixes].sort(byUtf8), isTruncated: false };
  };
}
