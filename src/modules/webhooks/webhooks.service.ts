import { createHmac, randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { Logger } from '../../logger.ts';
import { OutboundRefused, type OutboundPolicy } from '../../net/outbound.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { WebhooksRepository } from './webhooks.repository.ts';
import { WEBHOOK_EVENTS, type DeliveryArgs, type Webhook } from './webhooks.types.ts';

export interface WebhooksServiceDeps {
  repo: WebhooksRepository;
  secrets: SecretBox;
  clock: Clock;
  logger: Pick<Logger, 'warn' | 'info'>;
  /** Queues one delivery (the `webhooks.deliver` task: retries with backoff, dead letter). */
  enqueueDelivery(args: DeliveryArgs): Promise<unknown>;
  /** Where deliveries may go (no private or metadata addresses unless an admin allows them): src/net/outbound.ts. */
  outbound: OutboundPolicy;
  /** Per-attempt HTTP timeout. */
  timeoutMs?: number;
}

const MAX_WEBHOOKS_PER_ORG = 50;
const secretContext = (id: string) => `webhooks:${id}:secret`;

/** The signature header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * Org webhooks: `{url, events, secret}`; every matching event is POSTed as JSON, signed with
 * HMAC-SHA256 over the timestamp and the body (so a receiver can check both origin and freshness), and
 * retried through the task framework. The secret is write-only: sealed at rest, never answered.
 */
export class WebhooksService {
  constructor(private readonly deps: WebhooksServiceDeps) {}

  async create(ctx: OrgContext, input: { url: string; events: string[]; secret: string }): Promise<Webhook> {
    requireAdmin(ctx);
    const url = checkUrl(input.url);
    try {
      await this.deps.outbound.check(url);
    } catch (err) {
      if (err instanceof OutboundRefused) throw new AppError('invalid_request', `url refused: ${err.reason}`);
      throw err;
    }
    const events = checkEvents(input.events);
    if (typeof input.secret !== 'string' || input.secret.length < 16 || input.secret.length > 256) {
      throw new AppError('invalid_request', 'secret must be 16-256 characters');
    }
    const existing = await this.deps.repo.list(ctx.organizationId);
    if (existing.length >= MAX_WEBHOOKS_PER_ORG) throw new AppError('conflict', `an organization has at most ${MAX_WEBHOOKS_PER_ORG} webhooks`);
    const id = randomUUID();
    return this.deps.repo.insert({
      id,
      organizationId: ctx.organizationId,
      url,
      events,
      secretEnc: this.deps.secrets.seal(input.secret, secretContext(id)),
      createdBy: ctx.userId,
      now: this.deps.clock.now().toISOString(),
    });
  }

  list(ctx: OrgContext): Promise<Webhook[]> {
    requireAdmin(ctx);
    return this.deps.repo.list(ctx.organizationId);
  }

  async delete(ctx: OrgContext, id: string): Promise<void> {
    requireAdmin(ctx);
    if (!(await this.deps.repo.delete(ctx.organizationId, id))) throw new AppError('not_found', 'no such webhook');
  }

  /** Queues one delivery per webhook of the organization that subscribes to `event`. */
  async dispatch(organizationId: string, event: string, data: Record<string, unknown>): Promise<number> {
    const hooks = (await this.deps.repo.list(organizationId)).filter((h) => h.events.includes('*') || h.events.includes(event));
    const occurredAt = this.deps.clock.now().toISOString();
    for (const hook of hooks) {
      const deliveryId = randomUUID();
      const body = JSON.stringify({ id: deliveryId, event, occurred_at: occurredAt, organization_id: organizationId, data });
      await this.deps.enqueueDelivery({ webhookId: hook.id, organizationId, deliveryId, event, body });
    }
    return hooks.length;
  }

  /**
   * One attempt of a delivery (the task handler). Throws on a non-2xx answer or a network error so the
   * task framework retries; a webhook deleted meanwhile is skipped.
   */
  async deliver(args: DeliveryArgs, signal?: AbortSignal): Promise<{ status: number | 'skipped' }> {
    const found = await this.deps.repo.findWithSecret(args.organizationId, args.webhookId);
    if (!found) return { status: 'skipped' };
    const secret = this.deps.secrets.open(found.secretEnc, secretContext(args.webhookId));
    const now = this.deps.clock.now();
    let status: number;
    try {
      // Checked again here, not only when saved: DNS can change, and the address checked is the one connected to.
      ({ status } = await this.deps.outbound.request(found.webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Stormvault-Webhooks/1',
          'x-stormvault-event': args.event,
          'x-stormvault-delivery': args.deliveryId,
          'x-stormvault-signature': signatureHeader(secret, Math.floor(now.getTime() / 1000), args.body),
        },
        body: args.body,
        signal,
        timeoutMs: this.deps.timeoutMs ?? 10_000,
      }));
    } catch (err) {
      const what = err instanceof OutboundRefused ? `refused: ${err.reason}` : `error: ${(err as Error).message}`;
      await this.deps.repo.recordDelivery(args.organizationId, args.webhookId, what.slice(0, 200), now.toISOString());
      throw new Error(`webhook ${args.webhookId}: ${what}`);
    }
    await this.deps.repo.recordDelivery(args.organizationId, args.webhookId, String(status), now.toISOString());
    if (status < 200 || status >= 300) throw new Error(`webhook ${args.webhookId} answered HTTP ${status}`);
    return { status };
  }
}

function requireAdmin(ctx: OrgContext): void {
  if (ctx.role !== 'admin') throw new AppError('forbidden', 'webhooks are managed by the admins of the organization');
}

function checkUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('invalid_request', 'url must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AppError('invalid_request', 'url must be an absolute http:// or https:// URL');
  if (url.username || url.password) throw new AppError('invalid_request', 'url must not carry credentials; the secret signs each delivery');
  if (raw.length > 2000) throw new AppError('invalid_request', 'url must be at most 2000 characters');
  return url.toString();
}

function checkEvents(events: string[]): string[] {
  if (!Array.isArray(events) || events.length === 0) throw new AppError('invalid_request', `events must list one or more of ${WEBHOOK_EVENTS.join(', ')} (or "*")`);
  for (const e of events) {
    if (e !== '*' && !(WEBHOOK_EVENTS as readonly string[]).includes(e)) {
      throw new AppError('invalid_request', `unknown event ${JSON.stringify(e)}; known: ${WEBHOOK_EVENTS.join(', ')} (or "*")`);
    }
  }
  return [...new Set(events)];
}
