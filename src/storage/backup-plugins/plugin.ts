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

  /** Whether the location's repository or folder exists on this host (it is created on first store). */
  locationExists(config: PluginConfig): Promise<boolean>;

  /**
   * Every version the location holds, in pages sorted by storage ref in code-point order (the order the
   * index scan uses), for `rebuild-index --scope backups`. Entries that are not versions of a
   * `<group>/<device>` (a stray file, a symlink, an unreadable folder) come as problems.
   */
  scanVersions(config: PluginConfig): AsyncIterable<ReadonlyArray<ScannedVersion | ScanIssue>>;

  /** sha256 and size of versions by storage ref (absent refs are left out): what a rebuilt row records. */
  fingerprints(storageRefs: readonly string[], config: PluginConfig): Promise<Map<string, { sha256: string; size: number }>>;

  /** Whether the version is in storage now; undefined when that cannot be told. */
  hasVersion(storageRef: string, config: PluginConfig): Promise<boolean | undefined>;

  /** Ends long-lived helpers (git cat-file processes) once queued stores are written. */
  close(): Promise<void>;
}

/** One stored version found by a scan. */
export interface ScannedVersion {
  readonly kind: 'version';
  readonly storageRef: string;
  /** `<group>/<device>`. */
  readonly relPath: string;
  readonly collectedAt: Date;
  /** From the git commit's trailer; null for fs versions and commits made by other tools. */
  readonly taskIdentifier: string | null;
  readonly size: number;
  /** When storage got it (git: committer time; fs: the file's mtime): writes in flight are left alone. */
  readonly storedAtMs: number;
}

export interface ScanIssue {
  readonly kind: 'problem';
  /** Path relative to the location folder. */
  readonly key: string;
  readonly code: string;
  readonly message: string;
  /** True when something exists there but could not be read: index rows below it are never orphans. */
  readonly unreadable: boolean;
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
