import type { Core, ModuleParts } from '../../core.ts';
import type { FilesService } from '../files/files.service.ts';
import { ShareLinksRepository } from './share-links.repository.ts';
import { shareLinksRoutes } from './share-links.routes.ts';
import { ShareLinksService } from './share-links.service.ts';

export interface ShareLinksModule extends ModuleParts {
  readonly shares: ShareLinksService;
}

export function createShareLinksModule(core: Core, deps: { files: FilesService }): ShareLinksModule {
  const { config, clock } = core;
  const shares = new ShareLinksService(
    new ShareLinksRepository(core.db),
    deps.files,
    clock,
    config.server.publicUrl,
    core.throttles.sharePassword,
  );
  return { shares, routes: [shareLinksRoutes({ shares })], tasks: [] };
}
