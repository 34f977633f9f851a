import { apiJson } from './session.ts';

/** An alert of the organization (GET /api/v1/alerts): the admin view lists them all, a site shows its own. */
export interface Alert {
  id: string;
  kind: string;
  subject: string;
  severity: string;
  status: string;
  message: string;
  occurrences: number;
  last_seen_at: string;
}

export const listAlerts = async (limit = 200) => (await apiJson<{ alerts: Alert[] }>(`/api/v1/alerts?limit=${limit}`)).alerts;
