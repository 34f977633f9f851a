import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { OutboundRefused, type OutboundPolicy } from '../../net/outbound.ts';
import { normalizeUserPath } from '../../storage/safe-path.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { isTimeZone, parseBusinessHours } from './business-hours.ts';
import type { FailoverPin, FailoverState } from './failover.ts';
import type { PublishingRepository } from './publishing.repository.ts';
import type { Site, SiteSettingsInput } from './publishing.types.ts';
import type { SiteDirectory } from './site-directory.ts';

export const SITE_NAME_RE = /^[a-z0-9-]{1,63}$/;
const PINS: readonly FailoverPin[] = ['auto', 'cdn', 'local'];
const DEFAULT_CACHE_CONTROL = 'public, max-age=60';

/** How a route learns the caller's role in an organization (the organizations module). */
export type RoleLookup = (userId: string, organizationId: string) => Promise<OrgContext | null>;

const secretContext = (siteId: string) => `publish_sites:${siteId}:s3_secret_access_key`;
const bad = (message: string) => new AppError('invalid_request', message);

/**
 * Sites and their settings (issue 11 "Sites and settings"): org-scoped, admins manage, members publish.
 * Every change commits with a new settings version and nudges every process (SiteDirectory). The S3
 * secret is write-only: sealed with the app's secret key, never answered, never logged.
 */
export class SitesService {
  constructor(
    private readonly db: Db,
    private readonly repo: PublishingRepository,
    private readonly directory: SiteDirectory,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    private readonly roleOf: RoleLookup,
    private readonly outbound: Pick<OutboundPolicy, 'check'>,
  ) {}

  /**
   * The site `name` and the caller's context in its organization. A site of an organization the caller
   * does not belong to answers exactly like a missing one (404), so names of other teams' sites leak nothing.
   */
  async access(userId: string, name: string, need: 'member' | 'admin'): Promise<{ site: Site; ctx: OrgContext }> {
    const site = SITE_NAME_RE.test(name) ? await this.directory.find(name) : undefined;
    const ctx = site ? await this.roleOf(userId, site.organizationId) : null;
    if (!site || !ctx) throw new AppError('not_found', `no site named ${JSON.stringify(name.slice(0, 63))}`);
    if (need === 'admin' && ctx.role !== 'admin') throw new AppError('forbidden', 'managing a site needs the admin role in its organization');
    return { site, ctx };
  }

  /** The site by name for public serving (no caller). */
  findPublic(name: string): Promise<Site | undefined> {
    return SITE_NAME_RE.test(name) ? this.directory.find(name) : Promise.resolve(undefined);
  }

  findById(id: string): Promise<Site | undefined> {
    return this.repo.findSiteById(id);
  }

  list(ctx: OrgContext): Promise<Site[]> {
    return this.repo.listSites(ctx.organizationId);
  }

  all(): Promise<Site[]> {
    return this.repo.allSites();
  }

  async create(ctx: OrgContext, input: SiteSettingsInput): Promise<Site> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'creating a site needs the admin role in the organization');
    if (typeof input.name !== 'string' || !SITE_NAME_RE.test(input.name)) throw bad('name must be 1-63 characters of a-z, 0-9 and "-"');
    const now = this.clock.now().toISOString();
    const id = randomUUID();
    const base: Site = {
      id,
      organizationId: ctx.organizationId,
      name: input.name,
      cdnEnabled: false,
      localFallbackMode: false,
      cdnBaseUrl: null,
      cacheControl: DEFAULT_CACHE_CONTROL,
      s3: { endpoint: null, region: 'us-east-1', bucket: null, prefix: '', accessKeyId: null, secretAccessKeyEnc: null },
      health: { businessHours: '08:00-18:00', timeZone: 'UTC', sampleSize: 20, minFreeBytes: 0 },
      failover: { pin: 'auto', failureThreshold: 3, recoveryThreshold: 3, state: 'cdn', failures: 0, successes: 0, changedAt: null },
      lastHealthAt: null,
      lastHealthOk: null,
      settingsVersion: 0,
      createdAt: now,
      updatedAt: now,
    };
    const site = this.apply(base, input);
    if (site.s3.endpoint) await checkS3Endpoint(this.outbound, site.s3.endpoint);
    try {
      const version = await inTransaction(this.db, async (handle) => {
        const tx = this.repo.on(handle);
        const v = await tx.bumpVersion();
        await tx.insertSite({ ...site, settingsVersion: v });
        return v;
      });
      await this.directory.changed(version);
      return { ...site, settingsVersion: version };
    } catch (err) {
      if (/unique|duplicate/i.test((err as Error).message)) throw new AppError('already_exists', `a site named ${JSON.stringify(site.name)} exists already`);
      throw err;
    }
  }

  async update(site: Site, input: SiteSettingsInput): Promise<Site> {
    if (input.name !== undefined && input.name !== site.name) throw bad('a site cannot be renamed (its name is part of every published URL)');
    const next = this.apply(site, input);
    // Only a changed endpoint: switching to local fallback must work whatever the policy says meanwhile
    // (the mirror checks the endpoint again whenever it opens the bucket).
    if (next.s3.endpoint && next.s3.endpoint !== site.s3.endpoint) await checkS3Endpoint(this.outbound, next.s3.endpoint);
    return this.save({ ...next, updatedAt: this.clock.now().toISOString() });
  }

  /** Records the automatic failover's state after a health check (a settings change: URLs depend on it). */
  async recordHealth(site: Site, outcome: { ok: boolean; state: FailoverState; failures: number; successes: number; switched: boolean }): Promise<Site> {
    const now = this.clock.now().toISOString();
    const current = (await this.repo.findSiteById(site.id)) ?? site;
    return this.save({
      ...current,
      lastHealthAt: now,
      lastHealthOk: outcome.ok,
      failover: { ...current.failover, state: outcome.state, failures: outcome.failures, successes: outcome.successes, changedAt: outcome.switched ? now : current.failover.changedAt },
    });
  }

  async delete(site: Site, liveFiles: number): Promise<void> {
    if (liveFiles > 0) throw new AppError('not_empty', `site ${site.name} still publishes ${liveFiles} file(s); delete its content first`);
    const version = await inTransaction(this.db, async (handle) => {
        const tx = this.repo.on(handle);
      const v = await tx.bumpVersion();
      await tx.deleteSite(site.id);
      return v;
    });
    await this.directory.changed(version);
  }

  /** The decrypted S3 secret (for the mirror only). */
  secretOf(site: Site): string | null {
    return site.s3.secretAccessKeyEnc ? this.secrets.open(site.s3.secretAccessKeyEnc, secretContext(site.id)) : null;
  }

  private async save(site: Site): Promise<Site> {
    const version = await inTransaction(this.db, async (handle) => {
        const tx = this.repo.on(handle);
      const v = await tx.bumpVersion();
      await tx.updateSite({ ...site, settingsVersion: v });
      return v;
    });
    await this.directory.changed(version);
    return { ...site, settingsVersion: version };
  }

  /** `input` applied over `base`, every field checked; throws 400 with the first problem. */
  private apply(base: Site, input: SiteSettingsInput): Site {
    const s3In = input.s3 ?? {};
    const hIn = input.health ?? {};
    const fIn = input.failover ?? {};
    const site: Site = {
      ...base,
      cdnEnabled: input.cdn_enabled ?? base.cdnEnabled,
      localFallbackMode: input.local_fallback_mode ?? base.localFallbackMode,
      cdnBaseUrl: input.cdn_base_url === undefined ? base.cdnBaseUrl : input.cdn_base_url === null ? null : httpUrl(input.cdn_base_url, 'cdn_base_url').replace(/\/+$/, ''),
      cacheControl: input.cache_control === undefined ? base.cacheControl : headerValue(input.cache_control, 'cache_control'),
      s3: {
        endpoint: s3In.endpoint === undefined ? base.s3.endpoint : s3In.endpoint === null ? null : httpUrl(s3In.endpoint, 's3.endpoint').replace(/\/+$/, ''),
        region: s3In.region === undefined ? base.s3.region : s3In.region === null ? null : matching(s3In.region, /^[a-z0-9-]{1,40}$/, 's3.region', 'a region name such as "us-east-1"'),
        bucket: s3In.bucket === undefined ? base.s3.bucket : s3In.bucket === null ? null : matching(s3In.bucket, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 's3.bucket', 'an S3 bucket name (3-63 of a-z, 0-9, ".", "-")'),
        prefix: s3In.prefix === undefined ? base.s3.prefix : prefixOf(s3In.prefix),
        accessKeyId: s3In.access_key_id === undefined ? base.s3.accessKeyId : s3In.access_key_id === null ? null : matching(s3In.access_key_id, /^[\x21-\x7e]{1,128}$/, 's3.access_key_id', '1-128 printable characters'),
        secretAccessKeyEnc:
          s3In.secret_access_key === undefined
            ? base.s3.secretAccessKeyEnc
            : s3In.secret_access_key === null
              ? null
              : this.secrets.seal(matching(s3In.secret_access_key, /^[\x21-\x7e]{1,256}$/, 's3.secret_access_key', '1-256 printable characters'), secretContext(base.id)),
      },
      health: {
        businessHours: hIn.business_hours === undefined ? base.health.businessHours : businessHours(hIn.business_hours),
        timeZone: hIn.time_zone === undefined ? base.health.timeZone : timeZone(hIn.time_zone),
        sampleSize: hIn.sample_size === undefined ? base.health.sampleSize : intIn(hIn.sample_size, 1, 1000, 'health.sample_size'),
        minFreeBytes: hIn.min_free_bytes === undefined ? base.health.minFreeBytes : intIn(hIn.min_free_bytes, 0, Number.MAX_SAFE_INTEGER, 'health.min_free_bytes'),
      },
      failover: {
        ...base.failover,
        pin: fIn.pin === undefined ? base.failover.pin : pinOf(fIn.pin),
        failureThreshold: fIn.failure_threshold === undefined ? base.failover.failureThreshold : intIn(fIn.failure_threshold, 1, 100, 'failover.failure_threshold'),
        recoveryThreshold: fIn.recovery_threshold === undefined ? base.failover.recoveryThreshold : intIn(fIn.recovery_threshold, 1, 100, 'failover.recovery_threshold'),
      },
    };
    if (site.cdnEnabled) {
      const missing = [
        !site.cdnBaseUrl && 'cdn_base_url',
        !site.s3.bucket && 's3.bucket',
        !site.s3.region && 's3.region',
        !site.s3.accessKeyId && 's3.access_key_id',
        !site.s3.secretAccessKeyEnc && 's3.secret_access_key',
      ].filter(Boolean);
      if (missing.length > 0) throw bad(`cdn_enabled needs ${missing.join(', ')}`);
    }
    return site;
  }
}

/**
 * A site's own S3 endpoint against the outbound policy (src/net/outbound.ts: no loopback, private or
 * link-local address unless an admin allowed it), after DNS resolution. 400 with the policy's reason.
 */
export async function checkS3Endpoint(outbound: Pick<OutboundPolicy, 'check'>, endpoint: string): Promise<void> {
  try {
    await outbound.check(endpoint);
  } catch (err) {
    if (err instanceof OutboundRefused) throw bad(`s3.endpoint ${endpoint} is not allowed: ${err.reason}`);
    throw err;
  }
}

/** True when the site has what the mirror needs. */
export function mirrorConfigured(site: Site): boolean {
  return Boolean(site.s3.bucket && site.s3.region && site.s3.accessKeyId && site.s3.secretAccessKeyEnc);
}

function httpUrl(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length > 2000) throw bad(`${field} must be an http:// or https:// URL`);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw bad(`${field} must be an http:// or https:// URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) {
    throw bad(`${field} must be an http:// or https:// URL without query, fragment or credentials`);
  }
  return url.toString();
}

function headerValue(v: unknown, field: string): string {
  if (typeof v !== 'string' || !/^[\x20-\x7e]{1,200}$/.test(v)) throw bad(`${field} must be 1-200 printable ASCII characters`);
  return v.trim();
}

function matching(v: unknown, re: RegExp, field: string, what: string): string {
  if (typeof v !== 'string' || !re.test(v)) throw bad(`${field} must be ${what}`);
  return v;
}

function prefixOf(v: unknown): string {
  if (typeof v !== 'string') throw bad('s3.prefix must be a string');
  if (v === '') return '';
  try {
    return normalizeUserPath(v);
  } catch (err) {
    throw bad(`s3.prefix: ${(err as Error).message}`);
  }
}

function businessHours(v: unknown): string {
  const parsed = typeof v === 'string' ? parseBusinessHours(v) : 'must be a string';
  if (typeof parsed === 'string') throw bad(`health.business_hours ${parsed}`);
  return v as string;
}

function timeZone(v: unknown): string {
  if (typeof v !== 'string' || v.length > 64 || !isTimeZone(v)) throw bad('health.time_zone must be an IANA time zone such as "Europe/Berlin"');
  return v;
}

function intIn(v: unknown, min: number, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw bad(`${field} must be a whole number from ${min} to ${max}`);
  return v;
}

function pinOf(v: unknown): FailoverPin {
  if (typeof v !== 'string' || !PINS.includes(v as FailoverPin)) throw bad(`failover.pin must be one of ${PINS.join(', ')}`);
  return v as FailoverPin;
}
