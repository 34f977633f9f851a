import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { TEMP_PREFIX } from './safe-path.ts';

/**
 * A temp-file name in the same directory (same filesystem, so rename is atomic). Hidden, recognisable.
 * It does not embed the target's name: a 255-byte target name plus a prefix would exceed NAME_MAX.
 */
export function tempPathFor(target: string): string {
  return tempPathIn(path.dirname(target));
}

/** A fresh temp-file name inside `dir` (uploads and copies, whose final name is chosen later). */
export function tempPathIn(dir: string): string {
  return path.join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`);
}

/** Prefix of every temp file Stormvault writes; reconciliation and listings skip such names. Defined in
 * the pure safe-path.ts because normalizeUserPath refuses it in user paths. */
export { TEMP_PREFIX };

/** Makes a rename or link inside `dir` durable (the directory entry itself is data too). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a small file so that a crash at any moment leaves the old content or the new, never a torn file:
 * temp file in the same directory, fsync, then rename (or, with `exclusive`, link — which fails if the
 * target appeared meanwhile — so two processes racing to create it agree on one content).
 * Returns false when `exclusive` and the file already existed.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Buffer,
  options: { mode?: number; exclusive?: boolean } = {},
): Promise<boolean> {
  const tmp = tempPathFor(target);
  const handle = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.exclusive) {
      try {
        await link(tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err;
      }
    } else {
      await rename(tmp, target);
    }
    await fsyncDir(path.dirname(target));
    return true;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** Reads a file created by writeFileAtomic, or creates it with `make()` if it does not exist yet. */
export async function readOrCreateFile(target: string, make: () => string, mode = 0o600): Promise<string> {
  try {
    return await readFile(target, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await writeFileAtomic(target, make(), { mode, exclusive: true });
  return readFile(target, 'utf8');
}
