import type { Clock } from '../../clock.ts';
import type { Logger } from '../../logger.ts';
import type { OutboundPolicy } from '../../net/outbound.ts';
import type { PublishContentStore } from '../../storage/publish-content-store.ts';
import { withinBusinessHours } from './business-hours.ts';
import { nextFailover } from './failover.ts';
import type { MirrorAlerts, MirrorService } from './mirror.service.ts';
import { deadLetterCondition } from './mirror.service.ts';
import type { PublishingRepository } from './publishing.repository.ts';
import { cdnUrl } from './publishing.service.ts';
import type { Site } from './publishing.types.ts';
import { mirrorConfigured, type SitesService } from './sites.service.ts';

export interface HealthReport {
  site: string;
  checked: number;
  /** Bucket reachable and (when cdn_base_url is set) the CDN answering: what the failover counts. */
  cdnHealthy: boolean | null;
  localMissing: string[];
  localMismatch: string[];
  /** Verified files whose object was missing or held other bytes: re-queued. */
  mirrorMismatch: string[];
  cdnErrors: string[];
  freeBytes: number;
  diskLow: boolean;
  failover: { state: 'cdn' | 'local'; switched: boolean };
}

export interface PublishHealthDeps {
  repo: PublishingRepository;
  sites: SitesService;
  mirror: MirrorService;
  store: PublishContentStore;
  clock: Clock;
  alerts: MirrorAlerts;
  logger: Pick<Logger, 'warn' | 'info' | 'error'>;
  /** Status of a HEAD of a CDN URL (headStatus through the outbound policy; tests may hand in their own); throws on network errors. */
  probeUrl: (url: string) => Promise<number>;
}

const condition = (site: Site, what: string) => `publishing:${site.id}:${what}`;

/**
 * Health of published sites (issue 11 "Health and alerts"). Hourly, and for each site only inside its
 * business hours (in its time zone, by the app's clock): sample `sample_size` files and check the local
 * file is there with the logged hash, and its object is in the bucket with the same hash (read back,
 * never an ETag), and the CDN URL answers. Bucket or CDN failures feed the automatic failover; a wrong
 * object is re-queued and alerted; free disk below the site's floor is alerted. Each condition keeps at
 * most one open alert and is resolved when a check finds it cleared.
 */
export class PublishHealthService {
  constructor(private readonly deps: PublishHealthDeps) {}

  /** What the hourly task runs: every site whose business hours contain "now". */
  async runScheduled(): Promise<{ checked: string[]; outsideHours: string[] }> {
    const now = this.deps.clock.now();
    const checked: string[] = [];
    const outsideHours: string[] = [];
    for (const site of await this.deps.sites.all()) {
      if (!withinBusinessHours(now, site.health.businessHours, site.health.timeZone)) {
        outsideHours.push(site.name);
        continue;
      }
      try {
        await this.check(site);
        checked.push(site.name);
      } catch (err) {
        this.deps.logger.error({ err, site: site.name }, 'publishing: health check failed to run');
      }
    }
    return { checked, outsideHours };
  }

  async check(site: Site): Promise<HealthReport> {
    const { repo, store, alerts } = this.deps;
    const report: HealthReport = {
      site: site.name,
      checked: 0,
      cdnHealthy: null,
      localMissing: [],
      localMismatch: [],
      mirrorMismatch: [],
      cdnErrors: [],
      freeBytes: await store.freeBytes(),
      diskLow: false,
      failover: { state: site.failover.state, switched: false },
    };
    report.diskLow = site.health.minFreeBytes > 0 && report.freeBytes < site.health.minFreeBytes;
    if (report.diskLow) await this.diskLow(site, report.freeBytes);
    else await alerts.resolve(site.organizationId, condition(site, 'disk_low'));

    const mirrored = mirrorConfigured(site);
    const bucket = mirrored ? await this.deps.mirror.bucketOf(site) : null;
    let bucketOk = true;
    if (bucket) {
      try {
        await bucket.ping();
      } catch (err) {
        bucketOk = false;
        report.cdnErrors.push(`bucket: ${(err as Error).message}`);
      }
    }
    const sample = await repo.sample(site.id, site.health.sampleSize);
    for (const file of sample) {
      report.checked++;
      const local = await store.hashFile(site.name, file.path).catch(() => null);
      if (!local) report.localMissing.push(file.path);
      else if (local.sha256 !== file.sha256) report.localMismatch.push(file.path);
      if (!bucket || !bucketOk || !file.cdn.syncVerified) continue;
      try {
        const back = await bucket.readBackSha256(file.path);
        if (!back || back.sha256 !== file.sha256) {
          report.mirrorMismatch.push(file.path);
          const why = back ? `health check: the bucket holds sha256 ${back.sha256}, the index ${file.sha256}` : 'health check: the object is missing from the bucket';
          await repo.setMirrorState(file.id, file.generation, { status: 'pending', syncVerified: false, lastError: why, now: this.now() });
          await repo.appendLog([{ siteId: site.id, path: file.path, generation: file.generation, action: 'health', status: back ? 'mismatch' : 'missing', attempt: 0, localHash: file.sha256, cdnHash: back?.sha256 ?? null, syncVerified: false, error: why, now: this.now() }]);
          await this.deps.mirror.upload(site, file);
        }
      } catch (err) {
        bucketOk = false;
        report.cdnErrors.push(`${file.path}: ${(err as Error).message}`);
      }
      if (site.cdnBaseUrl && report.cdnErrors.length === 0) {
        const url = cdnUrl(site, file.path);
        try {
          const status = await this.deps.probeUrl(url);
          if (status >= 400) report.cdnErrors.push(`${url}: HTTP ${status}`);
        } catch (err) {
          report.cdnErrors.push(`${url}: ${(err as Error).message}`);
        }
      }
    }
    if (mirrored) report.cdnHealthy = bucketOk && report.cdnErrors.length === 0;

    await this.alertOn(site, 'local_missing', report.localMissing.length + report.localMismatch.length > 0, {
      kind: 'publish.local_damaged',
      severity: 'critical',
      message: `site ${site.name}: ${report.localMissing.length} sampled file(s) missing on the local disk and ${report.localMismatch.length} with a different hash than the index`,
      details: { missing: report.localMissing.slice(0, 50), mismatch: report.localMismatch.slice(0, 50) },
    });
    if (mirrored) {
      await this.alertOn(site, 'mirror_mismatch', report.mirrorMismatch.length > 0, {
        kind: 'publish.mirror_mismatch',
        severity: 'warning',
        message: `site ${site.name}: ${report.mirrorMismatch.length} sampled object(s) in the bucket did not match the local file; they are being uploaded again`,
        details: { paths: report.mirrorMismatch.slice(0, 50) },
      });
      if ((await repo.countByStatus(site.id, 'dead_letter')) === 0) await alerts.resolve(site.organizationId, deadLetterCondition(site.id));

      const next = nextFailover({ state: site.failover.state, failures: site.failover.failures, successes: site.failover.successes }, report.cdnHealthy!, site.failover);
      await this.deps.sites.recordHealth(site, { ok: report.cdnHealthy!, ...next });
      report.failover = { state: next.state, switched: next.switched };
      if (next.switched && next.state === 'local') {
        await alerts.raise({
          organizationId: site.organizationId,
          conditionKey: condition(site, 'cdn_failover'),
          kind: 'publish.cdn_failover',
          subject: site.name,
          severity: 'critical',
          message: `site ${site.name}: the CDN failed ${next.failures} health checks in a row; every URL now points at the local copy`,
          details: { errors: report.cdnErrors.slice(0, 20) },
        });
      } else if (next.switched && next.state === 'cdn') {
        await alerts.resolve(site.organizationId, condition(site, 'cdn_failover'));
      }
    }
    this.deps.logger.info({ health: { ...report, localMissing: report.localMissing.length, mirrorMismatch: report.mirrorMismatch.length } }, 'publishing: health check');
    return report;
  }

  async diskLow(site: Site, free: number): Promise<void> {
    await this.deps.alerts.raise({
      organizationId: site.organizationId,
      conditionKey: condition(site, 'disk_low'),
      kind: 'publish.disk_low',
      subject: site.name,
      severity: 'critical',
      message: `site ${site.name}: ${free} bytes free on the publish root, below the site's floor of ${site.health.minFreeBytes}; writes are refused`,
      details: { free_bytes: free, min_free_bytes: site.health.minFreeBytes },
    });
  }

  private async alertOn(site: Site, what: string, active: boolean, a: { kind: string; severity: 'warning' | 'critical'; message: string; details: Record<string, unknown> }): Promise<void> {
    if (active) await this.deps.alerts.raise({ organizationId: site.organizationId, conditionKey: condition(site, what), subject: site.name, ...a });
    else await this.deps.alerts.resolve(site.organizationId, condition(site, what));
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }
}

const MAX_REDIRECTS = 5;

/**
 * Status of a HEAD of a CDN URL, following redirects; every hop goes through the outbound policy (a CDN
 * URL is user input: it must not reach private or metadata addresses unless an admin allows them).
 */
export async function headStatus(outbound: OutboundPolicy, url: string): Promise<number> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await outbound.request(current, { method: 'HEAD', timeoutMs: 5000 });
    const location = res.headers.location;
    if (res.status < 300 || res.status >= 400 || !location) return res.status;
    current = new URL(location, current).toString();
  }
  throw new Error(`more than ${MAX_REDIRECTS} redirects`);
}
