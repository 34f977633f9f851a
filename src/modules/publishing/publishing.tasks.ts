import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import type { MirrorService, RemoveArgs, UploadArgs } from './mirror.service.ts';
import type { PublishHealthService } from './publish-health.service.ts';

export const PUBLISH_QUEUE = 'publish.cdn';

export interface PublishingTasks {
  upload: TaskDefinition<UploadArgs>;
  remove: TaskDefinition<RemoveArgs>;
  health: TaskDefinition<null>;
}

/**
 * The mirror's tasks on queue `publish.cdn` (issue 11): `publish.upload` and `publish.delete` retry with
 * exponential backoff and are dead-lettered after the last attempt (the upload handler raises the alert
 * itself, since it knows the attempt is the last); `publish.health` is scheduled hourly and each site
 * decides by its business hours whether it runs.
 */
export function definePublishingTasks(
  tasks: TaskFramework,
  services: () => { mirror: MirrorService; health: PublishHealthService },
  options: { uploadAttempts: number; backoffBaseMs: number; healthSchedule: string | null },
): PublishingTasks {
  const backoff = { baseMs: options.backoffBaseMs, capMs: Math.max(options.backoffBaseMs, 300_000) };
  const upload = tasks.define<UploadArgs>(
    { name: 'publish.upload', queue: PUBLISH_QUEUE, maxAttempts: options.uploadAttempts, backoff, timeoutMs: 30 * 60_000 },
    (args, ctx) => services().mirror.runUpload(args, ctx),
  );
  const remove = tasks.define<RemoveArgs>(
    { name: 'publish.delete', queue: PUBLISH_QUEUE, maxAttempts: options.uploadAttempts, backoff, timeoutMs: 30 * 60_000 },
    async (args, ctx) => services().mirror.runRemove(args, ctx),
  );
  const health = tasks.define<null>({ name: 'publish.health', queue: PUBLISH_QUEUE, maxAttempts: 1, timeoutMs: 30 * 60_000 }, async () => services().health.runScheduled());
  if (options.healthSchedule) tasks.schedule({ name: 'publish.health.hourly', cron: options.healthSchedule, task: health });
  return { upload, remove, health };
}
