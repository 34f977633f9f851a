import type { DbOrTx, WebhooksTable } from '../../db/schema.ts';
import type { Webhook } from './webhooks.types.ts';

function toWebhook(row: WebhooksTable): Webhook {
  return {
    id: row.id,
    organizationId: row.organization_id,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    createdAt: row.created_at,
    lastDeliveryAt: row.last_delivery_at,
    lastDeliveryStatus: row.last_delivery_status,
  };
}

export class WebhooksRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(w: { id: string; organizationId: string; url: string; events: string[]; secretEnc: string; createdBy: string; now: string }): Promise<Webhook> {
    const row = await this.db
      .insertInto('webhooks')
      .values({
        id: w.id,
        organization_id: w.organizationId,
        url: w.url,
        events: JSON.stringify(w.events),
        secret_enc: w.secretEnc,
        created_by: w.createdBy,
        created_at: w.now,
        updated_at: w.now,
        last_delivery_at: null,
        last_delivery_status: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toWebhook(row);
  }

  async list(organizationId: string): Promise<Webhook[]> {
    const rows = await this.db.selectFrom('webhooks').selectAll().where('organization_id', '=', organizationId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toWebhook);
  }

  /** The webhook with its sealed secret (for signing a delivery). */
  async findWithSecret(organizationId: string, id: string): Promise<{ webhook: Webhook; secretEnc: string } | undefined> {
    const row = await this.db.selectFrom('webhooks').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row ? { webhook: toWebhook(row), secretEnc: row.secret_enc } : undefined;
  }

  async delete(organizationId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('webhooks').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async recordDelivery(organizationId: string, id: string, status: string, now: string): Promise<void> {
    await this.db.updateTable('webhooks').set({ last_delivery_at: now, last_delivery_status: status }).where('organization_id', '=', organizationId).where('id', '=', id).execute();
  }
}
