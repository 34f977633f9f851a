import type { Core, ModuleParts } from '../../core.ts';
import { ReconcileRunsRepository } from '../../storage/reconcile/reconcile-runs.repository.ts';
import { IndexSyncRepository } from './index-sync.repository.ts';
import { indexSyncRoutes, type OrganizationContextOf } from './index-sync.routes.ts';
import { IndexSyncService } from './index-sync.service.ts';
import { defineIndexSyncTasks, type RebuildIndexArgs } from './index-sync.tasks.ts';
import type { TaskDefinition } from '../../tasks/framework.ts';
import type { JsonValue } from '../../tasks/types.ts';

export interface IndexSyncModule extends ModuleParts {
  /** Index reconciliation: audit/sync/clean/full of stored_files against the disk (issue 4). */
  readonly indexSync: IndexSyncService;
  /** `storage.rebuild_index`, for other scopes' schedules (app.ts: the daily publishing audit). */
  readonly rebuildTask: TaskDefinition<RebuildIndexArgs, JsonValue>;
}

export function createIndexSyncModule(core: Core, deps: { contextOf?: OrganizationContextOf } = {}): IndexSyncModule {
  const indexSync = new IndexSyncService(new IndexSyncRepository(core.db, core.sqlite), core.storage.files, core.clock, core.storage.root, core.locks, {
    tempMaxAgeMs: core.config.files.uploadTempMaxAgeMs,
    runs: new ReconcileRunsRepository(core.db),
  });
  const rebuildTask = defineIndexSyncTasks(core.tasks, indexSync, { auditSchedule: core.config.indexSync.auditSchedule, logger: core.logger });
  return { indexSync, rebuildTask, routes: [indexSyncRoutes({ indexSync, rebuildTask, contextOf: deps.contextOf })], tasks: [rebuildTask] };
}
