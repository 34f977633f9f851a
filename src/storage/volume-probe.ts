import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';

export interface VolumeState {
  /** The process may create files in `dir` (permission check: nothing is written). */
  writable: boolean;
  /** Bytes available to this (unprivileged) process on the filesystem holding `dir`. */
  freeBytes: number;
}

/**
 * What a health check needs to know about the storage volume, read without writing anything (issue 12:
 * the old probe wrote a file on every health request). Throws when `dir` is missing or unreadable.
 */
export async function probeVolume(dir: string): Promise<VolumeState> {
  const s = await statfs(dir);
  const writable = await access(dir, constants.W_OK).then(
    () => true,
    () => false,
  );
  return { writable, freeBytes: s.bavail * s.bsize };
}
