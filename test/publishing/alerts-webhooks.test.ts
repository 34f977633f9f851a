import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhooksService } from '../../src/modules/webhooks/webhooks.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
}

describe.each(testDialects())(`${WebhooksService.name} and alerts on %s`, (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let member: TestUser;
  let orgId: string;
  let server: Server;
  let hookUrl: string;
  const deliveries: Delivery[] = [];
  let failNext = 0;
  // The receiver listens on 127.0.0.2, which this suite's policy allows (STORMVAULT_OUTBOUND_ALLOW) as a
  // stand-in for a public host; `hooks.example.test` resolves to it until a test points it elsewhere.
  let hooksHostAddress = '127.0.0.2';
  const dns: Record<string, () => string[]> = {
    'hooks.example.test': () => [hooksHostAddress],
    'intranet.example.test': () => ['10.20.30.40'],
  };
  const resolveHost = async (host: string) => {
    const answer = dns[host];
    if (!answer) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return answer().map((address) => ({ address, family: 4 as const }));
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.statusCode = 503;
          return res.end();
        }
        deliveries.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    hookUrl = `http://hooks.example.test:${(server.address() as AddressInfo).port}/hook`;
    t = await createTestApp({ dialect, env: { STORMVAULT_OUTBOUND_ALLOW: '127.0.0.2' }, appOptions: { resolveHost } });
    admin = await createUserWithKey(t.app);
    member = await createUserWithKey(t.app);
    orgId = (await t.app.http.inject({ method: 'POST', url: '/api/v1/organizations', headers: admin.headers, payload: { name: 'Ops' } })).json().id;
    await t.app.http.inject({ method: 'PUT', url: '/api/v1/organizations/members', headers: { ...admin.headers, 'x-organization': orgId }, payload: { username: member.user.username, role: 'member' } });
  });
  afterAll(async () => {
    await t?.cleanup();
    server?.close();
  });

  const api = (user: TestUser, method: string, url: string, payload?: unknown) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...user.headers, 'x-organization': orgId }, payload: payload as never });

  it('manages webhooks for admins only, with a write-only secret', async () => {
    expect((await api(member, 'POST', '/api/v1/webhooks', { url: hookUrl, events: ['*'], secret: 'x'.repeat(20) })).statusCode).toBe(403);
    expect((await api(member, 'POST', '/api/v1/webhooks', { nonsense: 1 })).statusCode).toBe(403); // authorised before validated
    expect((await api(admin, 'POST', '/api/v1/webhooks', { url: 'ftp://x', events: ['*'], secret: 'x'.repeat(20) })).statusCode).toBe(400);
    expect((await api(admin, 'POST', '/api/v1/webhooks', { url: hookUrl, events: ['nope'], secret: 'x'.repeat(20) })).statusCode).toBe(400);
    const created = await api(admin, 'POST', '/api/v1/webhooks', { url: hookUrl, events: ['alert.raised', 'alert.resolved'], secret: 'hook-secret-0123456789' });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.body).not.toContain('hook-secret-0123456789');
    const row = await t.app.db.selectFrom('webhooks').selectAll().executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain('hook-secret-0123456789');
    const list = await api(admin, 'GET', '/api/v1/webhooks');
    expect(list.json().webhooks).toHaveLength(1);
    expect(list.body).not.toContain('hook-secret');
  });

  it('raises one alert per condition, delivers it signed, retries a failed delivery, and resolves', async () => {
    failNext = 1; // the first delivery attempt fails: the task framework retries it
    const condition = { organizationId: orgId, conditionKey: 'publishing:s1:cdn_failover', kind: 'publish.cdn_failover', subject: 's1', severity: 'critical' as const, message: 'CDN down' };
    const first = await t.app.alerts.raise(condition);
    const second = await t.app.alerts.raise(condition);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.alert.occurrences).toBe(2);
    expect(deliveries).toHaveLength(1); // once, not once per occurrence; after one failed attempt
    const d = deliveries[0]!;
    const [, ts, mac] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(d.headers['x-stormvault-signature']))!;
    expect(mac).toBe(createHmac('sha256', 'hook-secret-0123456789').update(`${ts}.${d.body}`).digest('hex'));
    expect(d.headers['x-stormvault-event']).toBe('alert.raised');
    expect(JSON.parse(d.body)).toMatchObject({ event: 'alert.raised', organization_id: orgId, data: { kind: 'publish.cdn_failover', subject: 's1', status: 'open' } });

    const listed = await api(member, 'GET', '/api/v1/alerts?status=open');
    expect(listed.json().alerts).toHaveLength(1);
    expect((await api(member, 'POST', `/api/v1/alerts/${first.alert.id}/acknowledge`)).statusCode).toBe(403);
    const acked = await api(admin, 'POST', `/api/v1/alerts/${first.alert.id}/acknowledge`);
    expect(acked.json()).toMatchObject({ status: 'acknowledged', acknowledged_by: admin.user.id });
    // Acknowledged is still unresolved: the condition recurring counts on the same alert.
    expect((await t.app.alerts.raise(condition)).created).toBe(false);
    await t.app.alerts.resolve(orgId, condition.conditionKey);
    expect(deliveries.map((x) => x.headers['x-stormvault-event'])).toEqual(['alert.raised', 'alert.resolved']);
    // After resolution a recurrence is a new alert.
    expect((await t.app.alerts.raise(condition)).created).toBe(true);
    // Other organizations see none of it.
    const stranger = await createUserWithKey(t.app);
    const theirs = await t.app.http.inject({ method: 'GET', url: '/api/v1/alerts', headers: stranger.headers });
    expect(theirs.json().alerts).toEqual([]);
  });

  it('refuses webhook URLs that lead into the server’s network, when saved and again at delivery', async () => {
    const port = (server.address() as AddressInfo).port;
    for (const url of [`http://127.0.0.1:${port}/hook`, 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/', 'http://intranet.example.test/hook', 'http://nowhere.example.test/']) {
      const res = await api(admin, 'POST', '/api/v1/webhooks', { url, events: ['*'], secret: 'y'.repeat(20) });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.message).toMatch(/^url refused: /);
    }
    // Saved while it resolved to an allowed address; then the name is pointed at loopback (DNS rebinding).
    const before = deliveries.length;
    hooksHostAddress = '127.0.0.1';
    try {
      await t.app.alerts.raise({ organizationId: orgId, conditionKey: 'publishing:s2:disk_low', kind: 'publish.disk_low', subject: 's2', severity: 'warning', message: 'disk low' });
    } finally {
      hooksHostAddress = '127.0.0.2';
    }
    expect(deliveries).toHaveLength(before);
    const hooks = (await api(admin, 'GET', '/api/v1/webhooks')).json().webhooks;
    expect(hooks[0].last_delivery_status).toMatch(/^refused: hooks\.example\.test resolves to 127\.0\.0\.1 is a loopback address/);
  });
});
