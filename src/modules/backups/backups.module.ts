import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import { fsStoragePlugin } from '../../storage/backup-plugins/fs.plugin.ts';
import { gitStoragePlugin } from '../../storage/backup-plugins/git.plugin.ts';
import { defineStorageTasks, type StorageTasks } from '../../storage/backup-plugins/storage-tasks.ts';
import type { StreamConsumer } from '../../streams/stream-consumer.ts';
import type { StreamLog } from '../../streams/stream.port.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { BackupLocationsService } from './backup-locations.service.ts';
import { BackupsPipeline } from './backups-pipeline.ts';
import { BackupsRepository } from './backups.repository.ts';
import { backupsRoutes } from './backups.routes.ts';
import { NetworkDevicesService, type CollectionFieldsCheck } from './network-devices.service.ts';
import type { StorageOutcome } from './backups.types.ts';
import { StoredBackupsService } from './stored-backups.service.ts';

export interface BackupsDeps {
  /** The streams port (app.ts builds it: database table, or Redis Streams with the redis tasks backend). */
  streams: StreamLog;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
  /** Checks a device's collection fields (model, credential) against the collect module (issue 10). */
  checkCollection?: CollectionFieldsCheck;
  /** Called once per outcome applied to the index (issue 10: backup.changed / backup.failed webhooks). */
  onOutcome?: (outcome: StorageOutcome) => Promise<void>;
}

export interface BackupsModule extends ModuleParts {
  locations: BackupLocationsService;
  devices: NetworkDevicesService;
  storedBackups: StoredBackupsService;
  pipeline: BackupsPipeline;
  storageTasks: StorageTasks;
  /** The two pipeline consumers of this process (serve starts them unless --no-consumers). */
  consumers(): { deviceResults: StreamConsumer<any>; storageResults: StreamConsumer<any> };
  /** Stops whichever consumers were started (app close). */
  stopConsumers(): Promise<void>;
}

/** Backups, part 1 (issue 9): locations, network devices, the storage pipeline and the index. */
export function createBackupsModule(core: Core, deps: BackupsDeps): BackupsModule {
  const repo = new BackupsRepository(core.db);
  const storageTasks = defineStorageTasks({ tasks: core.tasks, streams: deps.streams, backupsRoot: core.config.backups.root, plugins: { git: gitStoragePlugin(), fs: fsStoragePlugin() } });
  const locations = new BackupLocationsService(repo, core.clock, core.config.backups.root);
  const devices = new NetworkDevicesService(repo, deps.streams, core.clock, core.config.backups.maxBytes, deps.checkCollection);
  const storedBackups = new StoredBackupsService(repo, storageTasks, core.config.backups.readTimeoutMs, (id) => core.tasks.cancel(id));
  const pipeline = new BackupsPipeline({ repo, streams: deps.streams, storageTasks, clock: core.clock, logger: core.logger.child({ component: 'backups' }), onOutcome: deps.onOutcome });
  const maintenance = core.tasks.define({ name: 'backups.maintenance', maxAttempts: 3 }, async () => ({ locations: await pipeline.enqueueMaintenance(core.clock.now()) }));
  core.tasks.schedule({ name: 'backups.maintenance.daily', cron: '30 3 * * *', task: maintenance });
  let consumers: ReturnType<BackupsModule['consumers']> | undefined;
  return {
    locations,
    devices,
    storedBackups,
    pipeline,
    storageTasks,
    tasks: [...Object.values(storageTasks.store), ...Object.values(storageTasks.read), ...Object.values(storageTasks.maintain), maintenance],
    routes: [backupsRoutes({ locations, devices, storedBackups, contextOf: deps.contextOf, maxBytes: core.config.backups.maxBytes })],
    async stopConsumers() {
      if (consumers) await Promise.all([consumers.deviceResults.stop(), consumers.storageResults.stop()]);
    },
    consumers: () => (consumers ??= { deviceResults: pipeline.deviceResultsConsumer(), storageResults: pipeline.storageResultsConsumer() }),
  };
}
