import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { REBUILD_INDEX_TASK } from '../../src/modules/index-sync/index-sync.tasks.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { gitAvailable } from '../storage/git-helpers.ts';
import { callerFor, drainPipeline, orgWithUsers, type Caller } from './helpers.ts';

type Users = Awaited<ReturnType<typeof orgWithUsers>>;

/**
 * Issue 9: `POST /api/v1/index/rebuild/` for the backups scope, per organization. A system administrator
 * rebuilds every organization's backups index or one (`organization_id`); an organization's admin only
 * their own organization's, and nothing else; 401 → 403 → 400 for everyone.
 */
describe.runIf(gitAvailable()).each(testDialects())('POST /api/v1/index/rebuild/ scope backups, per organization, on %s', (dialect) => {
  let t: TestApp;
  let u: Users;
  let clock: ManualClock;
  let sysadmin: TestUser;
  let orgB: string;
  let asOutsiderInB: Caller;
  const devices: Record<'a' | 'b', string> = { a: '', b: '' };

  const rows = async (organizationId: string) =>
    (
      await t.app.db
        .withTables<{ stored_backups: { organization_id: string } }>()
        .selectFrom('stored_backups')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('organization_id', '=', organizationId)
        .executeTakeFirstOrThrow()
    ).n;
  const wipe = () => t.app.db.withTables<{ stored_backups: { id: string } }>().deleteFrom('stored_backups').execute();
  const rebuild = (caller: Caller, body: unknown, headers?: Record<string, string>) => {
    // Past the engine's in-flight grace: versions written "just now" would be left for the next run.
    clock.advance(5000);
    return caller('POST', '/api/v1/index/rebuild/', body, headers);
  };

  beforeAll(async () => {
    // Ahead of the real clock: git commits carry real times, so every version is older than the grace.
    clock = new ManualClock(Date.now() + 3_600_000);
    t = await createTestApp({ dialect, clock });
    u = await orgWithUsers(t.app);
    sysadmin = await createUserWithKey(t.app, { admin: true });
    orgB = (await t.app.organizations.listForUser(u.outsider.user.id))[0]!.organization.id;
    asOutsiderInB = callerFor(t.app, u.outsider, { 'x-organization': orgB });
    for (const [key, caller] of [
      ['a', u.asOwner],
      ['b', asOutsiderInB],
    ] as const) {
      const loc = await caller('POST', '/api/v1/backup-locations', { name: 'net', type: 'git', config: { folder: 'net' } });
      expect(loc.statusCode).toBe(201);
      const dev = await caller('POST', '/api/v1/network-devices', { name: 'r1', address: '192.0.2.1', group: 'core', backup_location_id: loc.json().id });
      expect(dev.statusCode).toBe(201);
      devices[key] = dev.json().id;
      for (const v of [`hostname ${key}\n`, `hostname ${key}\nntp server 1\n`]) {
        clock.advance(1000);
        expect((await caller('POST', `/api/v1/network-devices/${devices[key]}/backups`, v)).statusCode).toBe(202);
        await drainPipeline(t.app);
      }
    }
    expect([await rows(u.orgId), await rows(orgB)]).toEqual([2, 2]);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('anonymous callers get 401; members, other organizations and other scopes get 403 whatever the body; nothing is queued', async () => {
    await wipe();
    const anonymous = await t.app.http.inject({ method: 'POST', url: '/api/v1/index/rebuild/', payload: { mode: 'sync', scope: 'backups' } });
    expect(anonymous.statusCode).toBe(401);
    const refused: Array<[string, Caller, unknown, Record<string, string>?]> = [
      // A member of A (not its admin): well-formed, malformed, naming the organization or not.
      ['member, sync', u.asMember, { mode: 'sync', scope: 'backups' }],
      ['member, bad mode', u.asMember, { mode: 'bogus', scope: 'backups' }],
      ['member, naming A', u.asMember, { mode: 'sync', scope: 'backups', organization_id: u.orgId }],
      ['member, not an object', u.asMember, [1, 2, 3]],
      // B's admin reaching for A: through the header (not a member there) or through the body.
      ['admin of B, X-Organization A', asOutsiderInB, { mode: 'sync', scope: 'backups' }, { 'x-organization': u.orgId }],
      ['admin of B, organization_id A', asOutsiderInB, { mode: 'sync', scope: 'backups', organization_id: u.orgId }],
      ['admin of B, organization_id A, bad mode', asOutsiderInB, { mode: 'bogus', scope: 'backups', organization_id: u.orgId }],
      ['admin of B, malformed X-Organization', asOutsiderInB, { mode: 'sync', scope: 'backups' }, { 'x-organization': '!!bad!!' }],
      // A's admin outside the backups scope: the files index (every user's files) and publishing are not theirs.
      ['admin of A, files scope', u.asOwner, { mode: 'sync' }],
      ['admin of A, files scope, bad body', u.asOwner, { mode: 'sync', user_id: 7, extra: true }],
      ['admin of A, publishing scope', u.asOwner, { mode: 'audit', scope: 'publishing' }],
      ['admin of A, no body', u.asOwner, undefined],
    ];
    for (const [label, caller, body, headers] of refused) {
      const res = await rebuild(caller, body, headers);
      expect(res.statusCode, `${label}: ${res.body}`).toBe(403);
      expect(res.json().error.code, label).toBe('forbidden');
    }
    expect((await t.app.tasks.list({ taskName: REBUILD_INDEX_TASK })).length).toBe(0);
    expect([await rows(u.orgId), await rows(orgB)]).toEqual([0, 0]);
  });

  it("an organization's admin: 400 for a bad request of their own backups, then rebuilds theirs and only theirs", async () => {
    await wipe();
    for (const body of [{ mode: 'bogus', scope: 'backups' }, { mode: 'full', scope: 'backups' }, { mode: 'sync', scope: 'backups', user_id: 'x' }, { mode: 'sync', scope: 'backups', extra: 1 }]) {
      const res = await rebuild(u.asOwner, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
    expect((await t.app.tasks.list({ taskName: REBUILD_INDEX_TASK })).length).toBe(0);

    const a = await rebuild(u.asOwner, { mode: 'sync', scope: 'backups' });
    expect(a.statusCode, a.body).toBe(200);
    expect(a.json()).toMatchObject({ status: 'SUCCESSFUL', result: { users_scanned: 1, missing_in_db: 2, records_created: 2 }, poll: null });
    expect([await rows(u.orgId), await rows(orgB)]).toEqual([2, 0]);
    // Naming their own organization is the same request.
    const again = await rebuild(u.asOwner, { mode: 'audit', scope: 'backups', organization_id: u.orgId });
    expect(again.json()).toMatchObject({ status: 'SUCCESSFUL', result: { users_scanned: 1, missing_in_db: 0 } });

    // B's admin, acting in B by default (their first organization), rebuilds B.
    const b = await rebuild(callerFor(t.app, u.outsider), { mode: 'sync', scope: 'backups' });
    expect(b.json()).toMatchObject({ status: 'SUCCESSFUL', result: { users_scanned: 1, records_created: 2 } });
    expect([await rows(u.orgId), await rows(orgB)]).toEqual([2, 2]);
    const history = await u.asMember('GET', `/api/v1/network-devices/${devices.a}/backups`);
    expect(history.json().stored_backups).toHaveLength(2);
  });

  it('a system administrator rebuilds one organization or every one; an organization id outside the backups scope is a 400', async () => {
    const asAdmin = callerFor(t.app, sysadmin);
    await wipe();
    const one = await rebuild(asAdmin, { mode: 'sync', scope: 'backups', organization_id: orgB });
    expect(one.statusCode, one.body).toBe(200);
    expect(one.json()).toMatchObject({ status: 'SUCCESSFUL', result: { users_scanned: 1, records_created: 2 } });
    expect(one.json().poll).toMatch(/^\/api\/v1\/admin\/tasks\//);
    expect([await rows(u.orgId), await rows(orgB)]).toEqual([0, 2]);

    const all = await rebuild(asAdmin, { mode: 'sync', scope: 'backups' });
    expect(all.json()).toMatchObject({ status: 'SUCCESSFUL', result: { users_scanned: 2, records_created: 2 } });
    expect([await rows(u.orgId), await rows(orgB)]).toEqual([2, 2]);

    for (const body of [
      { mode: 'audit', organization_id: u.orgId },
      { mode: 'audit', scope: 'publishing', organization_id: u.orgId },
      { mode: 'audit', scope: 'backups', organization_id: '' },
    ]) {
      const res = await rebuild(asAdmin, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    const unknown = await rebuild(asAdmin, { mode: 'audit', scope: 'backups', organization_id: 'no-such-org' });
    expect(unknown.statusCode).toBe(404);
  });
});
