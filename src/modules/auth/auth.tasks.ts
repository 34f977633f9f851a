import type { Throttles } from '../../throttle/create-throttles.ts';
import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import type { JsonValue } from '../../tasks/types.ts';

export const PRUNE_RATE_LIMITS_TASK = 'auth.prune_rate_limits';

/**
 * `auth.prune_rate_limits`, daily: drops throttle counters whose window ended over an hour ago (the
 * database store keeps one small row per IP, username and share link; Redis expires its keys itself).
 */
export function defineAuthTasks(tasks: TaskFramework, throttles: Throttles): TaskDefinition<any, JsonValue>[] {
  const prune = tasks.define<Record<string, never>, JsonValue>({ name: PRUNE_RATE_LIMITS_TASK, queue: 'default', maxAttempts: 3 }, async () => ({
    deleted: await throttles.prune(),
  }));
  tasks.schedule({ name: `${PRUNE_RATE_LIMITS_TASK}.daily`, cron: '45 3 * * *', timezone: 'UTC', task: prune, args: {} });
  return [prune];
}
