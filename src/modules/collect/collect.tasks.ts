import type { Config } from '../../config/config.ts';
import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import type { CollectService } from './collect.service.ts';
import type { CollectTaskArgs, CollectTaskResult } from './collect.types.ts';

export const COLLECT_QUEUE = 'collect';
export const COLLECT_DEVICE_TASK = 'collect.device';
export const COLLECT_SCHEDULE_TASK = 'collect.schedule';

/**
 * `collect.device` on queue `collect`: STORMVAULT_COLLECT_ATTEMPTS attempts with exponential backoff. The
 * attempt's hard limit is the whole-device timeout plus a margin for the stream write: the collector
 * ends a hung device at the device timeout itself, so the task limit is only a backstop, and a worker
 * slot is never held much longer than STORMVAULT_COLLECT_DEVICE_TIMEOUT_MS.
 * `collect.schedule` runs once a minute (one run per tick across every process) and enqueues due devices.
 */
export function defineCollectTasks(tasks: TaskFramework, config: Config, service: () => CollectService) {
  const device: TaskDefinition<CollectTaskArgs, CollectTaskResult> = tasks.define<CollectTaskArgs, CollectTaskResult>(
    {
      name: COLLECT_DEVICE_TASK,
      queue: COLLECT_QUEUE,
      maxAttempts: config.collect.attempts,
      backoff: { baseMs: config.collect.retryBackoffMs, capMs: Math.max(config.collect.retryBackoffMs, 600_000) },
      timeoutMs: config.collect.deviceTimeoutMs + 30_000,
    },
    (args, ctx) => service().runCollection(args, ctx),
  );
  const schedule = tasks.define({ name: COLLECT_SCHEDULE_TASK, queue: COLLECT_QUEUE, maxAttempts: 1, timeoutMs: 120_000 }, async () => service().enqueueDue());
  tasks.schedule({ name: 'collect.schedule.minutely', cron: '* * * * *', task: schedule });
  return { device, schedule };
}
