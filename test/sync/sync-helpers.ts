import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app.ts';

/** Thin HTTP client over app.http.inject for sync tests: asserts nothing, returns status and JSON. */
export class SyncClient {
  constructor(
    readonly app: App,
    readonly headers: Record<string, string>,
    readonly deviceId: string,
  ) {}

  static async register(app: App, headers: Record<string, string>, name = 'laptop'): Promise<SyncClient> {
    const res = await app.http.inject({ method: 'POST', url: '/api/v1/devices', headers, payload: { name } });
    if (res.statusCode !== 201) throw new Error(`device registration failed: ${res.body}`);
    return new SyncClient(app, headers, res.json().id);
  }

  async push(changes: unknown[]): Promise<{ status: number; body: any }> {
    const res = await this.app.http.inject({ method: 'POST', url: '/api/v1/sync/push', headers: this.headers, payload: { device_id: this.deviceId, changes } });
    return { status: res.statusCode, body: res.json() };
  }

  async pull(since?: string, limit?: number): Promise<{ status: number; body: any }> {
    const q = new URLSearchParams({ device_id: this.deviceId });
    if (since) q.set('since', since);
    if (limit) q.set('limit', String(limit));
    const res = await this.app.http.inject({ method: 'GET', url: `/api/v1/sync/pull?${q}`, headers: this.headers });
    return { status: res.statusCode, body: res.json() };
  }

  /** Pulls every page; returns all changes and the final cursor. */
  async pullAll(since?: string): Promise<{ changes: any[]; cursor: string }> {
    const changes: any[] = [];
    let cursor = since;
    for (;;) {
      const { status, body } = await this.pull(cursor);
      if (status !== 200) throw new Error(`pull failed: ${status} ${JSON.stringify(body)}`);
      changes.push(...body.changes);
      cursor = body.cursor;
      if (!body.has_more) return { changes, cursor: cursor! };
    }
  }
}

export const newId = () => randomUUID();
