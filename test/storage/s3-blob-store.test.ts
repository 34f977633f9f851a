import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidBlobKey } from '../../src/storage/blob-store.port.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { describeBlobStoreConformance } from './blob-store.conformance.ts';

let server: S3TestServer;
let spoolDir: string;
beforeAll(async () => {
  server = await startS3Server();
  spoolDir = await mkdtemp(path.join(tmpdir(), 'sv-s3-spool-'));
});
afterAll(async () => {
  await server?.stop();
  await rm(spoolDir, { recursive: true, force: true });
});

const newStore = async (keyPrefix = '') => new S3BlobStore({ client: server.client(), bucket: await server.newBucket(), keyPrefix, spoolDir });

describeBlobStoreConformance('s3', () => newStore());
describeBlobStoreConformance('s3 with a key prefix', () => newStore('site/v1/'));

describe(S3BlobStore.name, () => {
  it('refuses keys longer than S3 allows, before any request', async () => {
    const sut = await newStore();
    await expect(sut.stage('a'.repeat(200) + '/' + 'b'.repeat(250) + '/' + 'c'.repeat(250) + '/' + 'd'.repeat(250) + '/' + 'e'.repeat(100), Readable.from(['x']))).rejects.toMatchObject({
      constructor: InvalidBlobKey,
      reason: 'too_long',
    });
  });

  it('leaves no spool file behind after commit or abort', async () => {
    const own = await mkdtemp(path.join(tmpdir(), 'sv-s3-spool-own-'));
    const sut = new S3BlobStore({ client: server.client(), bucket: await server.newBucket(), spoolDir: own });
    await (await sut.stage('a', Readable.from([Buffer.from('x')]))).commit();
    await (await sut.stage('b', Readable.from([Buffer.from('y')]))).abort();
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(own)).toEqual([]);
    await rm(own, { recursive: true, force: true });
  });
});
