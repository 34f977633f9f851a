import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config/config.ts';
import type { DialectName } from '../../db/database.ts';
import type { Db } from '../../db/schema.ts';
import type { Logger } from '../../logger.ts';
import { gitStoragePlugin } from '../../storage/backup-plugins/git.plugin.ts';
import { defineStorageTasks, type StorageTasks } from '../../storage/backup-plugins/storage-tasks.ts';
import type { StreamConsumer } from '../../streams/stream-consumer.ts';
import type { StreamLog } from '../../streams/stream.port.ts';
import type { TaskFramework } from '../../tasks/framework.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { BackupLocationsService } from './backup-locations.service.ts';
import { BackupsPipeline } from './backups-pipeline.ts';
import { BackupsRepository } from './backups.repository.ts';
import { backupsRoutes } from './backups.routes.ts';
import { NetworkDevicesService } from './network-devices.service.ts';
import { StoredBackupsService } from './stored-backups.service.ts';

export interface BackupsCore {
  config: Config;
  clock: Clock;
  logger: Logger;
  db: Db;
  dialect: DialectName;
  tasks: TaskFramework;
  streams: StreamLog;
  contextOf: (request: FastifyRequest) => Promise<OrgContext>;
}

export interface BackupsModule {
  locations: BackupLocationsService;
  devices: NetworkDevicesService;
  storedBackups: StoredBackupsService;
  pipeline: BackupsPipeline;
  storageTasks: StorageTasks;
  routes: ReturnType<typeof backupsRoutes>;
  /** The two pipeline consumers of this process (serve starts them unless --no-consumers). */
  consumers(): { deviceResults: StreamConsumer<any>; storageResults: StreamConsumer<any> };
}

/** Backups, part 1 (issue 9): locations, network devices, the storage pipeline and the index. */
export function createBackupsModule(core: BackupsCore): BackupsModule {
  const repo = new BackupsRepository(core.db, core.dialect);
  const storageTasks = defineStorageTasks({ tasks: core.tasks, streams: core.streams, backupsRoot: core.config.backups.root, plugins: { git: gitStoragePlugin() } });
  const locations = new BackupLocationsService(repo, core.clock, core.config.backups.root);
  const devices = new NetworkDevicesService(repo, core.streams, core.clock, core.config.backups.maxBytes);
  const storedBackups = new StoredBackupsService(repo, storageTasks, core.config.backups.readTimeoutMs, (id) => core.tasks.cancel(id));
  const pipeline = new BackupsPipeline({ repo, streams: core.streams, storageTasks, clock: core.clock, logger: core.logger.child({ component: 'backups' }) });
  let consumers: ReturnType<BackupsModule['consumers']> | undefined;
  return {
    locations,
    devices,
    storedBackups,
    pipeline,
    storageTasks,
    routes: backupsRoutes({ locations, devices, storedBackups, contextOf: core.contextOf, maxBytes: core.config.backups.maxBytes }),
    consumers: () => (consumers ??= { deviceResults: pipeline.deviceResultsConsumer(), storageResults: pipeline.storageResultsConsumer() }),
  };
}
