import { lstatSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { TEMP_PREFIX } from './safe-path.ts';

/**
 * Removes an upload temp file (`.sv-tmp-…`) left behind by a process killed mid-upload (issue 12:
 * "partial uploads left forever"), if it still has not been modified since `staleBeforeMs`. The caller
 * found it during a scan; the lstat here is repeated just before the unlink, so an upload that resumed
 * writing in between keeps its file. Only names with the temp prefix and regular files are ever removed.
 * Returns whether it removed the file.
 */
export function removeStaleTemp(file: string, staleBeforeMs: number): boolean {
  if (!path.basename(file).startsWith(TEMP_PREFIX)) return false;
  try {
    const s = lstatSync(file, { throwIfNoEntry: false });
    if (!s || !s.isFile() || s.mtimeMs >= staleBeforeMs) return false;
    unlinkSync(file);
    return true;
  } catch {
    // EACCES, or removed by its own upload's cleanup meanwhile: nothing for the sweep to do.
    return false;
  }
}
