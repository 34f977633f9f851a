/** Events an organization's webhooks can subscribe to ("*" = all). Backups add theirs here. */
export const WEBHOOK_EVENTS = ['alert.raised', 'alert.resolved', 'backup.changed', 'backup.failed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface Webhook {
  id: string;
  organizationId: string;
  url: string;
  events: string[];
  createdAt: string;
  lastDeliveryAt: string | null;
  lastDeliveryStatus: string | null;
}

/** What the deliver task carries (JSON). The body is built once, at dispatch, so retries send the same bytes. */
export interface DeliveryArgs {
  webhookId: string;
  organizationId: string;
  deliveryId: string;
  event: string;
  body: string;
}
