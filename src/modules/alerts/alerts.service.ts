import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { AlertsRepository } from './alerts.repository.ts';
import type { Alert, AlertStatus, RaiseAlert } from './alerts.types.ts';

/** Where alerts go besides the table and the log: the webhooks module's dispatch (injected by app.ts). */
export type AlertNotifier = (organizationId: string, event: 'alert.raised' | 'alert.resolved', data: Record<string, unknown>) => Promise<void>;

export const MAX_ALERT_PAGE = 200;

/**
 * Org-wide alerts (issue 11 "Health and alerts"; backups raise theirs here too). A condition has at most
 * one unresolved alert: raising it again while unresolved counts an occurrence and notifies nobody, so a
 * check that fails every hour does not page every hour. Resolving happens when the condition clears; a
 * later recurrence is a new alert.
 */
export class AlertsService {
  constructor(
    private readonly repo: AlertsRepository,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'warn' | 'info' | 'error'>,
    private readonly notify: AlertNotifier = async () => {},
  ) {}

  async raise(input: RaiseAlert): Promise<{ alert: Alert; created: boolean }> {
    const result = await this.repo.raise({
      id: randomUUID(),
      organizationId: input.organizationId,
      conditionKey: input.conditionKey,
      kind: input.kind,
      subject: input.subject,
      severity: input.severity,
      message: input.message,
      details: JSON.stringify(input.details ?? {}),
      now: this.clock.now().toISOString(),
    });
    if (result.created) {
      this.logger.warn({ alert: { id: result.alert.id, kind: input.kind, subject: input.subject } }, `alert: ${input.message}`);
      await this.deliver(input.organizationId, 'alert.raised', result.alert);
    }
    return result;
  }

  /** The condition cleared: resolves its alert, if one is unresolved. */
  async resolve(organizationId: string, conditionKey: string): Promise<Alert | undefined> {
    const alert = await this.repo.resolve(organizationId, conditionKey, this.clock.now().toISOString());
    if (alert) {
      this.logger.info({ alert: { id: alert.id, kind: alert.kind, subject: alert.subject } }, `alert resolved: ${alert.message}`);
      await this.deliver(organizationId, 'alert.resolved', alert);
    }
    return alert;
  }

  findUnresolved(organizationId: string, conditionKey: string): Promise<Alert | undefined> {
    return this.repo.findUnresolved(organizationId, conditionKey);
  }

  async list(ctx: OrgContext, filter: { status?: AlertStatus; kind?: string; limit?: number; cursor?: string }): Promise<{ alerts: Alert[]; nextCursor: string | null }> {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ALERT_PAGE) throw new AppError('invalid_request', `limit must be 1-${MAX_ALERT_PAGE}`);
    const before = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor);
    const rows = await this.repo.list(ctx.organizationId, { status: filter.status, kind: filter.kind, limit: limit + 1, before });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { alerts: page, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /** Someone has seen it: it stays unresolved (and counted) until the condition clears. */
  async acknowledge(ctx: OrgContext, id: string): Promise<Alert> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'acknowledging alerts needs the admin role in the organization');
    const alert = await this.repo.acknowledge(ctx.organizationId, id, ctx.userId, this.clock.now().toISOString());
    if (!alert) throw new AppError('not_found', 'no such alert');
    return alert;
  }

  private async deliver(organizationId: string, event: 'alert.raised' | 'alert.resolved', alert: Alert): Promise<void> {
    try {
      await this.notify(organizationId, event, alertJson(alert));
    } catch (err) {
      // The alert is recorded; a failure to queue its webhooks must not fail the check that raised it.
      this.logger.error({ err }, 'alerts: could not queue webhook deliveries');
    }
  }
}

export function alertJson(a: Alert): Record<string, unknown> {
  return {
    id: a.id,
    kind: a.kind,
    subject: a.subject,
    severity: a.severity,
    status: a.status,
    message: a.message,
    details: a.details,
    occurrences: a.occurrences,
    first_seen_at: a.firstSeenAt,
    last_seen_at: a.lastSeenAt,
    acknowledged_at: a.acknowledgedAt,
    acknowledged_by: a.acknowledgedBy,
    resolved_at: a.resolvedAt,
  };
}

function encodeCursor(a: Alert): string {
  return Buffer.from(JSON.stringify([a.lastSeenAt, a.id])).toString('base64url');
}

function decodeCursor(cursor: string): { lastSeenAt: string; id: string } {
  try {
    const [lastSeenAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof lastSeenAt === 'string' && typeof id === 'string') return { lastSeenAt, id };
  } catch {
    // fall through
  }
  throw new AppError('invalid_request', 'cursor is not one this server handed out');
}
