import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';

/**
 * Row types of every table, as the database stores them. Conventions that keep one schema valid on
 * SQLite and PostgreSQL alike:
 * - timestamps are ISO-8601 UTC strings (`Date#toISOString()`), which sort correctly as text;
 * - booleans are integers 0/1;
 * - 64-bit integers come back as JS numbers (the pg pool parses int8; sizes stay below 2^53).
 * Row types stay inside repositories; services return domain types.
 */
export interface UsersTable {
  id: string;
  username: string;
  password_hash: string | null;
  is_admin: number;
  quota_bytes: number | null;
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  name: string;
  /** First characters of the key, shown in listings so a user can tell keys apart. */
  key_prefix: string;
  /** sha256 of the whole key (keys carry 256 random bits, so a fast hash is enough). */
  key_hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface StoredFilesTable {
  id: Generated<number>;
  owner_id: string;
  /** Relative to the owner's root, NFC, '/'-separated, no leading or trailing slash. */
  path: string;
  name: string;
  /** Path of the parent folder ('' for the owner's root). */
  parent_path: string;
  size: number;
  content_type: string;
  is_directory: number;
  sha256: string | null;
  /**
   * Move journal (files module): where a move of this row is heading while its rename on disk is in
   * flight; null otherwise. Rows with a pending_path are resolved against the disk at start-up.
   */
  pending_path: ColumnType<string | null, string | null | undefined, string | null>;
  modified_at: string;
  created_at: string;
  updated_at: string;
}

export interface ShareLinksTable {
  id: string;
  owner_id: string;
  /** The index row shared; a move keeps the row and so the link. Deleting the row deletes its links. */
  file_id: number;
  /** sha256 of the token: tokens are secrets and are shown once, at creation. */
  token_hash: string;
  password_hash: string | null;
  expires_at: string | null;
  max_downloads: number | null;
  download_count: number;
  created_at: string;
  revoked_at: string | null;
}

export interface RefreshTokensTable {
  id: string;
  user_id: string;
  /** All tokens rotated from one login share a family; replaying a used one revokes the family. */
  family_id: string;
  token_hash: string;
  device_id: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  revoked_at: string | null;
}

/** Lease-based lock of index reconciliation (one row while a reconciliation runs). */
export interface IndexSyncLocksTable {
  name: string;
  /** Random id of the run holding the lock. */
  holder: string;
  /** Who holds it, for the refusal message: host, pid, mode. */
  description: string;
  acquired_at: string;
  /** The lease: a holder renews it while running; an expired row may be taken over. */
  expires_at: string;
}

// ---- Background tasks (issue 3; migration 0002_tasks) ----
/** One enqueued task of the database backend; kept as its result after it finishes, until pruned. */
export interface BackgroundTasksTable {
  id: string;
  task_name: string;
  queue: string;
  priority: number;
  /** READY | RUNNING | SUCCESSFUL | FAILED */
  status: string;
  /** JSON */
  args: string;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: number;
  backoff_cap_ms: number;
  backoff_jitter: number;
  timeout_ms: number | null;
  idempotency_key: string | null;
  enqueued_at: string;
  run_after: string;
  started_at: string | null;
  last_attempted_at: string | null;
  finished_at: string | null;
  /** JSON array of per-attempt errors. */
  errors: string;
  /** JSON, when SUCCESSFUL. */
  return_value: string | null;
  dead_lettered: number;
  cancelled: number;
  worker_id: string | null;
  /** While RUNNING: the worker must heartbeat before this, or another worker takes the task over. */
  lease_expires_at: string | null;
  progress_fraction: number | null;
  progress_message: string | null;
  progress_at: string | null;
}

/** A periodic schedule of the database backend. */
export interface BackgroundTaskSchedulesTable {
  name: string;
  cron: string;
  timezone: string;
  task_name: string;
  /** JSON ScheduleTemplate. */
  template: string;
  next_tick_at: string;
  updated_at: string;
}

// ---- Records sync (issue 5; migration 0003_records_sync) ----
export interface OrganizationsTable {
  id: string;
  name: string;
  storage_quota_bytes: number | null;
  /** Last sync sequence number handed out; bumped under a row lock by every write. */
  change_seq: number;
  /** Highest sequence number of a purged tombstone; older cursors must resync. */
  purged_seq: number;
  /** Bytes of the client-written text of live records (migration 0007); storage_quota_bytes limits it. */
  storage_used_bytes: ColumnType<number, number | undefined, number>;
  created_at: string;
  updated_at: string;
}

/** A device's last processed push mutation id in one organization (migration 0007). */
export interface SyncDeviceStateTable {
  device_id: string;
  organization_id: string;
  last_mutation_id: number;
  updated_at: string;
}

export interface OrganizationMembersTable {
  organization_id: string;
  user_id: string;
  role: 'admin' | 'member';
  created_at: string;
}

export interface DevicesTable {
  id: string;
  user_id: string;
  name: string;
  /** Highest push mutation id processed across the device's organizations (display; migration 0007 moved the replay counter to sync_device_state). */
  last_mutation_id: number;
  created_at: string;
  last_seen_at: string | null;
  retired_at: string | null;
}

/** Columns every synced record table shares (JSON columns are stored as text). */
export interface SyncedColumns {
  id: string;
  organization_id: string;
  version: number;
  vector_clock: string;
  field_clocks: string;
  checksum: string;
  seq: number;
  origin_device_id: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface RecProjectsTable extends SyncedColumns {
  name: string;
  archived: number;
}

export interface RecTasksTable extends SyncedColumns {
  title: string;
  description: string;
  status: string;
  priority: string;
  due_date: string | null;
  assignee_id: string | null;
  project_id: string | null;
  tags: string;
  custom_fields: string;
}

export interface RecCommentsTable extends SyncedColumns {
  task_id: string;
  parent_id: string | null;
  body: string;
  edited_at: string | null;
}

export interface RecTaskHistoryTable {
  id: Generated<number>;
  organization_id: string;
  task_id: string;
  user_id: string | null;
  device_id: string | null;
  op: string;
  changes: string;
  version: number;
  created_at: string;
}

export interface SyncConflictsTable {
  id: string;
  organization_id: string;
  entity: string;
  entity_id: string;
  op: string;
  fields: string;
  local_data: string | null;
  local_clock: string;
  local_device_id: string | null;
  remote_data: string | null;
  remote_clock: string;
  remote_deleted: number;
  status: 'open' | 'resolved';
  resolution: string | null;
  resolved_by: string | null;
  created_at: string;
  resolved_at: string | null;
}

export interface SyncMutationsTable {
  device_id: string;
  mutation_id: number;
  organization_id: string;
  entity: string;
  entity_id: string;
  status: string;
  conflict_id: string | null;
  reason: string | null;
  created_at: string;
}

export interface SyncLogTable {
  id: Generated<number>;
  organization_id: string;
  device_id: string | null;
  kind: 'push' | 'pull';
  changes: number;
  conflicts: number;
  created_at: string;
}

export interface SyncMetricsTable {
  organization_id: string;
  day: string;
  pushes: number;
  pulls: number;
  changes_pushed: number;
  changes_pulled: number;
  conflicts: number;
  recorded_at: string;
}

// ---- Publishing, alerts, webhooks (issue 11; migration 0011_publishing) ----
export interface PublishSitesTable {
  id: string;
  organization_id: string;
  name: string;
  cdn_enabled: number;
  local_fallback_mode: number;
  cdn_base_url: string | null;
  cache_control: string;
  s3_endpoint: string | null;
  s3_region: string | null;
  s3_bucket: string | null;
  s3_prefix: string;
  s3_access_key_id: string | null;
  /** AES-256-GCM sealed (src/lib/secret-box.ts). */
  s3_secret_access_key_enc: string | null;
  health_business_hours: string;
  health_time_zone: string;
  health_sample_size: number;
  health_min_free_bytes: number;
  failover_pin: string;
  failover_failure_threshold: number;
  failover_recovery_threshold: number;
  failover_state: string;
  failover_failures: number;
  failover_successes: number;
  failover_changed_at: string | null;
  last_health_at: string | null;
  last_health_ok: number | null;
  settings_version: number;
  created_at: string;
  updated_at: string;
}

export interface PublishSettingsVersionTable {
  id: number;
  version: number;
}

export interface PublishedFilesTable {
  id: Generated<number>;
  site_id: string;
  path: string;
  size: number;
  sha256: string;
  modified_at: string;
  generation: number;
  deleted: number;
  cdn_status: string;
  cdn_hash: string | null;
  sync_verified: number;
  attempts: number;
  last_error: string | null;
  upload_holder: string | null;
  upload_lease_until: string | null;
  updated_at: string;
}

export interface PublishLogTable {
  id: Generated<number>;
  site_id: string;
  path: string;
  generation: number;
  action: string;
  status: string;
  attempt: number;
  local_hash: string | null;
  cdn_hash: string | null;
  sync_verified: number;
  error: string | null;
  created_at: string;
}

export interface AlertsTable {
  id: string;
  organization_id: string;
  condition_key: string;
  kind: string;
  subject: string;
  severity: string;
  message: string;
  /** JSON object. */
  details: string;
  occurrences: number;
  first_seen_at: string;
  last_seen_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  resolved_at: string | null;
}

export interface WebhooksTable {
  id: string;
  organization_id: string;
  url: string;
  /** JSON array of event names. */
  events: string;
  secret_enc: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  last_delivery_at: string | null;
  last_delivery_status: string | null;
}

/** Throttle counters of the database store (src/throttle; migration 0008). */
export interface RateLimitsTable {
  key: string;
  points: number;
  /** Epoch milliseconds when the key's window ends; null = never. */
  expire: number | null;
}

/** Dead properties of WebDAV resources (issue 13, migration 0010). */
export interface DavPropertiesTable {
  owner_id: string;
  path: string;
  namespace: string;
  name: string;
  value_xml: string;
}

/** WebDAV write locks (issue 13, migration 0010). */
export interface DavLocksTable {
  token: string;
  owner_id: string;
  path: string;
  scope: string;
  depth: string;
  owner_xml: string | null;
  timeout_seconds: number;
  expires_at: string;
  created_at: string;
}

export interface Database {
  users: UsersTable;
  rate_limits: RateLimitsTable;
  refresh_tokens: RefreshTokensTable;
  api_keys: ApiKeysTable;
  stored_files: StoredFilesTable;
  share_links: ShareLinksTable;
  index_sync_locks: IndexSyncLocksTable;
  background_tasks: BackgroundTasksTable;
  background_task_schedules: BackgroundTaskSchedulesTable;
  organizations: OrganizationsTable;
  organization_members: OrganizationMembersTable;
  devices: DevicesTable;
  sync_device_state: SyncDeviceStateTable;
  rec_projects: RecProjectsTable;
  rec_tasks: RecTasksTable;
  rec_comments: RecCommentsTable;
  rec_task_history: RecTaskHistoryTable;
  sync_conflicts: SyncConflictsTable;
  sync_mutations: SyncMutationsTable;
  sync_log: SyncLogTable;
  sync_metrics: SyncMetricsTable;
  publish_sites: PublishSitesTable;
  publish_settings_version: PublishSettingsVersionTable;
  published_files: PublishedFilesTable;
  publish_log: PublishLogTable;
  alerts: AlertsTable;
  webhooks: WebhooksTable;
  dav_properties: DavPropertiesTable;
  dav_locks: DavLocksTable;
}

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Either the database or an open transaction: repositories accept both. */
export type DbOrTx = Kysely<Database> | Transaction<Database>;

export type { ColumnType };
