/**
 * A storage plugin of the backups pipeline (issue 9): what a storage worker runs for a `storage.store`
 * or `storage.read` task. Plugins are standalone: they import nothing from src/modules or src/db, so a
 * storage worker runs with no database configured (redis tasks backend + Redis Streams).
 */
export interface BackupStoragePlugin {
  readonly backend: 'git' | 'fs';
  /**
   * Stores `content` as the newest version of `relPath` (`<group>/<device>`) in the location whose
   * absolute folder is `config.folder`, unless it is unchanged (bytes, or all but `ignorePatterns` lines).
   */
  storeBackup(content: Buffer, relPath: string, config: PluginConfig, meta: StoreMeta): Promise<StoreOutcome>;
  /** The content of a version stored earlier. @throws BackupVersionNotFound */
  readBackup(storageRef: string, config: PluginConfig): Promise<Buffer>;
  /**
   * Daily upkeep of one location: git repacks (`git maintenance run --auto`); fs removes versions beyond
   * `keep_versions` per device or older than `keep_days` (never a device's newest). Resolves with the
   * storage refs removed, so the index drops their rows too.
   */
  maintain(config: PluginConfig, now: Date): Promise<{ removed: string[] }>;
}

export interface PluginConfig {
  /** Absolute folder, already confined by the host (resolveLocationFolder). */
  readonly folder: string;
  readonly branch?: string;
  readonly author_name?: string;
  readonly author_email?: string;
  readonly keep_versions?: number | null;
  readonly keep_days?: number | null;
}

export interface StoreMeta {
  readonly collectedAt: Date;
  readonly taskIdentifier: string;
  readonly ignorePatterns: readonly string[];
}

export interface StoreOutcome {
  readonly storageRef: string;
  readonly sha256: string;
  readonly size: number;
  readonly changed: boolean;
}
