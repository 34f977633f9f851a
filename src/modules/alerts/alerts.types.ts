export type AlertSeverity = 'warning' | 'critical';
export type AlertStatus = 'open' | 'acknowledged' | 'resolved';
export const ALERT_STATUSES: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved'];

/** One condition that needs a person's attention. Raised again while open, it counts occurrences instead. */
export interface Alert {
  id: string;
  organizationId: string;
  /** Identifies the condition, e.g. `publishing:<site id>:cdn_failover`: one open alert per key. */
  conditionKey: string;
  /** What kind of condition, e.g. `publish.mirror_dead_letter` (docs/publishing.md lists them). */
  kind: string;
  /** What it is about, for people: a site name, a path. */
  subject: string;
  severity: AlertSeverity;
  message: string;
  details: Record<string, unknown>;
  status: AlertStatus;
  occurrences: number;
  firstSeenAt: string;
  lastSeenAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
}

export interface RaiseAlert {
  organizationId: string;
  conditionKey: string;
  kind: string;
  subject: string;
  severity: AlertSeverity;
  message: string;
  details?: Record<string, unknown>;
}
