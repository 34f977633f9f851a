import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { StreamLog } from '../../streams/stream.port.ts';
import type { BackupLocationsService } from '../backups/backup-locations.service.ts';
import type { NetworkDevicesService } from '../backups/network-devices.service.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { BackupNotifications } from './backup-notifications.ts';
import { CollectRepository } from './collect.repository.ts';
import { collectRoutes } from './collect.routes.ts';
import { CollectService } from './collect.service.ts';
import { defineCollectTasks } from './collect.tasks.ts';
import type { Collector } from './collector.port.ts';
import { CredentialsService } from './credentials.service.ts';
import { DeviceImport } from './device-import.ts';
import type { ModelRegistry } from './model-registry.ts';
import { SshCollector } from './ssh-collector.ts';

export interface CollectModuleDeps {
  secrets: SecretBox;
  streams: StreamLog;
  models: ModelRegistry;
  devices: NetworkDevicesService;
  locations: BackupLocationsService;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  /** Queues an org webhook event (the webhooks service's dispatch). */
  dispatch: (organizationId: string, event: 'backup.changed' | 'backup.failed', data: Record<string, unknown>) => Promise<unknown>;
  /** Test and bench hook: another Collector than ssh2. */
  collector?: Collector;
}

export interface CollectModule extends ModuleParts {
  readonly collect: CollectService;
  readonly credentials: CredentialsService;
  readonly imports: DeviceImport;
  readonly notifications: BackupNotifications;
  readonly models: ModelRegistry;
}

/** Backups, part 2 (issue 10): credentials, collection tasks and schedules, host keys, CSV import, webhooks. */
export function createCollectModule(core: Core, deps: CollectModuleDeps): CollectModule {
  const repo = new CollectRepository(core.db);
  const c = core.config.collect;
  const collector =
    deps.collector ?? new SshCollector({ clock: core.clock, timeouts: { connectMs: c.connectTimeoutMs, commandMs: c.commandTimeoutMs, deviceMs: c.deviceTimeoutMs } });
  const credentials = new CredentialsService(repo, deps.secrets, core.clock, (org, id) => deps.devices.countUsingCredential(org, id));
  const tasks = defineCollectTasks(core.tasks, core.config, () => collect);
  const collect = new CollectService({
    devices: deps.devices,
    credentials,
    repo,
    models: deps.models,
    collector,
    streams: deps.streams,
    clock: core.clock,
    logger: core.logger.child({ component: 'collect' }),
    collectTask: () => tasks.device,
  });
  const imports = new DeviceImport({ devices: deps.devices, locations: deps.locations, credentials });
  const notifications = new BackupNotifications({ devices: deps.devices, dispatch: deps.dispatch, failedAfter: c.failedAfter });
  return {
    collect,
    credentials,
    imports,
    notifications,
    models: deps.models,
    routes: [collectRoutes({ collect, credentials, imports, models: deps.models, contextOf: deps.contextOf })],
    tasks: [tasks.device, tasks.schedule],
  };
}
