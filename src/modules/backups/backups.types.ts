/** Domain types of the backups module (issue 9). A "network device" is a router or switch, never a sync device. */

export type LocationType = 'git' | 'fs';

export interface GitLocationConfig {
  folder: string;
  branch: string;
  author_name: string;
  author_email: string;
}

export interface FsLocationConfig {
  folder: string;
  keep_versions: number | null;
  keep_days: number | null;
}

export type LocationConfig = GitLocationConfig | FsLocationConfig;

export interface BackupLocation {
  id: string;
  organizationId: string;
  name: string;
  type: LocationType;
  config: LocationConfig;
  createdAt: string;
  updatedAt: string;
}

export interface NetworkDeviceStatus {
  lastBackupAt: string | null;
  lastChangedAt: string | null;
  lastStatus: 'success' | 'failed' | null;
  lastError: string | null;
  consecutiveFailures: number;
}

/**
 * How a collector reaches the device (issue 10, part 2). `model` null: nothing collects it, configurations
 * only arrive by push. `schedule` null: the organization's default schedule.
 */
export interface DeviceCollection {
  model: string | null;
  port: number;
  credentialId: string | null;
  /** Cron (5 fields) read in `timezone` (IANA; null = UTC). */
  schedule: string | null;
  timezone: string | null;
  /** Apply the model's `secrets` substitutions before storing (default on). */
  scrubSecrets: boolean;
  /** Replaces the model's commands (the generic exec model: "run the given commands"). */
  commands: string[] | null;
}

export interface NetworkDevice {
  id: string;
  organizationId: string;
  name: string;
  address: string;
  group: string;
  backupLocationId: string;
  enabled: boolean;
  stripPatterns: string[];
  ignorePatterns: string[];
  collection: DeviceCollection;
  status: NetworkDeviceStatus;
  createdAt: string;
  updatedAt: string;
}

export interface StoredBackup {
  id: string;
  organizationId: string;
  networkDeviceId: string;
  locationId: string;
  storageRef: string;
  sha256: string;
  size: number;
  collectedAt: string;
  storedAt: string;
  taskIdentifier: string;
}

/** What the storage-results consumer applies to the index, once per task identifier. */
export interface StorageOutcome {
  taskIdentifier: string;
  organizationId: string;
  networkDeviceId: string;
  locationId: string;
  collectedAt: string;
  processedAt: string;
  /** null when the store failed. */
  stored: { storageRef: string; sha256: string; size: number; changed: boolean; backupId: string } | null;
  error: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
