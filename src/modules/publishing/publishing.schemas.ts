import { localUrl, servesCdn } from './publishing.service.ts';
import type { PublishedFile, Site } from './publishing.types.ts';

// JSON shapes of the publishing API (answers built here, request schemas for Fastify below).

export function siteJson(site: Site, publicUrl: string) {
  return {
    name: site.name,
    organization_id: site.organizationId,
    cdn_enabled: site.cdnEnabled,
    local_fallback_mode: site.localFallbackMode,
    cdn_base_url: site.cdnBaseUrl,
    cache_control: site.cacheControl,
    // secret_access_key is write-only: only whether one is set is ever answered.
    s3: { endpoint: site.s3.endpoint, region: site.s3.region, bucket: site.s3.bucket, prefix: site.s3.prefix, access_key_id: site.s3.accessKeyId, secret_access_key_set: site.s3.secretAccessKeyEnc !== null },
    health: { business_hours: site.health.businessHours, time_zone: site.health.timeZone, sample_size: site.health.sampleSize, min_free_bytes: site.health.minFreeBytes, last_check_at: site.lastHealthAt, last_check_ok: site.lastHealthOk },
    failover: {
      pin: site.failover.pin,
      failure_threshold: site.failover.failureThreshold,
      recovery_threshold: site.failover.recoveryThreshold,
      state: site.failover.state,
      consecutive_failures: site.failover.failures,
      consecutive_successes: site.failover.successes,
      changed_at: site.failover.changedAt,
    },
    serving: servesCdn(site) ? 'cdn' : 'local',
    local_base_url: localUrl(publicUrl, site.name, ''),
    settings_version: site.settingsVersion,
    created_at: site.createdAt,
    updated_at: site.updatedAt,
  };
}

export function fileJson(f: PublishedFile, url?: { url: string; source: 'cdn' | 'local' }) {
  return {
    path: f.path,
    size: f.size,
    sha256: f.sha256,
    modified_at: f.modifiedAt,
    generation: f.generation,
    ...(url ? { url: url.url, source: url.source } : {}),
    cdn: { status: f.cdn.status, local_hash: f.sha256, cdn_hash: f.cdn.cdnHash, sync_verified: f.cdn.syncVerified && f.cdn.cdnHash === f.sha256, attempts: f.cdn.attempts, last_error: f.cdn.lastError },
  };
}

const nullableString = (maxLength: number) => ({ type: ['string', 'null'], maxLength }) as const;

/** Body of POST /api/v1/sites and PATCH /api/v1/sites/{site}; semantic checks are in SitesService. */
export const siteSettingsBody = (requireName: boolean) =>
  ({
    type: 'object',
    additionalProperties: false,
    ...(requireName ? { required: ['name'] } : {}),
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 63 },
      cdn_enabled: { type: 'boolean' },
      local_fallback_mode: { type: 'boolean' },
      cdn_base_url: nullableString(2000),
      cache_control: { type: 'string', minLength: 1, maxLength: 200 },
      s3: {
        type: 'object',
        additionalProperties: false,
        properties: {
          endpoint: nullableString(2000),
          region: nullableString(40),
          bucket: nullableString(63),
          prefix: { type: 'string', maxLength: 1024 },
          access_key_id: nullableString(128),
          secret_access_key: nullableString(256),
        },
      },
      health: {
        type: 'object',
        additionalProperties: false,
        properties: {
          business_hours: { type: 'string', maxLength: 11 },
          time_zone: { type: 'string', maxLength: 64 },
          sample_size: { type: 'integer' },
          min_free_bytes: { type: 'integer' },
        },
      },
      failover: {
        type: 'object',
        additionalProperties: false,
        properties: { pin: { type: 'string', enum: ['auto', 'cdn', 'local'] }, failure_threshold: { type: 'integer' }, recovery_threshold: { type: 'integer' } },
      },
    },
  }) as const;

export const siteParams = { type: 'object', required: ['site'], properties: { site: { type: 'string', maxLength: 63 } } } as const;
export const contentParams = { type: 'object', required: ['site'], properties: { site: { type: 'string', maxLength: 63 }, '*': { type: 'string' } } } as const;
