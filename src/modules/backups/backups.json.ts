import type { BackupLocation, NetworkDevice, StoredBackup } from './backups.types.ts';

/** The API's snake_case shapes (routes and CLI print the same). */
export const locationJson = (l: BackupLocation) => ({ id: l.id, name: l.name, type: l.type, config: l.config, created_at: l.createdAt, updated_at: l.updatedAt });

export const deviceJson = (d: NetworkDevice) => ({
  id: d.id,
  name: d.name,
  address: d.address,
  group: d.group,
  backup_location_id: d.backupLocationId,
  enabled: d.enabled,
  strip_patterns: d.stripPatterns,
  ignore_patterns: d.ignorePatterns,
  model: d.collection.model,
  port: d.collection.port,
  credential_id: d.collection.credentialId,
  schedule: d.collection.schedule,
  timezone: d.collection.timezone,
  scrub_secrets: d.collection.scrubSecrets,
  commands: d.collection.commands,
  last_backup_at: d.status.lastBackupAt,
  last_changed_at: d.status.lastChangedAt,
  last_status: d.status.lastStatus,
  last_error: d.status.lastError,
  consecutive_failures: d.status.consecutiveFailures,
  created_at: d.createdAt,
  updated_at: d.updatedAt,
});

export const backupJson = (b: StoredBackup) => ({
  id: b.id,
  network_device_id: b.networkDeviceId,
  location_id: b.locationId,
  storage_ref: b.storageRef,
  sha256: b.sha256,
  size: b.size,
  collected_at: b.collectedAt,
  stored_at: b.storedAt,
  task_identifier: b.taskIdentifier,
});
