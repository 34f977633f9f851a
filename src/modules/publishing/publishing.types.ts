import type { FailoverPin, FailoverState } from './failover.ts';

/** A site: a named set of published files of one organization, with where and how it is mirrored. */
export interface Site {
  id: string;
  organizationId: string;
  /** [a-z0-9-]{1,63}; global, since the public URL /p/{site}/… names no organization. */
  name: string;
  cdnEnabled: boolean;
  localFallbackMode: boolean;
  cdnBaseUrl: string | null;
  cacheControl: string;
  s3: {
    endpoint: string | null;
    region: string | null;
    bucket: string | null;
    prefix: string;
    accessKeyId: string | null;
    /** The sealed secret (never leaves the module); null when none is set. */
    secretAccessKeyEnc: string | null;
  };
  health: { businessHours: string; timeZone: string; sampleSize: number; minFreeBytes: number };
  failover: {
    pin: FailoverPin;
    failureThreshold: number;
    recoveryThreshold: number;
    state: FailoverState;
    failures: number;
    successes: number;
    changedAt: string | null;
  };
  lastHealthAt: string | null;
  lastHealthOk: boolean | null;
  settingsVersion: number;
  createdAt: string;
  updatedAt: string;
}

/** Settings as an admin sends them (create: all optional but the name; patch: any subset). */
export interface SiteSettingsInput {
  name?: string;
  cdn_enabled?: boolean;
  local_fallback_mode?: boolean;
  cdn_base_url?: string | null;
  cache_control?: string;
  s3?: {
    endpoint?: string | null;
    region?: string | null;
    bucket?: string | null;
    prefix?: string;
    access_key_id?: string | null;
    secret_access_key?: string | null;
  };
  health?: { business_hours?: string; time_zone?: string; sample_size?: number; min_free_bytes?: number };
  failover?: { pin?: FailoverPin; failure_threshold?: number; recovery_threshold?: number };
}

export type CdnStatus = 'pending' | 'uploading' | 'verified' | 'failed' | 'dead_letter' | 'deleting';

/** One published file as the index knows it, with its mirror state. */
export interface PublishedFile {
  id: number;
  siteId: string;
  path: string;
  size: number;
  sha256: string;
  modifiedAt: string;
  generation: number;
  deleted: boolean;
  cdn: { status: CdnStatus; cdnHash: string | null; syncVerified: boolean; attempts: number; lastError: string | null };
}

export interface PublishLogEntry {
  siteId: string;
  path: string;
  generation: number;
  action: 'upload' | 'delete' | 'health';
  status: 'verified' | 'mismatch' | 'error' | 'dead_letter' | 'superseded' | 'deleted' | 'missing';
  attempt: number;
  localHash: string | null;
  cdnHash: string | null;
  syncVerified: boolean;
  error: string | null;
}
