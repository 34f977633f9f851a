import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { runCliCaptured } from '../helpers/cli.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable, gitIn } from '../storage/git-helpers.ts';
import { drainPipeline, orgWithUsers } from './helpers.ts';

type Users = Awaited<ReturnType<typeof orgWithUsers>>;
type Row = { id: string; storage_ref: string; sha256: string; size: number; collected_at: string; task_identifier: string; network_device_id: string };
const table = (t: TestApp) => t.app.db.withTables<{ stored_backups: Row & { organization_id: string; location_id: string; stored_at: string } }>();

/** What a version is, whatever row holds it (ids and stored_at are the row's own). */
const versionOf = (b: any) => ({ storage_ref: b.storage_ref, sha256: b.sha256, size: b.size, collected_at: b.collected_at, network_device_id: b.network_device_id });

describe.runIf(gitAvailable()).each(testDialects())('rebuild-index --scope backups on %s', (dialect) => {
  let t: TestApp;
  let u: Users;
  let clock: ManualClock;
  beforeEach(async () => {
    // An hour ahead of the real clock: git commits and fs files carry real times, so however slow the
    // machine, every version is older than the engine's in-flight grace when a rebuild starts.
    clock = new ManualClock(Date.now() + 3_600_000);
    t = await createTestApp({ dialect, clock });
    u = await orgWithUsers(t.app);
  });
  afterEach(async () => t.cleanup());

  const location = async (type: 'git' | 'fs', folder: string) => {
    const r = await u.asOwner('POST', '/api/v1/backup-locations', { name: folder, type, config: { folder } });
    expect(r.statusCode).toBe(201);
    return r.json().id as string;
  };
  const device = async (name: string, locationId: string, group = 'core') => {
    const r = await u.asOwner('POST', '/api/v1/network-devices', { name, address: '192.0.2.1', group, backup_location_id: locationId });
    expect(r.statusCode).toBe(201);
    return r.json().id as string;
  };
  const push = async (deviceId: string, content: string) => {
    clock.advance(1000); // distinct collection times (fs file names, git author dates)
    expect((await u.asOwner('POST', `/api/v1/network-devices/${deviceId}/backups`, content)).statusCode).toBe(202);
    await drainPipeline(t.app);
  };
  const history = async (deviceId: string) => (await u.asMember('GET', `/api/v1/network-devices/${deviceId}/backups?limit=500`)).json().stored_backups as any[];
  const rebuild = (mode: 'audit' | 'sync' | 'clean' | 'full', extra: { dryRun?: boolean; force?: boolean } = {}) => {
    // Past the in-flight grace: versions written "just now" would be left for the next run.
    clock.advance(5000);
    return t.app.indexSync.run({ mode, scope: 'backups', ...extra });
  };

  it('delete every row, rebuild from git and fs, and the history API answers the same versions', { timeout: 120_000 }, async () => {
    const gitLoc = await location('git', 'net');
    const fsLoc = await location('fs', 'files');
    const r1 = await device('r1', gitLoc);
    const r2 = await device('r2', gitLoc, 'edge');
    const s1 = await device('s1', fsLoc);
    for (const v of ['hostname r1\n', 'hostname r1\nntp server 1\n', 'hostname r1\nntp server 2\n']) await push(r1, v);
    for (const v of ['hostname r2\n', 'hostname r2\nbanner x\n']) await push(r2, v);
    for (const v of ['hostname s1\n', 'hostname s1\nvlan 10\n']) await push(s1, v);
    const before = { r1: await history(r1), r2: await history(r2), s1: await history(s1) };
    expect([before.r1.length, before.r2.length, before.s1.length]).toEqual([3, 2, 2]);

    expect((await rebuild('audit')).missing_in_db).toBe(0);
    await table(t).deleteFrom('stored_backups').execute();

    const audit = await rebuild('audit');
    expect(audit).toMatchObject({ users_scanned: 2, files_on_disk: 7, files_in_db: 0, missing_in_db: 7, records_created: 0, deferred: 0 });
    expect(audit.errors).toEqual([]);
    const dry = await rebuild('sync', { dryRun: true });
    expect(dry).toMatchObject({ missing_in_db: 7, records_created: 7 });
    expect(await history(r1)).toEqual([]);

    const sync = await rebuild('sync');
    expect(sync).toMatchObject({ missing_in_db: 7, records_created: 7 });
    const after = { r1: await history(r1), r2: await history(r2), s1: await history(s1) };
    for (const k of ['r1', 'r2', 's1'] as const) expect(after[k].map(versionOf)).toEqual(before[k].map(versionOf));
    // git rows keep the task identifier of their push (the commit's Task-Identifier trailer).
    expect(after.r1.map((b) => b.task_identifier)).toEqual(before.r1.map((b) => b.task_identifier));
    // The rebuilt rows serve downloads and diffs like the originals.
    expect((await u.asMember('GET', `/api/v1/stored-backups/${after.r1[2].id}/download`)).body).toBe('hostname r1\n');
    expect((await u.asMember('GET', `/api/v1/stored-backups/${after.s1[0].id}/diff?against=previous`)).body).toContain('+vlan 10');

    // A second run finds nothing, and adds nothing.
    const again = await rebuild('full', { force: true });
    expect(again).toMatchObject({ files_on_disk: 7, files_in_db: 7, missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0, records_created: 0, records_deleted: 0 });
    expect(again.errors).toEqual([]);
    // The run is recorded as the scope's state.
    expect((await t.app.indexSync.lastRuns('backups')).map((r) => r.mode).sort()).toEqual(['audit', 'full', 'sync']);
  });

  it('orphaned, stale and foreign versions: clean needs force, unknown devices are reported, not indexed', async () => {
    const gitLoc = await location('git', 'net');
    const r1 = await device('r1', gitLoc);
    await push(r1, 'hostname r1\n');
    await push(r1, 'hostname r1\nlogging host 1\n');
    const [newest, oldest] = await history(r1);
    const gitDir = path.join(t.config.backups.root, u.orgId, 'net');

    // An orphan: a row whose version no repository holds. A stale row: the wrong collection time.
    const orphanRef = `main:core/r1@${'ab'.repeat(20)}`;
    await table(t)
      .insertInto('stored_backups')
      .values({ ...versionOf(oldest), id: randomUUID(), organization_id: u.orgId, location_id: gitLoc, storage_ref: orphanRef, stored_at: new Date(clock.now().getTime() - 60_000).toISOString(), task_identifier: randomUUID() })
      .execute();
    await table(t).updateTable('stored_backups').set({ collected_at: '2001-01-01T00:00:00.000Z' }).where('id', '=', oldest.id).execute();

    // Commits another tool made (no trailers): one for r1 (indexed, author date as collection time), one
    // for a device Stormvault does not know (reported), one at a path that is no <group>/<device>.
    const foreign = (file: string, content: string, date: string) => {
      const env = { PATH: process.env.PATH, GIT_DIR: gitDir, HOME: gitDir, GIT_CONFIG_NOSYSTEM: '1', GIT_INDEX_FILE: path.join(gitDir, 'foreign-index'), GIT_AUTHOR_NAME: 'ox', GIT_AUTHOR_EMAIL: 'ox@x', GIT_AUTHOR_DATE: date, GIT_COMMITTER_NAME: 'ox', GIT_COMMITTER_EMAIL: 'ox@x', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z' };
      const git = (args: string[], input?: string) => execFileSync('git', args, { env, input, encoding: 'utf8' }).trim();
      const blob = git(['hash-object', '-w', '--stdin'], content);
      git(['read-tree', 'main']);
      git(['update-index', '--add', '--cacheinfo', `100644,${blob},${file}`]);
      const commit = git(['commit-tree', git(['write-tree']), '-p', 'main', '-m', `update ${file}`]);
      git(['update-ref', 'refs/heads/main', commit]);
      return commit;
    };
    const oxCommit = foreign('core/r1', 'hostname r1 by oxidized\n', '2025-06-01T12:00:00Z');
    foreign('core/unknown', 'hostname unknown\n', '2025-06-01T12:01:00Z');
    foreign('README', 'not a config\n', '2025-06-01T12:02:00Z');
    expect(gitIn(gitDir, 'fsck', '--strict').trim()).toBe('');

    const audit = await rebuild('audit');
    expect(audit).toMatchObject({ files_on_disk: 3, files_in_db: 3, missing_in_db: 1, orphaned_in_db: 1, stale_in_db: 1 });
    expect(audit.errors.map((e) => [e.code, e.path])).toEqual(
      expect.arrayContaining([
        ['unknown_device', `${u.orgId}/net/core/unknown`],
        ['invalid_name', `${u.orgId}/net/README`],
      ]),
    );
    await expect(t.app.indexSync.run({ mode: 'clean', scope: 'backups' })).rejects.toMatchObject({ code: 'invalid_request' });

    const full = await rebuild('full', { force: true });
    expect(full).toMatchObject({ records_created: 1, records_updated: 1, records_deleted: 1 });
    const rows = await history(r1);
    expect(rows.map((b) => b.storage_ref)).not.toContain(orphanRef);
    expect(rows.find((b) => b.id === oldest.id)?.collected_at).toBe(oldest.collected_at);
    const ox = rows.find((b) => b.storage_ref === `main:core/r1@${oxCommit}`);
    expect(ox).toMatchObject({ collected_at: '2025-06-01T12:00:00.000Z', size: 'hostname r1 by oxidized\n'.length });
    expect(ox.task_identifier).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(rows.map((b) => b.id)).toContain(newest.id);
    const clean = await rebuild('audit');
    expect(clean).toMatchObject({ missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0 });
  });

  it('a missing repository with indexed versions: audit reports it, clean and full refuse and change nothing', async () => {
    const gitLoc = await location('git', 'net');
    const r1 = await device('r1', gitLoc);
    await push(r1, 'hostname r1\n');
    const gitDir = path.join(t.config.backups.root, u.orgId, 'net');
    await rename(gitDir, `${gitDir}.away`);
    const audit = await rebuild('audit');
    expect(audit.errors.map((e) => e.code)).toEqual(['location_missing']);
    expect(audit.orphaned_in_db).toBe(0);
    await expect(rebuild('full', { force: true })).rejects.toMatchObject({ code: 'conflict' });
    expect(await history(r1)).toHaveLength(1);
    await rename(`${gitDir}.away`, gitDir);
  });

  it('validates its filter: files-only options are refused, --org narrows to one organization', async () => {
    await location('git', 'net');
    await expect(t.app.indexSync.run({ mode: 'audit', scope: 'backups', userId: 'x' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(t.app.indexSync.run({ mode: 'audit', scope: 'backups', organizationId: 'nope' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(t.app.indexSync.run({ mode: 'audit', scope: 'nothing' })).rejects.toMatchObject({ code: 'invalid_request' });
    expect((await t.app.indexSync.run({ mode: 'audit', scope: 'backups', organizationId: u.orgId })).users_scanned).toBe(1);
  });

  it.runIf(dialect === 'sqlite')('stormvault rebuild-index --scope backups --json', async () => {
    const gitLoc = await location('git', 'net');
    const r1 = await device('r1', gitLoc);
    await push(r1, 'hostname r1\n');
    await table(t).deleteFrom('stored_backups').execute();
    clock.advance(5000);
    const env = { STORMVAULT_DATA_DIR: t.config.dataDir, STORMVAULT_DATABASE_URL: t.config.database.url, STORMVAULT_LOG_LEVEL: 'silent', STORMVAULT_TASKS_BACKEND: 'immediate', STORMVAULT_MIN_FREE_BYTES: '0' };
    // The CLI runs on the real clock: the push's commit must be older than the in-flight grace.
    await new Promise((r) => setTimeout(r, 2100));
    const run = await runCliCaptured(['rebuild-index', '--scope', 'backups', '--mode', 'sync', '--json'], env);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ users_scanned: 1, missing_in_db: 1, records_created: 1, errors: [] });
    expect(await history(r1)).toHaveLength(1);
    const table2 = await runCliCaptured(['rebuild-index', '--scope', 'backups'], env);
    expect(table2.stdout).toMatch(/versions in storage\s+1/);
    expect(table2.stdout).toMatch(/index and storage agree/);
  }, 60_000);
});
