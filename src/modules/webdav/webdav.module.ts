import type { Core, ModuleParts } from '../../core.ts';
import type { FilesService } from '../files/files.service.ts';
import { WebdavRepository } from './webdav.repository.ts';
import { webdavRoutes } from './webdav.routes.ts';
import { WebdavService } from './webdav.service.ts';

export interface WebdavModule extends ModuleParts {
  readonly webdav: WebdavService;
}

/** WebDAV at /dav/ (issue 13), on the files service: same index, quotas and atomic writes as REST. */
export function createWebdavModule(core: Core, deps: { files: FilesService }): WebdavModule {
  const webdav = new WebdavService({ db: core.db, repo: new WebdavRepository(core.db), clock: core.clock });
  return { webdav, routes: [webdavRoutes({ files: deps.files, webdav })], tasks: [] };
}
