import { randomBytes } from 'node:crypto';
import { mkdir, statfs, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Bytes available to this (unprivileged) process on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** Creates the directory if needed and proves a file can be written and removed in it. */
export async function checkWritable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const probe = path.join(dir, `.probe-${randomBytes(6).toString('hex')}`);
  await writeFile(probe, 'ok');
  await unlink(probe);
}
