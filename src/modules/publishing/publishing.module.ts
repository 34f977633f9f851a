import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import { AppError } from '../../errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { OutboundPolicy } from '../../net/outbound.ts';
import { FsBlobStore } from '../../storage/fs-blob-store.ts';
import { PublishContentStore, type WriteStep } from '../../storage/publish-content-store.ts';
import type { S3BlobStore, S3Target } from '../../storage/s3-blob-store.ts';
import type { AlertsService } from '../alerts/alerts.service.ts';
import type { OrganizationsService } from '../organizations/organizations.service.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { MirrorService } from './mirror.service.ts';
import { headStatus, PublishHealthService } from './publish-health.service.ts';
import { PublishingIndexSide } from './publishing-index-side.ts';
import { PublishingRepository } from './publishing.repository.ts';
import { publishingRoutes } from './publishing.routes.ts';
import { PublishingService } from './publishing.service.ts';
import { definePublishingTasks, type PublishingTasks } from './publishing.tasks.ts';
import { SiteDirectory } from './site-directory.ts';
import { mirrorConfigured, SitesService } from './sites.service.ts';

export interface PublishingModule extends ModuleParts {
  readonly sites: SitesService;
  readonly content: PublishingService;
  readonly mirror: MirrorService;
  readonly health: PublishHealthService;
  readonly directory: SiteDirectory;
  readonly publishingTasks: PublishingTasks;
  /** The reconciliation engine's side for `rebuild-index --scope publishing` (app.ts registers it). */
  readonly indexSide: PublishingIndexSide;
}

export interface PublishingModuleDeps {
  secrets: SecretBox;
  organizations: Pick<OrganizationsService, 'resolveContext'>;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  alerts: Pick<AlertsService, 'raise' | 'resolve'>;
  /** Where the CDN probe and a site's own S3 endpoint may go (src/net/outbound.ts). */
  outbound: OutboundPolicy;
  /** Test hooks: an S3 client factory, the crash-test step hook, a CDN probe. */
  openBucket?: (target: S3Target) => S3BlobStore;
  onWriteStep?: (step: WriteStep) => Promise<void> | void;
  probeUrl?: (url: string) => Promise<number>;
}

export async function createPublishingModule(core: Core, deps: PublishingModuleDeps): Promise<PublishingModule> {
  const { config, clock } = core;
  const logger = core.logger.child({ component: 'publishing' });
  const repo = new PublishingRepository(core.db, core.dialect);
  // The nudge path between processes (core.signals: Redis pub/sub, PostgreSQL LISTEN/NOTIFY, or this
  // process alone on SQLite, where processes see each other's changes by polling).
  const directory = new SiteDirectory(repo, core.signals, config.publishing.settingsPollMs, logger, clock);
  await directory.start();
  const store = new PublishContentStore(new FsBlobStore(config.publishing.root));
  const roleOf = async (userId: string, organizationId: string) => {
    try {
      return await deps.organizations.resolveContext(userId, organizationId);
    } catch (err) {
      if (err instanceof AppError && err.code === 'forbidden') return null;
      throw err;
    }
  };
  const sites = new SitesService(core.db, repo, directory, deps.secrets, clock, roleOf, deps.outbound);
  const tasks = definePublishingTasks(core.tasks, () => ({ mirror, health }), {
    uploadAttempts: config.publishing.uploadAttempts,
    backoffBaseMs: config.publishing.uploadBackoffMs,
    healthSchedule: config.publishing.healthSchedule,
  });
  const mirror = new MirrorService({
    db: core.db,
    repo,
    sites,
    store,
    clock,
    logger,
    alerts: deps.alerts,
    multipartThresholdBytes: config.publishing.multipartThresholdBytes,
    enqueueUpload: (args) => tasks.upload.enqueue(args),
    enqueueRemove: (args) => tasks.remove.enqueue(args),
    outbound: deps.outbound,
    openBucket: deps.openBucket,
  });
  const health = new PublishHealthService({ repo, sites, mirror, store, clock, alerts: deps.alerts, logger, probeUrl: deps.probeUrl ?? ((url) => headStatus(deps.outbound, url)) });
  const content = new PublishingService({
    db: core.db,
    repo,
    store,
    clock,
    publicUrl: config.server.publicUrl,
    maxFileBytes: config.publishing.maxFileBytes,
    mirror,
    disk: { low: (site, free) => health.diskLow(site, free) },
    logger,
    onWriteStep: deps.onWriteStep,
  });
  const indexSide = new PublishingIndexSide({ repo, store, mirror, mirrorConfigured, bucketOf: (site) => mirror.bucketOf(site) });
  return {
    indexSide,
    sites,
    content,
    mirror,
    health,
    directory,
    publishingTasks: tasks,
    routes: [publishingRoutes({ sites, content, mirror, health, contextOf: deps.contextOf, publicUrl: config.server.publicUrl })],
    tasks: [tasks.upload, tasks.remove, tasks.health],
    beforeClose: async () => {
      await directory.stop();
      mirror.close();
    },
  };
}
