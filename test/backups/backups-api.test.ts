import { mkdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable, gitIn } from '../storage/git-helpers.ts';
import { drainPipeline, orgWithUsers } from './helpers.ts';

const CONFIG_V1 = '! Last configuration change at 10:00:01\nhostname r1\ninterface Gi0/1\n description uplink\nntp clock-period 123\n';
const CONFIG_V1_AGAIN = '! Last configuration change at 11:22:33\nhostname r1\ninterface Gi0/1\n description uplink\nntp clock-period 456\n';
const CONFIG_V2 = '! Last configuration change at 12:00:00\nhostname r1\ninterface Gi0/1\n description core uplink\nntp clock-period 789\n';

describe.runIf(gitAvailable()).each(testDialects())('backups API on %s', (dialect) => {
  let t: TestApp;
  let u: Awaited<ReturnType<typeof orgWithUsers>>;
  beforeEach(async () => {
    t = await createTestApp({ dialect });
    u = await orgWithUsers(t.app);
  });
  afterEach(async () => t.cleanup());

  const setup = async () => {
    const loc = await u.asOwner('POST', '/api/v1/backup-locations', { name: 'main', type: 'git', config: { folder: 'net/configs', author_name: 'NetOps', author_email: 'netops@example.test' } });
    expect(loc.statusCode).toBe(201);
    const dev = await u.asOwner('POST', '/api/v1/network-devices', {
      name: 'r1',
      address: '10.0.0.1',
      group: 'core',
      backup_location_id: loc.json().id,
      strip_patterns: ['^! Last configuration change'],
      ignore_patterns: ['^ntp clock-period'],
    });
    expect(dev.statusCode).toBe(201);
    return { location: loc.json(), device: dev.json(), gitDir: path.join(t.config.backups.root, u.orgId, 'net/configs') };
  };

  const push = async (deviceId: string, content: string) => {
    const r = await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, content);
    expect(r.statusCode).toBe(202);
    expect(r.json().task_identifier).toMatch(/^[0-9a-f-]{36}$/);
    await drainPipeline(t.app);
    return r.json().task_identifier as string;
  };

  it('push → stream → git commit → stored_backups row → history → download → diff', async () => {
    const { device, gitDir } = await setup();
    expect(device).toMatchObject({ name: 'r1', group: 'core', enabled: true, last_backup_at: null, last_status: null, consecutive_failures: 0 });

    const task1 = await push(device.id, CONFIG_V1);
    // The repository is plain git: one commit by the location's author, the strip pattern applied.
    expect(gitIn(gitDir, 'log', '--format=%s|%an|%ae', 'main').trim()).toBe('update core/r1|NetOps|netops@example.test');
    expect(gitIn(gitDir, 'show', 'main:core/r1')).toBe(CONFIG_V1.split('\n').slice(1).join('\n'));

    let history = (await u.asMember('GET', `/api/v1/network-devices/${device.id}/backups`)).json();
    expect(history.stored_backups).toHaveLength(1);
    const first = history.stored_backups[0];
    expect(first).toMatchObject({ network_device_id: device.id, task_identifier: task1, size: Buffer.byteLength(CONFIG_V1) - CONFIG_V1.indexOf('\n') - 1 });
    expect(first.storage_ref).toMatch(/^main:core\/r1@[0-9a-f]{40}$/);
    let status = (await u.asMember('GET', `/api/v1/network-devices/${device.id}`)).json();
    expect(status).toMatchObject({ last_status: 'success', last_error: null, consecutive_failures: 0 });
    expect(status.last_backup_at).toBe(first.collected_at);
    expect(status.last_changed_at).toBe(first.collected_at);

    // Only stripped and ignored lines differ: no new version, no commit; last_backup_at still moves.
    await push(device.id, CONFIG_V1_AGAIN);
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('1');
    history = (await u.asMember('GET', `/api/v1/network-devices/${device.id}/backups`)).json();
    expect(history.stored_backups).toHaveLength(1);
    status = (await u.asMember('GET', `/api/v1/network-devices/${device.id}`)).json();
    expect(status.last_changed_at).toBe(first.collected_at);
    expect(status.last_backup_at >= first.collected_at).toBe(true);

    await push(device.id, CONFIG_V2);
    history = (await u.asMember('GET', `/api/v1/network-devices/${device.id}/backups`)).json();
    expect(history.stored_backups).toHaveLength(2);
    const [second] = history.stored_backups;
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('2');

    const download = await u.asMember('GET', `/api/v1/stored-backups/${first.id}/download`);
    expect(download.statusCode).toBe(200);
    expect(download.body).toBe(CONFIG_V1.split('\n').slice(1).join('\n'));
    expect(String(download.headers['content-disposition'])).toMatch(/^attachment; filename="r1_\d{8}T\d{6}Z\.cfg"$/);

    const shown = await u.asMember('GET', `/api/v1/stored-backups/${second.id}`);
    expect(shown.json()).toEqual(second);

    const diff = await u.asMember('GET', `/api/v1/stored-backups/${second.id}/diff?against=previous`);
    expect(diff.statusCode).toBe(200);
    expect(diff.body).toContain('--- a/core/r1');
    expect(diff.body).toContain('- description uplink');
    expect(diff.body).toContain('+ description core uplink');
    const json = (await u.asMember('GET', `/api/v1/stored-backups/${second.id}/diff?against=${first.id}&format=json`)).json();
    expect(json.from.id).toBe(first.id);
    expect(json.hunks.length).toBe(1);
    expect(json.hunks[0].lines).toContain('+ description core uplink');
    expect((await u.asMember('GET', `/api/v1/stored-backups/${first.id}/diff?against=previous`)).statusCode).toBe(404);
    expect((await u.asMember('GET', `/api/v1/stored-backups/${first.id}/diff?format=xml`)).statusCode).toBe(400);
  });

  it('history pages newest first with a cursor', async () => {
    const { device } = await setup();
    for (let i = 0; i < 5; i++) await u.asOwner('POST', `/api/v1/network-devices/${device.id}/backups`, `hostname r1\nversion ${i}\n`);
    await drainPipeline(t.app);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = (await u.asMember('GET', `/api/v1/network-devices/${device.id}/backups?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json();
      seen.push(...page.stored_backups.map((b: any) => b.collected_at + b.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect([...seen].sort().reverse()).toEqual(seen);
    expect((await u.asMember('GET', `/api/v1/network-devices/${device.id}/backups?cursor=bogus!`)).statusCode).toBe(400);
    expect((await u.asMember('GET', `/api/v1/network-devices/${device.id}/backups?limit=0`)).statusCode).toBe(400);
  });

  it('members read and download; only admins manage or push; other organizations get 404', async () => {
    const { location, device } = await setup();
    await push(device.id, CONFIG_V1);
    const backupId = (await u.asOwner('GET', `/api/v1/network-devices/${device.id}/backups`)).json().stored_backups[0].id;

    expect((await u.asMember('GET', '/api/v1/backup-locations')).json().backup_locations).toHaveLength(1);
    expect((await u.asMember('GET', '/api/v1/network-devices')).json().network_devices).toHaveLength(1);
    // A member's bad body is a 403, not a 400: authorisation comes before validation.
    expect((await u.asMember('POST', '/api/v1/backup-locations', { nonsense: true })).statusCode).toBe(403);
    expect((await u.asMember('POST', '/api/v1/network-devices', { name: 'x' })).statusCode).toBe(403);
    expect((await u.asMember('PATCH', `/api/v1/network-devices/${device.id}`, { enabled: false })).statusCode).toBe(403);
    expect((await u.asMember('DELETE', `/api/v1/backup-locations/${location.id}`)).statusCode).toBe(403);
    expect((await u.asMember('POST', `/api/v1/network-devices/${device.id}/backups`, 'x')).statusCode).toBe(403);

    for (const url of [
      `/api/v1/backup-locations/${location.id}`,
      `/api/v1/network-devices/${device.id}`,
      `/api/v1/network-devices/${device.id}/backups`,
      `/api/v1/stored-backups/${backupId}`,
      `/api/v1/stored-backups/${backupId}/download`,
      `/api/v1/stored-backups/${backupId}/diff`,
    ]) {
      expect((await u.asOutsider('GET', url)).statusCode, url).toBe(404);
    }
    // The outsider is admin of their own org: writes to our ids are 404 too, and change nothing.
    expect((await u.asOutsider('POST', `/api/v1/network-devices/${device.id}/backups`, 'evil')).statusCode).toBe(404);
    expect((await u.asOutsider('DELETE', `/api/v1/network-devices/${device.id}`)).statusCode).toBe(404);
    expect((await u.asOutsider('PATCH', `/api/v1/backup-locations/${location.id}`, { name: 'mine' })).statusCode).toBe(404);
    expect((await u.asOutsider('POST', '/api/v1/network-devices', { name: 'r9', address: 'x', backup_location_id: location.id })).statusCode).toBe(400);
    expect((await u.asOutsider('GET', '/api/v1/network-devices')).json().network_devices).toEqual([]);
    // Anonymous: 401 everywhere.
    expect((await t.app.http.inject({ method: 'GET', url: '/api/v1/network-devices' })).statusCode).toBe(401);
    expect((await t.app.http.inject({ method: 'POST', url: `/api/v1/network-devices/${device.id}/backups`, payload: 'x' })).statusCode).toBe(401);
    expect((await u.asOwner('GET', `/api/v1/network-devices/${device.id}`)).json().name).toBe('r1');
  });

  it('location folders cannot escape the organization folder (absolute, .., symlinks)', async () => {
    const post = (folder: unknown) => u.asOwner('POST', '/api/v1/backup-locations', { name: `l${Math.random().toString(36).slice(2, 8)}`, type: 'git', config: { folder } });
    for (const folder of ['/etc', '../other-org', 'a/../../x', 'a/..', '..', '', 'C:\\x', 'a\\..\\b', 'a\u0000b', 5, null]) {
      const r = await post(folder);
      expect(r.statusCode, JSON.stringify(folder)).toBe(400);
    }
    const orgRoot = path.join(t.config.backups.root, u.orgId);
    await mkdir(orgRoot, { recursive: true });
    await symlink('/etc', path.join(orgRoot, 'escape'));
    await symlink(path.join(t.config.backups.root, 'someone-else'), path.join(orgRoot, 'sideways'));
    await symlink('/nonexistent-target', path.join(orgRoot, 'dangling'));
    for (const folder of ['escape', 'escape/repo', 'sideways/x', 'dangling/x']) {
      const r = await post(folder);
      expect(r.statusCode, folder).toBe(400);
      expect(r.json().error.code).toBe('invalid_path');
    }
    expect(await readlink(path.join(orgRoot, 'escape'))).toBe('/etc');
    expect((await u.asOwner('GET', '/api/v1/backup-locations')).json().backup_locations).toEqual([]);
    expect((await post('fine/repo')).statusCode).toBe(201);
    expect((await post('fine/repo')).statusCode).toBe(409); // one location per folder
    expect((await post('fine')).statusCode).toBe(409); // nor nested ones
  });

  it('validates locations and devices with clear 400s and changes nothing', async () => {
    const { location } = await setup();
    const bad = async (url: string, body: unknown, pattern: RegExp) => {
      const r = await u.asOwner('POST', url, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.message).toMatch(pattern);
    };
    await bad('/api/v1/backup-locations', { name: 'x', type: 'svn', config: { folder: 'x' } }, /type/);
    await bad('/api/v1/backup-locations', { name: 'x', type: 'git', config: { folder: 'x', branch: '../main' } }, /branch/);
    await bad('/api/v1/backup-locations', { name: 'x', type: 'fs', config: { folder: 'y', keep_versions: -1 } }, /keep_versions/);
    await bad('/api/v1/backup-locations', { name: 'x', type: 'git', config: { folder: 'z' }, extra: 1 }, /unknown field/);
    const dev = (over: object) => ({ name: 'r2', address: '10.0.0.2', backup_location_id: location.id, ...over });
    for (const name of ['.', '..', 'a b', 'x'.repeat(129), '', 'a/b', 'é']) await bad('/api/v1/network-devices', dev({ name }), /name must be/);
    await bad('/api/v1/network-devices', dev({ group: '..' }), /group must be/);
    await bad('/api/v1/network-devices', dev({ strip_patterns: ['(unclosed'] }), /strip_patterns\[0\] is not a valid regular expression/);
    await bad('/api/v1/network-devices', dev({ ignore_patterns: 'x' }), /ignore_patterns must be an array/);
    await bad('/api/v1/network-devices', dev({ backup_location_id: 'nope' }), /backup_location_id/);
    await bad('/api/v1/network-devices', dev({ enabled: 'yes' }), /enabled/);
    expect((await u.asOwner('GET', '/api/v1/network-devices')).json().network_devices.map((d: any) => d.name)).toEqual(['r1']);
    expect((await u.asOwner('POST', '/api/v1/network-devices', dev({ name: 'r1' }))).statusCode).toBe(409);
    expect((await u.asOwner('DELETE', `/api/v1/backup-locations/${location.id}`)).statusCode).toBe(409);
  });

  it('a catastrophic-looking pattern on a large configuration finishes (RE2, no backtracking)', async () => {
    const loc = (await u.asOwner('POST', '/api/v1/backup-locations', { name: 'm', type: 'git', config: { folder: 'big' } })).json();
    const d = (await u.asOwner('POST', '/api/v1/network-devices', { name: 'big', address: 'x', backup_location_id: loc.id, strip_patterns: ['^(a+)+$'] })).json();
    const line = `${'a'.repeat(3000)}b\n`;
    const config = line.repeat(2000); // ~6 MB of lines that make a backtracking engine explode
    const r = await u.asOwner('POST', `/api/v1/network-devices/${d.id}/backups`, config);
    expect(r.statusCode).toBe(202);
    await drainPipeline(t.app);
    const status = (await u.asOwner('GET', `/api/v1/network-devices/${d.id}`)).json();
    // Either stored (RE2 finished within the budget) or failed with the budget's reason: never a hang.
    expect(['success', 'failed']).toContain(status.last_status);
    if (status.last_status === 'failed') expect(status.last_error).toMatch(/time budget|longer than/);
  });

  it('refuses an oversized push with 413 and stores nothing', async () => {
    await t.cleanup();
    t = await createTestApp({ dialect, env: { STORMVAULT_BACKUPS_MAX_BYTES: '1000' } });
    u = await orgWithUsers(t.app);
    const { device } = await setup();
    const r = await u.asOwner('POST', `/api/v1/network-devices/${device.id}/backups`, 'x'.repeat(1001));
    expect(r.statusCode).toBe(413);
    expect((await u.asOwner('POST', `/api/v1/network-devices/${device.id}/backups`, '')).statusCode).toBe(400);
    expect(await t.app.streams.length('device:results')).toBe(0);
  });
});
