import type { AlertsTable, DbOrTx } from '../../db/schema.ts';
import type { Alert, AlertSeverity, AlertStatus } from './alerts.types.ts';

function toAlert(row: AlertsTable): Alert {
  return {
    id: row.id,
    organizationId: row.organization_id,
    conditionKey: row.condition_key,
    kind: row.kind,
    subject: row.subject,
    severity: row.severity as AlertSeverity,
    message: row.message,
    details: JSON.parse(row.details) as Record<string, unknown>,
    status: row.resolved_at ? 'resolved' : row.acknowledged_at ? 'acknowledged' : 'open',
    occurrences: row.occurrences,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    acknowledgedAt: row.acknowledged_at,
    acknowledgedBy: row.acknowledged_by,
    resolvedAt: row.resolved_at,
  };
}

export class AlertsRepository {
  constructor(private readonly db: DbOrTx) {}

  /**
   * Inserts the alert, or — when one is already unresolved for the same condition — counts one more
   * occurrence on it. One statement (upsert on the partial unique index), so two processes raising the
   * same condition at once still end with one alert.
   */
  async raise(alert: { id: string; organizationId: string; conditionKey: string; kind: string; subject: string; severity: AlertSeverity; message: string; details: string; now: string }): Promise<{ alert: Alert; created: boolean }> {
    const row = await this.db
      .insertInto('alerts')
      .values({
        id: alert.id,
        organization_id: alert.organizationId,
        condition_key: alert.conditionKey,
        kind: alert.kind,
        subject: alert.subject,
        severity: alert.severity,
        message: alert.message,
        details: alert.details,
        occurrences: 1,
        first_seen_at: alert.now,
        last_seen_at: alert.now,
        acknowledged_at: null,
        acknowledged_by: null,
        resolved_at: null,
      })
      .onConflict((oc) =>
        oc
          .columns(['organization_id', 'condition_key'])
          .where('resolved_at', 'is', null)
          .doUpdateSet((eb) => ({
            occurrences: eb('alerts.occurrences', '+', 1),
            last_seen_at: alert.now,
            message: alert.message,
            details: alert.details,
            severity: alert.severity,
          })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return { alert: toAlert(row), created: row.id === alert.id };
  }

  /** Resolves the unresolved alert of a condition; returns it, or undefined when there was none. */
  async resolve(organizationId: string, conditionKey: string, now: string): Promise<Alert | undefined> {
    const row = await this.db
      .updateTable('alerts')
      .set({ resolved_at: now })
      .where('organization_id', '=', organizationId)
      .where('condition_key', '=', conditionKey)
      .where('resolved_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    return row ? toAlert(row) : undefined;
  }

  async findUnresolved(organizationId: string, conditionKey: string): Promise<Alert | undefined> {
    const row = await this.db
      .selectFrom('alerts')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('condition_key', '=', conditionKey)
      .where('resolved_at', 'is', null)
      .executeTakeFirst();
    return row ? toAlert(row) : undefined;
  }

  /** Newest first (last seen), after the cursor (last_seen_at, id) when given. */
  async list(organizationId: string, filter: { status?: AlertStatus; kind?: string; limit: number; before?: { lastSeenAt: string; id: string } }): Promise<Alert[]> {
    let q = this.db.selectFrom('alerts').selectAll().where('organization_id', '=', organizationId);
    if (filter.status === 'open') q = q.where('resolved_at', 'is', null).where('acknowledged_at', 'is', null);
    if (filter.status === 'acknowledged') q = q.where('resolved_at', 'is', null).where('acknowledged_at', 'is not', null);
    if (filter.status === 'resolved') q = q.where('resolved_at', 'is not', null);
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    const before = filter.before;
    if (before) q = q.where((eb) => eb.or([eb('last_seen_at', '<', before.lastSeenAt), eb.and([eb('last_seen_at', '=', before.lastSeenAt), eb('id', '<', before.id)])]));
    const rows = await q.orderBy('last_seen_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
    return rows.map(toAlert);
  }

  async acknowledge(organizationId: string, id: string, userId: string, now: string): Promise<Alert | undefined> {
    const row = await this.db
      .updateTable('alerts')
      .set((eb) => ({ acknowledged_at: eb.fn.coalesce('acknowledged_at', eb.val(now)), acknowledged_by: eb.fn.coalesce('acknowledged_by', eb.val(userId)) }))
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row ? toAlert(row) : undefined;
  }
}
