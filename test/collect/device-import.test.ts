import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackupsRepository } from '../../src/modules/backups/backups.repository.ts';
import { CollectRepository } from '../../src/modules/collect/collect.repository.ts';
import { orgWithUsers } from '../backups/helpers.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';

/**
 * Issue 10 without SSH: the CSV import is one transaction, a batch backup-now is all or nothing, and a
 * successful collection's first-use trust never overwrites a key stored meanwhile.
 */
describe.each(testDialects())('collect writes on %s', (dialect) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await t?.cleanup();
    t = undefined;
  });

  async function setUp() {
    // The database backend with no worker: enqueued tasks stay READY (the immediate backend would run them).
    t = await createTestApp({ dialect, env: { STORMVAULT_TASKS_BACKEND: 'database' } });
    const u = await orgWithUsers(t.app);
    const loc = await u.asOwner('POST', '/api/v1/backup-locations', { name: 'fs', type: 'fs', config: { folder: 'configs' } });
    expect(loc.statusCode, loc.body).toBe(201);
    const cred = await u.asOwner('POST', '/api/v1/credentials', { name: 'ops', username: 'backup', password: 'pw-import-test' });
    expect(cred.statusCode, cred.body).toBe(201);
    const add = async (name: string, extra: object = {}) => {
      const r = await u.asOwner('POST', '/api/v1/network-devices', { name, address: '192.0.2.1', model: 'cisco-ios', credential_id: cred.json().id, backup_location_id: loc.json().id, ...extra });
      expect(r.statusCode, r.body).toBe(201);
      return r.json().id as string;
    };
    const devices = async () => (await u.asOwner('GET', '/api/v1/network-devices')).json().network_devices as { name: string; address: string; model: string }[];
    return { u, add, devices, ctx: { organizationId: u.orgId, userId: u.owner.user.id, role: 'admin' as const } };
  }

  it('CSV import: the 4th of 5 rows (line 5) failing at write time leaves nothing imported, updates included', async () => {
    const { u, add, devices } = await setUp();
    await add('existing');
    // The checks all pass; the third INSERT fails as a name taken meanwhile or a full disk would.
    const insert = BackupsRepository.prototype.insertDevice;
    let inserts = 0;
    vi.spyOn(BackupsRepository.prototype, 'insertDevice').mockImplementation(function (this: BackupsRepository, ...args) {
      if (++inserts === 3) return Promise.reject(new Error('disk I/O error (injected)'));
      return insert.apply(this, args);
    });
    const csv = 'name,address,model,group,credential\nexisting,10.9.9.9,arista-eos,,ops\nn1,10.0.0.1,cisco-ios,core,ops\nn2,10.0.0.2,cisco-ios,core,ops\nn3,10.0.0.3,cisco-ios,core,ops\nn4,10.0.0.4,cisco-ios,core,ops\n';
    const res = await u.asOwner('POST', '/api/v1/network-devices/import', csv, { 'content-type': 'text/csv' });
    expect(res.statusCode).toBe(500);
    expect(inserts).toBe(3);
    expect((await devices()).map((d) => [d.name, d.address, d.model])).toEqual([['existing', '192.0.2.1', 'cisco-ios']]);

    vi.restoreAllMocks();
    const again = await u.asOwner('POST', '/api/v1/network-devices/import', csv, { 'content-type': 'text/csv' });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ imported: true, created: 4, updated: 1, errors: 0 });
    expect((await devices()).map((d) => d.name)).toEqual(['existing', 'n1', 'n2', 'n3', 'n4']);
  });

  it('CSV import: every bad row is reported with its line (quoted line breaks counted), nothing written', async () => {
    const { u, add, devices } = await setUp();
    await add('existing');
    const csv = 'name,address,model,group,credential\n"n1","10.0.0.1",cisco-ios,"core\nroom",ops\nn2,,cisco-ios,,ops\nn3,10.0.0.3,cisco-ios,,ops\nn4,10.0.0.4,cisco-ios,,nobody\nn3,10.0.0.5,cisco-ios,,ops\n';
    const res = await u.asOwner('POST', '/api/v1/network-devices/import', csv, { 'content-type': 'text/csv' });
    expect(res.statusCode).toBe(400);
    const errors = res.json().rows.filter((r: { action: string }) => r.action === 'error');
    expect(errors.map((r: { row: number; name: string }) => [r.row, r.name])).toEqual([
      [2, 'n1'],
      [4, 'n2'],
      [6, 'n4'],
      [7, 'n3'],
    ]);
    expect(errors[2].error).toMatch(/no credential named "nobody"/);
    expect(errors[3].error).toMatch(/also on line 5/);
    expect((await devices()).map((d) => d.name)).toEqual(['existing']);
  });

  it('backupNowMany: one batch of tasks; a disabled, unknown or repeated device refuses the whole batch', async () => {
    const { add, ctx } = await setUp();
    const app = t!.app;
    const ids = [await add('a'), await add('b'), await add('c')];
    const off = await add('off', { enabled: false });
    const collectTasks = async () => (await app.tasks.list({ taskName: 'collect.device' })).length;
    await expect(app.collect.collect.backupNowMany(ctx, [...ids, off])).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/"off" is disabled/) });
    await expect(app.collect.collect.backupNowMany(ctx, [...ids, 'no-such-id'])).rejects.toMatchObject({ code: 'not_found' });
    await expect(app.collect.collect.backupNowMany(ctx, [ids[0]!, ids[0]!])).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(app.collect.collect.backupNowMany({ ...ctx, role: 'member' }, ids)).rejects.toMatchObject({ code: 'forbidden' });
    expect(await collectTasks()).toBe(0);
    const tasks = await app.collect.collect.backupNowMany(ctx, ids);
    expect(tasks.map((x) => (x.args as { network_device_id: string }).network_device_id)).toEqual(ids);
    expect(await collectTasks()).toBe(3);
  });

  it('recordSuccess trusts the first key once and never overwrites a different stored key', async () => {
    const { add, ctx } = await setUp();
    const id = await add('r1');
    const repo = new CollectRepository(t!.app.db);
    const k1 = `SHA256:${'A'.repeat(43)}`;
    const k2 = `SHA256:${'B'.repeat(43)}`;
    const ok = (task: string) => ({ last_task_id: task, last_attempt_at: '2026-12-01T00:00:00.000Z', last_success_at: '2026-12-01T00:00:00.000Z', last_stage: null, last_code: null, last_message: null });
    expect(await repo.recordSuccess(ctx.organizationId, id, k1, ok('t1'))).toBe(k1);
    expect(await repo.recordSuccess(ctx.organizationId, id, k1, ok('t2'))).toBe(k1);
    expect(await repo.findState(ctx.organizationId, id)).toMatchObject({ hostKey: k1, lastTaskId: 't2' });
    // Another key (a session that raced a first collection, or a key accepted meanwhile): nothing written.
    expect(await repo.recordSuccess(ctx.organizationId, id, k2, ok('t3'))).toBe(k1);
    expect(await repo.findState(ctx.organizationId, id)).toMatchObject({ hostKey: k1, lastTaskId: 't2' });
  });
});
