import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { OutboundPolicy } from '../../net/outbound.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { WebhooksRepository } from './webhooks.repository.ts';
import { webhooksRoutes } from './webhooks.routes.ts';
import { WebhooksService } from './webhooks.service.ts';
import { defineWebhookTasks } from './webhooks.tasks.ts';

export interface WebhooksModule extends ModuleParts {
  readonly webhooks: WebhooksService;
}

export function createWebhooksModule(core: Core, deps: { secrets: SecretBox; contextOf: (request: FastifyRequest) => Promise<OrgContext>; outbound: OutboundPolicy }): WebhooksModule {
  // The service enqueues deliveries through the task it is the handler of: defined right below.
  const deliver = defineWebhookTasks(core.tasks, () => webhooks);
  const webhooks = new WebhooksService({
    repo: new WebhooksRepository(core.db),
    secrets: deps.secrets,
    clock: core.clock,
    logger: core.logger.child({ component: 'webhooks' }),
    enqueueDelivery: (args) => deliver.enqueue(args),
    outbound: deps.outbound,
  });
  return { webhooks, routes: [webhooksRoutes({ webhooks, contextOf: deps.contextOf })], tasks: [deliver] };
}
