import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../errors.ts';
import { normalizeUserPath } from '../safe-path.ts';

/**
 * Where a backup location's folder lives: `<backups root>/<organization id>/<folder>` (issue 9). The
 * folder is relative; an absolute path, `..`, or a symlink that leads out of the organization's folder is
 * refused, so an org admin can never point the server at `/etc` or at another organization's repository.
 * Checked when a location is saved and again by the storage worker before every write or read.
 */
export function normalizeLocationFolder(folder: unknown): string {
  if (typeof folder !== 'string' || folder.trim() === '') throw new AppError('invalid_path', 'config.folder must be a non-empty relative path');
  if (path.isAbsolute(folder) || /^[A-Za-z]:/.test(folder)) throw new AppError('invalid_path', `config.folder must be relative to the organization's backup folder, not ${JSON.stringify(folder.slice(0, 200))}`);
  if (folder.startsWith('/') || folder.endsWith('/')) throw new AppError('invalid_path', 'config.folder must not start or end with "/"');
  return normalizeUserPath(folder);
}

/**
 * The absolute folder of a location, after the symlink half of the confinement check. Creates the
 * organization's own folder (never the location's: git creates that on first use).
 */
export async function resolveLocationFolder(backupsRoot: string, organizationId: string, folder: string): Promise<string> {
  const rel = normalizeLocationFolder(folder);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(organizationId)) throw new AppError('invalid_request', 'invalid organization id');
  const orgRoot = path.join(path.resolve(backupsRoot), organizationId);
  await mkdir(orgRoot, { recursive: true });
  const realOrg = await realpath(orgRoot);
  const target = path.join(orgRoot, rel);
  // The deepest part of the path that exists must resolve (symlinks followed) inside the org's folder.
  for (let probe = target; probe.length > orgRoot.length; probe = path.dirname(probe)) {
    const real = await realpath(probe).catch(() => null);
    if (real === null) {
      // A dangling symlink could later be pointed anywhere: refuse it like an escaping one.
      if (await lstat(probe).then(() => true, () => false)) throw new AppError('invalid_path', `config.folder ${JSON.stringify(rel)} goes through a dangling symlink`);
      continue;
    }
    if (real !== realOrg && !real.startsWith(realOrg + path.sep)) {
      throw new AppError('invalid_path', `config.folder ${JSON.stringify(rel)} leads outside the organization's backup folder (symlink)`);
    }
    break;
  }
  return target;
}
