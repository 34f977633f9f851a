import type { KeyedMutex } from '../../coordination/keyed-lock.ts';
import type { Core, ModuleParts } from '../../core.ts';
import { FilesRepository } from './files.repository.ts';
import { filesRoutes } from './files.routes.ts';
import { FilesService, type QuotaSource } from './files.service.ts';

export interface FilesModule extends ModuleParts {
  readonly files: FilesService;
}

export function createFilesModule(core: Core, deps: { quotas: QuotaSource; lock?: KeyedMutex }): FilesModule {
  const files = new FilesService({
    db: core.db,
    repo: new FilesRepository(core.db, core.dialect),
    store: core.storage.files,
    quotas: deps.quotas,
    clock: core.clock,
    minFreeBytes: core.config.files.minFreeBytes,
    logger: core.logger,
    lock: deps.lock,
  });
  return { files, routes: [filesRoutes({ files })], tasks: [] };
}
