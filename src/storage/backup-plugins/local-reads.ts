import { AppError } from '../../errors.ts';
import { BackupVersionNotFound } from '../backup-repository.port.ts';
import { resolveLocationFolder } from './backup-folder.ts';
import type { BackupStoragePlugin } from './plugin.ts';
import type { StorageBackend, StorageLocationConfig } from './storage-tasks.ts';

/**
 * Reads versions in this process when the location's repository or folder is on this host: the same
 * plugin a storage worker runs (the git one answers through its long-lived `git cat-file --batch`), the
 * same confinement check, minus the round trip through the task queue. Resolves null when the location is
 * not here (storage workers on another host), so the caller asks a storage worker instead.
 * @throws AppError('not_found') when the location is here but the version is not.
 */
export type LocalBackupReads = (backend: StorageBackend, config: StorageLocationConfig, storageRefs: readonly string[]) => Promise<Buffer[] | null>;

export function localBackupReads(backupsRoot: string, plugins: Record<StorageBackend, BackupStoragePlugin>): LocalBackupReads {
  return async (backend, config, storageRefs) => {
    const plugin = plugins[backend];
    let folder: string;
    try {
      folder = await resolveLocationFolder(backupsRoot, config.organization_id, config.folder);
    } catch (err) {
      if (err instanceof AppError) return null; // the storage worker reports it
      throw err;
    }
    const pc = { ...config, folder };
    if (!(await plugin.locationExists(pc))) return null;
    try {
      return await Promise.all(storageRefs.map((ref) => plugin.readBackup(ref, pc)));
    } catch (err) {
      if (err instanceof BackupVersionNotFound) throw new AppError('not_found', 'this version is missing from storage');
      throw err;
    }
  };
}
