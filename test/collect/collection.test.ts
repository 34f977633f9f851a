import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { drainPipeline, orgWithUsers } from '../backups/helpers.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable } from '../storage/git-helpers.ts';
import { newHostKey, startFakeDevice, type Behaviour, type FakeDevice, type Transcript } from './fake-device.ts';
import { FIXTURES } from './transcripts.ts';

type Users = Awaited<ReturnType<typeof orgWithUsers>>;

// Short timeouts drive the failure cases (a hang costs 400 ms); two attempts, no backoff (immediate backend).
const ENV = {
  STORMVAULT_COLLECT_CONNECT_TIMEOUT_MS: '3000',
  STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS: '400',
  STORMVAULT_COLLECT_DEVICE_TIMEOUT_MS: '5000',
  STORMVAULT_COLLECT_ATTEMPTS: '2',
  STORMVAULT_COLLECT_RETRY_BACKOFF_MS: '0',
  STORMVAULT_BACKUP_FAILED_AFTER: '2',
};

const SECRETS = { password: 'pw-Zq8#unique-login', enable: 'en4ble' };

/** The cisco-ios fixture, with a running-config the test can change between collections. */
function iosTranscript(): Transcript & { commands: Record<string, string> } {
  const t = FIXTURES['cisco-ios']!.transcript;
  return { ...t, commands: { ...t.commands } };
}

describe.runIf(gitAvailable()).each(testDialects())('collection end to end on %s', (dialect) => {
  // Several SSH logins and pipeline drains per test: slow on a loaded machine, never a speed target.
  vi.setConfig({ testTimeout: 120_000 });
  let t: TestApp;
  let u: Users;
  const devices: FakeDevice[] = [];
  const logs: string[] = [];
  let hook: Server;
  const deliveries: { headers: IncomingHttpHeaders; body: string }[] = [];
  let hookUrl: string;

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => hook.close());

  async function setUp(clock?: ManualClock) {
    t = await createTestApp({ dialect, clock, env: { ...ENV, STORMVAULT_LOG_LEVEL: 'debug' }, logStream: { write: (s: string) => logs.push(s) } });
    u = await orgWithUsers(t.app);
    const loc = await u.asOwner('POST', '/api/v1/backup-locations', { name: 'git', type: 'git', config: { folder: 'configs' } });
    expect(loc.statusCode).toBe(201);
    const cred = await u.asOwner('POST', '/api/v1/credentials', { name: 'ops', username: 'backup', password: SECRETS.password, enable_password: SECRETS.enable });
    expect(cred.statusCode).toBe(201);
    return { locationId: loc.json().id as string, credentialId: cred.json().id as string };
  }

  async function device(behaviour: Behaviour = 'normal', transcript: Transcript = iosTranscript(), hostKey?: ReturnType<typeof newHostKey>) {
    const d = await startFakeDevice({ transcript, behaviour, hostKey, password: SECRETS.password });
    devices.push(d);
    return d;
  }

  async function addDevice(ids: { locationId: string; credentialId: string }, d: FakeDevice, name = 'r1', extra: object = {}) {
    const res = await u.asOwner('POST', '/api/v1/network-devices', { name, address: '127.0.0.1', port: d.port, model: 'cisco-ios', credential_id: ids.credentialId, backup_location_id: ids.locationId, ...extra });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  async function backupNow(deviceId: string) {
    const res = await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backup-now`);
    expect(res.statusCode, res.body).toBe(202);
    await drainPipeline(t.app);
    return t.app.tasks.getResult(res.json().task_id);
  }

  const history = async (deviceId: string) => (await u.asOwner('GET', `/api/v1/network-devices/${deviceId}/backups`)).json().stored_backups as any[];
  const status = async (deviceId: string) => (await u.asOwner('GET', `/api/v1/network-devices/${deviceId}`)).json();
  const collection = async (deviceId: string) => (await u.asMember('GET', `/api/v1/network-devices/${deviceId}/collection`)).json();

  afterEach(async () => {
    await Promise.all(devices.splice(0).map((d) => d.close()));
    await t?.cleanup();
    logs.length = 0;
    deliveries.length = 0;
  });

  it('device → collect task → ssh → device:results → stored version; volatile lines make no version; changes fire backup.changed', async () => {
    const ids = await setUp();
    const hookRes = await u.asOwner('POST', '/api/v1/webhooks', { url: hookUrl, events: ['backup.changed', 'backup.failed'], secret: 'a-webhook-secret-of-some-length' });
    expect(hookRes.statusCode, hookRes.body).toBe(201);
    const transcript = iosTranscript();
    const d = await device('normal', transcript);
    const id = await addDevice(ids, d);

    const first = await backupNow(id);
    expect(first.status).toBe('SUCCESSFUL');
    expect(first.returnValue).toMatchObject({ ok: true, host_key: d.fingerprint, host_key_trusted_now: true });
    const v1 = await history(id);
    expect(v1).toHaveLength(1);
    const content = (await u.asMember('GET', `/api/v1/stored-backups/${v1[0].id}/download`)).body;
    expect(content).toContain('hostname r1');
    expect(content).toContain('enable secret 5 <secret hidden>');
    expect(content).not.toContain('TOPSECRET');
    expect(content).not.toContain('--More--');
    expect(await status(id)).toMatchObject({ last_status: 'success', last_error: null, consecutive_failures: 0 });
    expect(await collection(id)).toMatchObject({ host_key: d.fingerprint, pending_host_key: null, last_stage: null });

    // Only the volatile "Last configuration change" line differs: stored as the same version.
    transcript.commands['show running-config'] = transcript.commands['show running-config']!.replace('10:01:02', '11:22:33');
    expect((await backupNow(id)).status).toBe('SUCCESSFUL');
    expect(await history(id)).toHaveLength(1);

    transcript.commands['show running-config'] = transcript.commands['show running-config']!.replace('hostname r1', 'hostname r1-renamed');
    await backupNow(id);
    const v2 = await history(id);
    expect(v2).toHaveLength(2);
    expect((await u.asMember('GET', `/api/v1/stored-backups/${v2[0].id}/download`)).body).toContain('hostname r1-renamed');

    const changed = deliveries.map((x) => JSON.parse(x.body)).filter((b) => b.event === 'backup.changed');
    expect(changed.map((b) => b.data.stored_backup_id)).toEqual([v1[0].id, v2[0].id]);
    const [, ts, mac] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(deliveries[0]!.headers['x-stormvault-signature']))!;
    expect(mac).toBe(createHmac('sha256', 'a-webhook-secret-of-some-length').update(`${ts}.${deliveries[0]!.body}`).digest('hex'));
  });

  it.each([
    ['reject-password', 'auth', 'auth_failed', /authentication failed for user "backup"/, 1],
    ['no-prompt', 'prompt', 'prompt_not_found', /no prompt after login within 400 ms/, 2],
    ['hang', 'timeout', 'timeout', /no prompt after `show running-config` within 400 ms/, 2],
    ['drop', 'command', 'connection_closed', /closed the connection \(waiting for `show running-config`\)/, 2],
  ] as const)('a device that does %s fails at stage %s (%s) with the reason, and nothing is stored', async (behaviour, stage, code, message, attempts) => {
    const ids = await setUp();
    const d = await device(behaviour);
    const id = await addDevice(ids, d);
    const task = await backupNow(id);
    expect(task.attempts).toBe(attempts); // auth failures are not retried (the account could be locked)
    expect(task.returnValue).toMatchObject({ ok: false, stage, code });
    expect(await history(id)).toEqual([]);
    const s = await status(id);
    expect(s.last_status).toBe('failed');
    expect(s.last_error).toMatch(new RegExp(`^${stage}: `));
    expect(s.last_error).toMatch(message);
    expect(await collection(id)).toMatchObject({ last_stage: stage, last_code: code });
    expect((await collection(id)).last_message).toMatch(message);
    expect(readdirSync(path.join(t.config.backups.root, u.orgId)).flatMap((f) => readdirSync(path.join(t.config.backups.root, u.orgId, f))).filter((f) => f !== '.git')).toEqual([]);
  });

  it('a changed host key fails with host_key_mismatch until an admin accepts it; backup.failed fires on the Nth failure only', async () => {
    const ids = await setUp();
    await u.asOwner('POST', '/api/v1/webhooks', { url: hookUrl, events: ['backup.failed'], secret: 'a-webhook-secret-of-some-length' });
    const first = await device();
    const id = await addDevice(ids, first);
    expect((await backupNow(id)).status).toBe('SUCCESSFUL');
    await first.close();
    devices.splice(devices.indexOf(first), 1);
    // Another key at the device's address (a replaced device, or someone in the middle).
    const other = newHostKey();
    const second = await startFakeDevice({ transcript: iosTranscript(), hostKey: other, password: SECRETS.password });
    devices.push(second);
    await u.asOwner('PATCH', `/api/v1/network-devices/${id}`, { port: second.port });

    for (let i = 0; i < 3; i++) {
      const task = await backupNow(id);
      expect(task.attempts).toBe(1);
      expect(task.returnValue).toMatchObject({ ok: false, stage: 'connect', code: 'host_key_mismatch' });
    }
    expect(second.received).toEqual([]); // never logged in
    const s = await collection(id);
    expect(s).toMatchObject({ host_key: first.fingerprint, pending_host_key: other.fingerprint, last_code: 'host_key_mismatch' });
    expect(await history(id)).toHaveLength(1);
    const failed = deliveries.map((x) => JSON.parse(x.body)).filter((b) => b.event === 'backup.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].data).toMatchObject({ network_device: 'r1', consecutive_failures: 2 });

    expect((await u.asMember('POST', `/api/v1/network-devices/${id}/accept-host-key`, {})).statusCode).toBe(403);
    expect((await u.asOwner('POST', `/api/v1/network-devices/${id}/accept-host-key`, { fingerprint: first.fingerprint })).statusCode).toBe(409);
    const accepted = await u.asOwner('POST', `/api/v1/network-devices/${id}/accept-host-key`, { fingerprint: other.fingerprint });
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json()).toMatchObject({ host_key: other.fingerprint, pending_host_key: null });
    expect((await backupNow(id)).returnValue).toMatchObject({ ok: true });
    expect((await status(id)).consecutive_failures).toBe(0);
  });

  it('the scheduler enqueues each due device once per tick, in its time zone; disabled devices are never collected', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 8, 59, 0));
    const ids = await setUp(clock);
    const d = await device();
    const hourly = await addDevice(ids, d, 'hourly'); // the org default: 0 * * * *
    const berlin = await addDevice(ids, d, 'berlin', { schedule: '30 10 * * *', timezone: 'Europe/Berlin' });
    const off = await addDevice(ids, d, 'off', { enabled: false, schedule: '* * * * *' });

    expect(await t.app.collect.collect.enqueueDue(clock.now())).toMatchObject({ due: 0 });
    clock.set(Date.UTC(2026, 5, 1, 9, 0, 20));
    expect(await t.app.collect.collect.enqueueDue(clock.now())).toMatchObject({ due: 1 });
    // Another process (or the next minute) seeing the same tick enqueues nothing new.
    clock.set(Date.UTC(2026, 5, 1, 9, 1, 5));
    await t.app.collect.collect.enqueueDue(clock.now());
    await drainPipeline(t.app);
    expect(await history(hourly)).toHaveLength(1);
    expect(await history(berlin)).toHaveLength(0);
    // 10:30 in Berlin (CEST, UTC+2) is 08:30 UTC: tomorrow's tick.
    clock.set(Date.UTC(2026, 5, 2, 8, 30, 10));
    expect(await t.app.collect.collect.enqueueDue(clock.now())).toMatchObject({ due: 1 });
    await drainPipeline(t.app);
    expect(await history(berlin)).toHaveLength(1);
    expect(await history(off)).toHaveLength(0);
    expect((await u.asOwner('POST', `/api/v1/network-devices/${off}/backup-now`)).statusCode).toBe(409);

    // The org default can change: every 15 minutes.
    expect((await u.asOwner('PUT', '/api/v1/collect-settings', { default_schedule: '*/15 * * * *' })).json()).toEqual({ default_schedule: '*/15 * * * *', timezone: 'UTC' });
    clock.set(Date.UTC(2026, 5, 2, 8, 45, 1));
    expect(await t.app.collect.collect.enqueueDue(clock.now())).toMatchObject({ due: 1 });
  });

  it('device collection fields are validated: unknown model, foreign credential, bad port or schedule are 400 and change nothing', async () => {
    const ids = await setUp();
    const d = await device();
    const id = await addDevice(ids, d);
    const outsiderCred = await u.asOutsider('POST', '/api/v1/credentials', { name: 'x', username: 'x', password: 'p' });
    expect(outsiderCred.statusCode).toBe(201);
    for (const body of [
      { model: 'no-such-model' },
      { credential_id: outsiderCred.json().id },
      { port: 0 },
      { port: '22' },
      { schedule: 'every hour' },
      { schedule: '0 * * * *', timezone: 'Mars/Olympus' },
      { commands: ['show run'] }, // commands only for exec models
      { scrub_secrets: 'yes' },
    ]) {
      const res = await u.asOwner('PATCH', `/api/v1/network-devices/${id}`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await u.asOwner('PATCH', `/api/v1/network-devices/${id}`, { model: 'no-such-model' })).json().error.message).toMatch(/unknown backup model "no-such-model"/);
    expect(await status(id)).toMatchObject({ model: 'cisco-ios', port: d.port, credential_id: ids.credentialId, schedule: null, scrub_secrets: true });
    const models = (await u.asMember('GET', '/api/v1/backup-models')).json().backup_models.map((m: any) => m.name);
    expect(models).toEqual(['arista-eos', 'cisco-ios', 'cisco-nxos', 'fortios', 'generic-exec', 'juniper-junos', 'mikrotik-routeros']);
    expect((await u.asOwner('DELETE', `/api/v1/credentials/${ids.credentialId}`)).statusCode).toBe(409); // in use
  });

  it('credentials are for org admins, write-only, and neither the database nor the logs hold a secret', async () => {
    const ids = await setUp();
    const d = await device();
    const id = await addDevice(ids, d);
    await backupNow(id);
    expect((await u.asMember('GET', '/api/v1/credentials')).statusCode).toBe(403);
    expect((await u.asMember('POST', '/api/v1/credentials', { name: 'm', username: 'm', password: 'p' })).statusCode).toBe(403);
    const list = await u.asOwner('GET', '/api/v1/credentials');
    expect(list.json().credentials).toEqual([expect.objectContaining({ name: 'ops', username: 'backup', has_password: true, has_private_key: false, has_enable_password: true })]);
    for (const res of [list, await u.asOwner('GET', `/api/v1/credentials/${ids.credentialId}`), await u.asOwner('PATCH', `/api/v1/credentials/${ids.credentialId}`, { username: 'backup' })]) {
      expect(res.body).not.toContain(SECRETS.password);
      expect(res.body).not.toContain('secrets_enc');
    }
    const bad = await u.asOwner('POST', '/api/v1/credentials', { name: 'k', username: 'k', private_key: 'not-a-key-' + SECRETS.password });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toContain(SECRETS.password);

    // The whole database, as a dump would hold it.
    const dump = await databaseDump(t, dialect);
    expect(dump).toContain('backup'); // the dump is real: the username is there in clear
    expect(dump).not.toContain(SECRETS.password);
    expect(dump).not.toContain(SECRETS.enable);
    const allLogs = logs.join('');
    expect(allLogs.length).toBeGreaterThan(1000); // debug logs were captured
    expect(allLogs).not.toContain(SECRETS.password);
    expect(allLogs).not.toContain(SECRETS.enable);
  });

  it('CSV import: validates every row first, reports row numbers, imports nothing on any error; dry run changes nothing', async () => {
    const ids = await setUp();
    const d = await device();
    await addDevice(ids, d, 'existing');
    const post = (csv: string, q = '') => u.asOwner('POST', `/api/v1/network-devices/import${q}`, csv, { 'content-type': 'text/csv' });
    const bad = await post('name,address,model,group,credential\nsw1,10.0.0.1,cisco-ios,core,ops\nsw2,10.0.0.2,nope,core,ops\n"sw3",10.0.0.3,juniper-junos,,missing-cred\nsw1,10.0.0.4,cisco-ios,core,ops\n');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().rows.filter((r: any) => r.action === 'error').map((r: any) => [r.row, r.name])).toEqual([
      [3, 'sw2'],
      [4, 'sw3'],
      [5, 'sw1'],
    ]);
    expect(bad.json().rows[1].error).toMatch(/unknown backup model "nope"/);
    expect(bad.json().imported).toBe(false);
    const names = async () => (await u.asOwner('GET', '/api/v1/network-devices')).json().network_devices.map((x: any) => x.name);
    expect(await names()).toEqual(['existing']);

    const good = 'name,address,model,group,credential\nsw1,10.0.0.1,cisco-ios,core,ops\n"existing","10.9.9.9",arista-eos,,ops\n';
    const dry = await post(good, '?dry_run=true');
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json()).toMatchObject({ dry_run: true, imported: false, created: 1, updated: 1, errors: 0 });
    expect(await names()).toEqual(['existing']);
    const done = await post(good);
    expect(done.json()).toMatchObject({ imported: true, created: 1, updated: 1 });
    expect(await names()).toEqual(['existing', 'sw1']);
    const existing = (await u.asOwner('GET', '/api/v1/network-devices')).json().network_devices[0];
    expect(existing).toMatchObject({ address: '10.9.9.9', model: 'arista-eos', port: d.port });
    expect((await u.asMember('POST', '/api/v1/network-devices/import', good, { 'content-type': 'text/csv' })).statusCode).toBe(403);
  });
});

/** Every row of every table, as text (what a `pg_dump` or a copy of the SQLite file would reveal). */
async function databaseDump(t: TestApp, dialect: string): Promise<string> {
  if (dialect === 'sqlite') {
    const file = t.config.database.url.replace(/^sqlite:/, '');
    const dir = path.dirname(file);
    return readdirSync(dir)
      .filter((f) => f.startsWith(path.basename(file)))
      .map((f) => readFileSync(path.join(dir, f)).toString('latin1'))
      .join('\n');
  }
  const client = new pg.Client({ connectionString: t.config.database.url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    const out: string[] = [];
    for (const { tablename } of tables.rows) out.push(JSON.stringify((await client.query(`SELECT * FROM "${tablename}"`)).rows));
    return out.join('\n');
  } finally {
    await client.end();
  }
}
