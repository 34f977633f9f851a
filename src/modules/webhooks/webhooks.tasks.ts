import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import type { WebhooksService } from './webhooks.service.ts';
import type { DeliveryArgs } from './webhooks.types.ts';

export const WEBHOOK_DELIVER_TASK = 'webhooks.deliver';

/** `webhooks.deliver` on queue `webhooks`: 8 attempts, 2 s doubling to 10 min, then the dead letter list. */
export function defineWebhookTasks(tasks: TaskFramework, webhooks: () => WebhooksService): TaskDefinition<DeliveryArgs> {
  return tasks.define<DeliveryArgs>(
    { name: WEBHOOK_DELIVER_TASK, queue: 'webhooks', maxAttempts: 8, backoff: { baseMs: 2000, capMs: 600_000 }, timeoutMs: 30_000 },
    async (args, ctx) => webhooks().deliver(args, ctx.signal),
  );
}
