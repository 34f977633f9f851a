import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from '../sync/sync-helpers.ts';

const SCRAPE_TOKEN = 'scrape-token-0123456789abcdef0123456789';

/** The value of one sample line `name{labels} value` (labels in prom-client's order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(/,(?=\w+=")/) : [];
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return undefined;
}

describe.each(testDialects())('GET /metrics on %s', (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;
  const scrape = async (headers: Record<string, string> = { 'x-metrics-token': SCRAPE_TOKEN }) => {
    const res = await t.app.http.inject({ method: 'GET', url: '/metrics', headers });
    expect(res.statusCode).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    t = await createTestApp({ dialect, env: { STORMVAULT_METRICS_TOKEN: SCRAPE_TOKEN } });
    admin = await createUserWithKey(t.app, { admin: true });
    user = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('answers administrators and the scrape token only: 401 anonymous or a wrong token, 403 other users', async () => {
    const get = (headers: Record<string, string>) => t.app.http.inject({ method: 'GET', url: '/metrics', headers });
    expect((await get({})).statusCode).toBe(401);
    expect((await get({ 'x-metrics-token': 'not-the-token' })).statusCode).toBe(401);
    expect((await get({ 'x-metrics-token': `${SCRAPE_TOKEN}x` })).statusCode).toBe(401);
    const forbidden = await get(user.headers);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.code).toBe('forbidden');
    expect(forbidden.body).not.toContain('stormvault_');
    const byAdmin = await get(admin.headers);
    expect(byAdmin.statusCode).toBe(200);
    expect(byAdmin.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await get({ 'x-metrics-token': SCRAPE_TOKEN })).statusCode).toBe(200);
  });

  it("accepts the scrape token as Authorization: Bearer (Prometheus' authorization / bearer_token), and nothing near it", async () => {
    const get = (headers: Record<string, string>) => t.app.http.inject({ method: 'GET', url: '/metrics', headers });
    const ok = await get({ authorization: `Bearer ${SCRAPE_TOKEN}` });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('stormvault_http_requests_total');
    for (const wrong of [`${SCRAPE_TOKEN}x`, SCRAPE_TOKEN.slice(0, -1), SCRAPE_TOKEN.toUpperCase(), 'sv_not-a-key']) {
      const res = await get({ authorization: `Bearer ${wrong}` });
      expect(res.statusCode, wrong).toBe(401);
      expect(res.body).not.toContain('stormvault_');
    }
    // An admin's bearer still works and a user's is still a user's (403), beside the token.
    expect((await get(admin.headers)).statusCode).toBe(200);
    expect((await get(user.headers)).statusCode).toBe(403);
    // The scrape token is this route's only: elsewhere it is no credential at all.
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } })).statusCode).toBe(401);
  });

  it('counts HTTP requests by route pattern and status, with a latency histogram', async () => {
    const before = sample(await scrape(), 'stormvault_http_requests_total', { method: 'GET', route: '/api/v1/users/me', status: '200' }) ?? 0;
    for (let i = 0; i < 3; i++) expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me', headers: user.headers })).statusCode).toBe(200);
    await t.app.http.inject({ method: 'GET', url: `/no/such/route/${newId()}`, headers: user.headers });
    const text = await scrape();
    expect(sample(text, 'stormvault_http_requests_total', { method: 'GET', route: '/api/v1/users/me', status: '200' })).toBe(before + 3);
    expect(sample(text, 'stormvault_http_request_duration_seconds_count', { method: 'GET', route: '/api/v1/users/me' })).toBe(before + 3);
    // Unknown URLs share one label value instead of one series each.
    expect(sample(text, 'stormvault_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain('/no/such/route');
  });

  it('counts tasks by queue and state', async () => {
    const result = await t.app.tasks.enqueue('sync.metrics', {});
    await result.wait({ timeoutMs: 10_000 });
    const text = await scrape();
    for (const state of ['enqueued', 'started', 'SUCCESSFUL']) expect(sample(text, 'stormvault_tasks_total', { queue: result.queue, state })).toBeGreaterThanOrEqual(1);
  });

  it("reports the latest index reconciliation run's findings", async () => {
    // A file on disk the index does not know: the audit finds it missing.
    const dir = path.join(t.config.storageRoot, user.user.id);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'behind-the-back.txt'), 'x');
    // Old enough that reconciliation does not defer it as possibly still being written.
    await utimes(path.join(dir, 'behind-the-back.txt'), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    const res = await t.app.http.inject({ method: 'POST', url: '/api/v1/index/rebuild/', headers: admin.headers, payload: { mode: 'audit', user_id: user.user.id } });
    expect(res.statusCode).toBe(200);
    const stats = res.json().result;
    expect(stats.missing_in_db).toBe(1);
    const text = await scrape();
    expect(sample(text, 'stormvault_index_last_run', { mode: 'audit', field: 'missing_in_db' })).toBe(1);
    expect(sample(text, 'stormvault_index_last_run', { mode: 'audit', field: 'files_on_disk' })).toBe(stats.files_on_disk);
    expect(sample(text, 'stormvault_index_last_run_timestamp_seconds', { mode: 'audit' })).toBeGreaterThan(0);
  });

  it('counts sync pushes, pulls, their changes and the conflicts pushes raised', async () => {
    const laptop = await SyncClient.register(t.app, user.headers, 'laptop');
    const phone = await SyncClient.register(t.app, user.headers, 'phone');
    const id = newId();
    const L = laptop.deviceId;
    const P = phone.deviceId;
    const pushes = [
      await laptop.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 1 }, data: { title: 'one' } }]),
      await laptop.push([{ mutation_id: 2, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 2 }, data: { title: 'two' } }]),
      // The phone edits the same field from the first version: concurrent with the laptop's second.
      await phone.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id, vector_clock: { [L]: 1, [P]: 1 }, data: { title: 'three' } }]),
    ];
    const conflicts = pushes.flatMap((p) => p.body.results).filter((r: { status: string }) => r.status === 'conflict').length;
    expect(conflicts).toBe(1);
    expect((await phone.pull()).status).toBe(200);
    const text = await scrape();
    expect(sample(text, 'stormvault_sync_requests_total', { kind: 'push' })).toBe(3);
    expect(sample(text, 'stormvault_sync_requests_total', { kind: 'pull' })).toBe(1);
    expect(sample(text, 'stormvault_sync_changes_total', { kind: 'push' })).toBe(3);
    expect(sample(text, 'stormvault_sync_conflicts_total')).toBe(conflicts);
  });

  it('keeps one registry per app: another app in the same process counts only its own requests', async () => {
    const other = await createTestApp({ dialect: 'sqlite', env: { STORMVAULT_METRICS_TOKEN: SCRAPE_TOKEN } });
    try {
      const res = await other.app.http.inject({ method: 'GET', url: '/metrics', headers: { 'x-metrics-token': SCRAPE_TOKEN } });
      expect(sample(res.body, 'stormvault_http_requests_total', { method: 'GET', route: '/api/v1/users/me', status: '200' })).toBeUndefined();
      expect(sample(res.body, 'stormvault_sync_requests_total', { kind: 'push' })).toBeUndefined();
    } finally {
      await other.cleanup();
    }
  });
});
