import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { LeaseLocks } from '../../src/locks/lease-lock.ts';
import { LocksRepository } from '../../src/locks/locks.repository.ts';
import { ReconcileRunsRepository } from '../../src/storage/reconcile/reconcile-runs.repository.ts';
import { IndexSyncRepository } from '../../src/modules/index-sync/index-sync.repository.ts';
import { IndexSyncService, type Discrepancy } from '../../src/modules/index-sync/index-sync.service.ts';
import { FsBlobStore, nodeScanFs, type ScanFs } from '../../src/storage/fs-blob-store.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';
import { ageTree, exists, insertRow, OLD, pathsOf, rowsOf, userDir, writeTree } from './helpers.ts';

const eacces = (p: string, syscall: string) => Object.assign(new Error(`EACCES: permission denied, ${syscall} '${p}'`), { code: 'EACCES' });

describe.each(testDialects())(`${IndexSyncService.name} on %s`, (dialect) => {
  let t: TestApp;
  let app: App;
  let userId: string;

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    app = t.app;
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  // Each test gets a fresh user (its own folder and rows); the storage root is shared.
  const newUser = async () => (userId = (await createUserWithKey(app)).user.id);

  /** A service whose disk reads go through `fs` (to inject failures or change the tree mid-scan). */
  const serviceWith = (fs: ScanFs) => new IndexSyncService(new IndexSyncRepository(app.db), new FsBlobStore(app.config.storageRoot, { scanFs: fs }), app.clock, app.config.storageRoot, new LeaseLocks(new LocksRepository(app.db), app.clock));

  it('audit reports files and folders on disk without rows, and changes nothing', async () => {
    await newUser();
    await writeTree(app, userId, { 'a.txt': 'hello', 'docs/b.md': '# b', 'empty/': '' });
    const sut = app.indexSync;
    const stats = await sut.run({ mode: 'audit', userId });
    expect(stats).toMatchObject({
      users_scanned: 1,
      files_on_disk: 2,
      dirs_on_disk: 2,
      files_in_db: 0,
      missing_in_db: 4,
      orphaned_in_db: 0,
      stale_in_db: 0,
      records_created: 0,
      records_updated: 0,
      records_deleted: 0,
      records_skipped: 0,
      errors: [],
    });
    expect(stats.duration_ms).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
    expect(await pathsOf(app, userId)).toEqual([]);
  });

  it('sync adds the missing rows the way the files API would, and a second sync does nothing', async () => {
    await newUser();
    await writeTree(app, userId, { 'a.txt': 'hello', 'docs/b.md': '# b', 'docs/deeper/c.png': 'png', 'empty/': '' });
    const first = await app.indexSync.run({ mode: 'sync', userId });
    expect(first).toMatchObject({ missing_in_db: 6, records_created: 6, files_on_disk: 3, dirs_on_disk: 3 });

    const rows = await rowsOf(app, userId);
    expect(rows.map((r) => r.path)).toEqual(['a.txt', 'docs', 'docs/b.md', 'docs/deeper', 'docs/deeper/c.png', 'empty']);
    const a = rows.find((r) => r.path === 'a.txt')!;
    expect(a).toMatchObject({ name: 'a.txt', parent_path: '', size: 5, is_directory: 0, content_type: 'text/plain; charset=utf-8', sha256: null, modified_at: OLD.toISOString() });
    expect(rows.find((r) => r.path === 'docs/deeper')).toMatchObject({ parent_path: 'docs', is_directory: 1, content_type: 'inode/directory' });
    expect(rows.find((r) => r.path === 'docs/deeper/c.png')).toMatchObject({ parent_path: 'docs/deeper', content_type: 'image/png' });

    const second = await app.indexSync.run({ mode: 'sync', userId });
    expect(second).toMatchObject({ files_on_disk: 3, files_in_db: 3, missing_in_db: 0, stale_in_db: 0, orphaned_in_db: 0, records_created: 0, records_updated: 0 });
  });

  it('finds stale rows (size, mtime, type) and sync makes the disk win, clearing the stale sha256', async () => {
    await newUser();
    await writeTree(app, userId, { 'a.txt': 'hello', 'b.txt': 'same', 'c': 'x' });
    await app.indexSync.run({ mode: 'sync', userId });
    await app.db.updateTable('stored_files').set({ sha256: 'f'.repeat(64) }).where('owner_id', '=', userId).execute();
    // a.txt grows, b.txt is touched, c became a folder.
    await writeFile(path.join(userDir(app, userId), 'a.txt'), 'hello world');
    await rm(path.join(userDir(app, userId), 'c'));
    await mkdir(path.join(userDir(app, userId), 'c'));
    await ageTree(userDir(app, userId), new Date(OLD.getTime() + 60_000));

    const seen: Discrepancy[] = [];
    const audit = await app.indexSync.run({ mode: 'audit', userId }, { onDiscrepancy: (d) => seen.push(d) });
    expect(audit).toMatchObject({ stale_in_db: 3, missing_in_db: 0, orphaned_in_db: 0, records_updated: 0 });
    expect(seen.find((d) => d.path === `${userId}/a.txt`)).toMatchObject({ kind: 'stale_in_db', fields: ['size', 'mtime'], action: 'reported' });
    expect(seen.find((d) => d.path === `${userId}/c`)).toMatchObject({ fields: ['is_directory'] });

    const dry = await app.indexSync.run({ mode: 'sync', userId, dryRun: true });
    expect(dry).toMatchObject({ stale_in_db: 3, records_updated: 3 });
    expect((await rowsOf(app, userId)).find((r) => r.path === 'a.txt')!.size).toBe(5);

    const sync = await app.indexSync.run({ mode: 'sync', userId });
    expect(sync).toMatchObject({ stale_in_db: 3, records_updated: 3 });
    const rows = await rowsOf(app, userId);
    expect(rows.find((r) => r.path === 'a.txt')).toMatchObject({ size: 11, sha256: null });
    expect(rows.find((r) => r.path === 'c')).toMatchObject({ is_directory: 1, content_type: 'inode/directory' });
    expect((await app.indexSync.run({ mode: 'audit', userId })).stale_in_db).toBe(0);
  });

  it('clean needs force, then deletes orphaned rows; dry run counts the same and deletes nothing', async () => {
    await newUser();
    await writeTree(app, userId, { 'kept.txt': 'k' });
    await app.indexSync.run({ mode: 'sync', userId });
    await insertRow(app, userId, 'gone.txt', { size: 3 });
    await insertRow(app, userId, 'gone-dir', { isDirectory: true });
    await insertRow(app, userId, 'gone-dir/inner.txt');
    // A row whose parent folder has no row and no folder at all.
    await insertRow(app, userId, 'x/y/z.txt');

    await expect(app.indexSync.run({ mode: 'clean', userId })).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/requires force/) });
    await expect(app.indexSync.run({ mode: 'full', userId, dryRun: true })).rejects.toMatchObject({ code: 'invalid_request' });
    expect(await pathsOf(app, userId)).toHaveLength(5);

    const audit = await app.indexSync.run({ mode: 'audit', userId });
    expect(audit).toMatchObject({ orphaned_in_db: 4, files_in_db: 4, files_on_disk: 1 });
    const dry = await app.indexSync.run({ mode: 'clean', userId, force: true, dryRun: true });
    expect(dry).toMatchObject({ orphaned_in_db: 4, records_deleted: 4, records_skipped: 0 });
    expect(await pathsOf(app, userId)).toHaveLength(5);

    const clean = await app.indexSync.run({ mode: 'clean', userId, force: true });
    expect(clean).toMatchObject({ orphaned_in_db: 4, records_deleted: 4 });
    expect(await pathsOf(app, userId)).toEqual(['kept.txt']);
  });

  it('full = sync then clean, and a second full reports zero work', async () => {
    await newUser();
    await writeTree(app, userId, { 'new.txt': 'n', 'd/new2.txt': 'n2' });
    await insertRow(app, userId, 'old.txt');
    const full = await app.indexSync.run({ mode: 'full', userId, force: true });
    expect(full).toMatchObject({ missing_in_db: 3, orphaned_in_db: 1, records_created: 3, records_deleted: 1 });
    expect(await pathsOf(app, userId)).toEqual(['d', 'd/new2.txt', 'new.txt']);
    const again = await app.indexSync.run({ mode: 'full', userId, force: true });
    expect(again).toMatchObject({ missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0, records_created: 0, records_updated: 0, records_deleted: 0, records_skipped: 0 });
  });

  it('never deletes an orphaned row an active share link points to: skipped and counted', async () => {
    await newUser();
    await mkdir(userDir(app, userId), { recursive: true });
    const shared = await insertRow(app, userId, 'shared.txt');
    const expired = await insertRow(app, userId, 'expired-link.txt');
    const revoked = await insertRow(app, userId, 'revoked-link.txt');
    const link = (fileId: number, extra: { expires_at?: string; revoked_at?: string }) =>
      app.db
        .insertInto('share_links')
        .values({ id: randomBytes(8).toString('hex'), owner_id: userId, file_id: fileId, token_hash: randomBytes(16).toString('hex'), password_hash: null, expires_at: extra.expires_at ?? null, max_downloads: null, download_count: 0, created_at: OLD.toISOString(), revoked_at: extra.revoked_at ?? null })
        .execute();
    await link(shared, {});
    await link(expired, { expires_at: '2020-01-01T00:00:00.000Z' });
    await link(revoked, { revoked_at: OLD.toISOString() });

    const dry = await app.indexSync.run({ mode: 'clean', userId, force: true, dryRun: true });
    expect(dry).toMatchObject({ orphaned_in_db: 3, records_deleted: 2, records_skipped: 1 });
    const clean = await app.indexSync.run({ mode: 'clean', userId, force: true });
    expect(clean).toMatchObject({ orphaned_in_db: 3, records_deleted: 2, records_skipped: 1 });
    expect(await pathsOf(app, userId)).toEqual(['shared.txt']);
    // Still an orphan, still protected: reported and skipped again, nothing else to do.
    expect(await app.indexSync.run({ mode: 'full', userId, force: true })).toMatchObject({ orphaned_in_db: 1, records_skipped: 1, records_deleted: 0, records_created: 0 });
  });

  it('skips upload temp files and never reports or deletes what appears during the scan', async () => {
    await newUser();
    const root = userDir(app, userId);
    await writeTree(app, userId, { 'a/one.txt': '1', 'b/two.txt': '2', 'c/three.txt': '3', '.sv-tmp-0123456789abcdef': 'partial upload' });
    await app.indexSync.run({ mode: 'sync', userId });
    expect(await pathsOf(app, userId)).not.toContain('.sv-tmp-0123456789abcdef');

    // While the scan lists folder "c" (after "a" was listed): an upload lands in "a" (file, then its row),
    // and a file appears in "c" itself whose row is not written yet.
    const racing: ScanFs = {
      ...nodeScanFs,
      readdir: async (dir) => {
        if (dir === path.join(root, 'c')) {
          await writeFile(path.join(root, 'a', 'uploaded.txt'), 'late');
          await insertRow(app, userId, 'a/uploaded.txt', { size: 4, updatedAt: new Date().toISOString() });
          await writeFile(path.join(root, 'c', 'appearing.txt'), 'row not yet written');
        }
        return nodeScanFs.readdir(dir);
      },
    };
    const sut = serviceWith(racing);
    const clean = await sut.run({ mode: 'full', userId, force: true });
    expect(clean).toMatchObject({ orphaned_in_db: 0, missing_in_db: 0, records_deleted: 0, records_created: 0 });
    expect(await pathsOf(app, userId)).toContain('a/uploaded.txt');
    expect(await pathsOf(app, userId)).not.toContain('c/appearing.txt');
  });

  it('counts what was written during or just before the scan as deferred, and finds it on the next run (issue 8)', async () => {
    await newUser();
    await writeTree(app, userId, { 'old.txt': 'old' });
    // Copied in a moment ago (mtime now): an audit right away must not say a silent "0 missing".
    await writeFile(path.join(userDir(app, userId), 'just-copied.txt'), 'new');
    const first = await app.indexSync.run({ mode: 'audit', userId });
    expect(first).toMatchObject({ missing_in_db: 1, deferred: 1 });
    await ageTree(userDir(app, userId));
    expect(await app.indexSync.run({ mode: 'audit', userId })).toMatchObject({ missing_in_db: 2, deferred: 0 });
  });

  it('counts upload temp files and, when asked, removes those older than the longest upload (issue 12)', async () => {
    await newUser();
    await writeTree(app, userId, { 'docs/kept.txt': 'k', 'docs/.sv-tmp-00000000000000000000aaaa': 'killed mid-upload', '.sv-tmp-00000000000000000000bbbb': 'another' });
    const root = userDir(app, userId);
    // One temp file is being written right now: never removed, however the sweep is asked.
    await writeFile(path.join(root, '.sv-tmp-00000000000000000000cccc'), 'in flight');
    const counted = await app.indexSync.run({ mode: 'audit', userId });
    expect(counted).toMatchObject({ temp_files: 3, temp_files_removed: 0, missing_in_db: 2, errors: [] });
    const dry = await app.indexSync.run({ mode: 'audit', userId, sweepTemps: true, dryRun: true });
    expect(dry).toMatchObject({ temp_files: 3, temp_files_removed: 0 });
    const swept = await app.indexSync.run({ mode: 'audit', userId, sweepTemps: true });
    expect(swept).toMatchObject({ temp_files: 3, temp_files_removed: 2 });
    expect(await exists(path.join(root, 'docs', '.sv-tmp-00000000000000000000aaaa'))).toBe(false);
    expect(await exists(path.join(root, '.sv-tmp-00000000000000000000bbbb'))).toBe(false);
    expect(await exists(path.join(root, '.sv-tmp-00000000000000000000cccc'))).toBe(true);
    expect(await exists(path.join(root, 'docs', 'kept.txt'))).toBe(true);
    expect(await app.indexSync.run({ mode: 'audit', userId })).toMatchObject({ temp_files: 1 });
  });

  it('records the last whole-scope run in the database, where every process reads it (issue 12)', async () => {
    await newUser();
    await writeTree(app, userId, { 'r.txt': 'r' });
    const lastAudit = async (sut: IndexSyncService) => (await sut.lastRuns('files')).find((r) => r.mode === 'audit');
    const before = await lastAudit(app.indexSync);
    await app.indexSync.run({ mode: 'audit', userId }); // filtered: not the scope's state, not recorded
    expect(await lastAudit(app.indexSync)).toEqual(before);

    const startedAt = new Date().toISOString();
    const stats = await app.indexSync.run({ mode: 'audit' });
    // Another process: its own service over the same database.
    const elsewhere = new IndexSyncService(new IndexSyncRepository(app.db), new FsBlobStore(app.config.storageRoot), app.clock, app.config.storageRoot, new LeaseLocks(new LocksRepository(app.db), app.clock), {
      runs: new ReconcileRunsRepository(app.db),
    });
    const seen = await lastAudit(elsewhere);
    expect(seen).toMatchObject({ scope: 'files', mode: 'audit', dryRun: false, description: expect.stringMatching(/^audit on .* pid \d+$/) });
    expect(seen!.stats).toMatchObject({ files_on_disk: stats.files_on_disk, missing_in_db: stats.missing_in_db, users_scanned: stats.users_scanned });
    expect(seen!.startedAt >= startedAt).toBe(true);
  });

  it('a row whose file was moved during the scan is not an orphan', async () => {
    await newUser();
    const root = userDir(app, userId);
    await writeTree(app, userId, { 'a/moved.txt': 'm', 'z/': '' });
    await app.indexSync.run({ mode: 'sync', userId });
    // The files API moves a/moved.txt to z/moved.txt between our listing of "a" and the row read.
    const racing: ScanFs = {
      ...nodeScanFs,
      readdir: async (dir) => {
        const listing = await nodeScanFs.readdir(dir);
        if (dir === path.join(root, 'a')) {
          await rm(path.join(root, 'a', 'moved.txt'));
          await writeFile(path.join(root, 'z', 'moved.txt'), 'm');
          await app.db.updateTable('stored_files').set({ path: 'z/moved.txt', parent_path: 'z', updated_at: new Date().toISOString() }).where('owner_id', '=', userId).where('path', '=', 'a/moved.txt').execute();
          return listing.filter((d) => d.name !== 'moved.txt');
        }
        return listing;
      },
    };
    const stats = await serviceWith(racing).run({ mode: 'full', userId, force: true });
    expect(stats).toMatchObject({ orphaned_in_db: 0, records_deleted: 0 });
    expect(await pathsOf(app, userId)).toContain('z/moved.txt');
  });

  it('leaves a row alone while the files API moves it (its move journal, pending_path, is set)', async () => {
    await newUser();
    const root = userDir(app, userId);
    await writeTree(app, userId, { 'from.txt': 'f', 'to-dir/': '' });
    await app.indexSync.run({ mode: 'sync', userId });
    // The move's journal is committed and the rename done; the row update has not happened yet.
    await app.db.updateTable('stored_files').set({ pending_path: 'to-dir/to.txt' }).where('owner_id', '=', userId).where('path', '=', 'from.txt').execute();
    await rm(path.join(root, 'from.txt'));
    await writeFile(path.join(root, 'to-dir', 'to.txt'), 'f');
    await ageTree(root);
    const stats = await app.indexSync.run({ mode: 'full', userId, force: true });
    expect(stats).toMatchObject({ orphaned_in_db: 0, missing_in_db: 0, records_deleted: 0, records_created: 0 });
    expect(await pathsOf(app, userId)).toEqual(['from.txt', 'to-dir']);
  });

  it('refuses clean/full when the storage root or a user root is missing; audit reports it', async () => {
    await newUser();
    await writeTree(app, userId, { 'f.txt': 'f' });
    await app.indexSync.run({ mode: 'sync', userId });
    // The user's folder disappears (volume not mounted): the index must survive.
    await rm(userDir(app, userId), { recursive: true });
    await expect(app.indexSync.run({ mode: 'clean', userId, force: true })).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/mounted/) });
    await expect(app.indexSync.run({ mode: 'full', force: true })).rejects.toMatchObject({ code: 'conflict' });
    expect(await pathsOf(app, userId)).toEqual(['f.txt']);
    const audit = await app.indexSync.run({ mode: 'audit', userId });
    expect(audit.orphaned_in_db).toBe(0);
    expect(audit.errors).toEqual([expect.objectContaining({ path: userId, code: 'user_root_missing' })]);

    const elsewhere = new IndexSyncService(new IndexSyncRepository(app.db), new FsBlobStore(path.join(t.dir, 'not-mounted')), app.clock, path.join(t.dir, 'not-mounted'), new LeaseLocks(new LocksRepository(app.db), app.clock));
    await expect(elsewhere.run({ mode: 'full', force: true })).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/storage root .* missing/) });
    const rootAudit = await elsewhere.run({ mode: 'audit' });
    expect(rootAudit.errors).toEqual([expect.objectContaining({ code: 'storage_root_missing' })]);
    expect(await pathsOf(app, userId)).toEqual(['f.txt']);
  });

  it('treats an unreadable folder or file (EACCES, injected: tests run as root) as an error, never as orphans', async () => {
    await newUser();
    const root = userDir(app, userId);
    await writeTree(app, userId, { 'locked/secret.txt': 's', 'locked/sub/deep.txt': 'd', 'open/x.txt': 'x', 'open/unstat.txt': 'u' });
    await app.indexSync.run({ mode: 'sync', userId });
    const denied: ScanFs = {
      ...nodeScanFs,
      readdir: async (dir) => {
        if (dir === path.join(root, 'locked')) throw eacces(dir, 'scandir');
        return nodeScanFs.readdir(dir);
      },
      lstat: (file) => {
        if (file === path.join(root, 'open', 'unstat.txt')) throw eacces(file, 'lstat');
        return nodeScanFs.lstat(file);
      },
    };
    const stats = await serviceWith(denied).run({ mode: 'full', userId, force: true });
    expect(stats).toMatchObject({ orphaned_in_db: 0, records_deleted: 0, missing_in_db: 0 });
    expect(stats.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: `${userId}/locked`, code: 'EACCES' }),
        expect.objectContaining({ path: `${userId}/open/unstat.txt`, code: 'EACCES' }),
      ]),
    );
    expect(await pathsOf(app, userId)).toEqual(['locked', 'locked/secret.txt', 'locked/sub', 'locked/sub/deep.txt', 'open', 'open/unstat.txt', 'open/x.txt']);
  });

  it('reports symlinks without following them and skips sockets and FIFOs', async () => {
    await newUser();
    const root = userDir(app, userId);
    const outside = path.join(t.dir, `outside-${userId}`);
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'target.txt'), 'not yours');
    await writeTree(app, userId, { 'real.txt': 'r' });
    await symlink(outside, path.join(root, 'link-dir'));
    await symlink(path.join(outside, 'target.txt'), path.join(root, 'link-file.txt'));
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(path.join(root, 'sock'), resolve));
    try {
      const stats = await app.indexSync.run({ mode: 'sync', userId });
      expect(stats).toMatchObject({ files_on_disk: 1, dirs_on_disk: 0, records_created: 1 });
      expect(stats.errors.map((e) => [e.path, e.code]).sort()).toEqual([
        [`${userId}/link-dir`, 'symlink'],
        [`${userId}/link-file.txt`, 'symlink'],
      ]);
      expect(await pathsOf(app, userId)).toEqual(['real.txt']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('matches NFD names on disk to NFC rows, indexes them as NFC, reports invalid UTF-8 names', async () => {
    await newUser();
    const root = userDir(app, userId);
    const nfd = 'cafe\u0301.txt';
    const nfc = 'caf\u00e9.txt';
    await writeTree(app, userId, { [nfd]: 'coffee', ['Mu\u0308nchen/a.txt']: 'a' });
    const badName = Buffer.from([...Buffer.from(root + '/'), 0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]);
    await writeFile(badName, 'bad name');
    await utimes(badName, OLD, OLD);
    await utimes(root, OLD, OLD);
    await insertRow(app, userId, nfc, { size: 6, contentType: 'text/plain; charset=utf-8' });

    const stats = await app.indexSync.run({ mode: 'sync', userId });
    expect(stats).toMatchObject({ missing_in_db: 2, stale_in_db: 0, orphaned_in_db: 0 });
    expect(stats.errors).toEqual([expect.objectContaining({ code: 'invalid_utf8', message: expect.stringContaining('626164fffe2e747874') })]);
    expect(await pathsOf(app, userId)).toEqual(['M\u00fcnchen', 'M\u00fcnchen/a.txt', nfc]);
  });

  it('handles deep nesting, empty folders and refuses what the files API could not address', async () => {
    await newUser();
    const root = userDir(app, userId);
    const ok = Array.from({ length: 64 }, (_, i) => `d${i}`).join('/');
    const tooDeep = Array.from({ length: 70 }, (_, i) => `d${i}`).join('/');
    await writeTree(app, userId, { [`${ok}/leaf.txt`]: 'deep', [`${tooDeep}/`]: '', 'empty/': '', 'empty2/nested-empty/': '' });
    const stats = await app.indexSync.run({ mode: 'sync', userId });
    // d0..d63 are indexable (64 levels), leaf.txt at depth 65 is not, nor is d64.
    expect(stats.errors.map((e) => e.code).sort()).toEqual(['too_deep', 'too_deep']);
    expect(stats).toMatchObject({ dirs_on_disk: 64 + 3, files_on_disk: 0, records_created: 67 });
    const paths = await pathsOf(app, userId);
    expect(paths).toContain(ok);
    expect(paths).toContain('empty2/nested-empty');
    expect((await app.indexSync.run({ mode: 'sync', userId })).records_created).toBe(0);
    void root;
  });

  it('a user filter scans only that user; an unknown user id is a clear error', async () => {
    const other = (await createUserWithKey(app)).user.id;
    await writeTree(app, other, { 'theirs.txt': 't' });
    await newUser();
    await writeTree(app, userId, { 'mine.txt': 'm', 'sub/inner.txt': 'i', 'sub2/x.txt': 'x' });
    const stats = await app.indexSync.run({ mode: 'sync', userId });
    expect(stats).toMatchObject({ users_scanned: 1, records_created: 5 });
    expect(await pathsOf(app, other)).toEqual([]);

    await expect(app.indexSync.run({ mode: 'audit', userId: 'no-such-user' })).rejects.toMatchObject({ code: 'not_found', message: expect.stringMatching(/unknown user id/) });
    await expect(app.indexSync.run({ mode: 'audit', path: 'sub' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(app.indexSync.run({ mode: 'audit', userId, path: '../escape' })).rejects.toMatchObject({ code: 'invalid_path' });
    await expect(app.indexSync.run({ mode: 'rebuild' as never })).rejects.toMatchObject({ code: 'invalid_request' });

    // A path filter: only that folder (and the folder's own row).
    await insertRow(app, userId, 'sub/gone.txt');
    await insertRow(app, userId, 'sub2/gone.txt');
    await writeTree(app, userId, { 'sub/new.txt': 'n' });
    const scoped = await app.indexSync.run({ mode: 'audit', userId, path: 'sub' });
    expect(scoped).toMatchObject({ files_on_disk: 2, dirs_on_disk: 1, missing_in_db: 1, orphaned_in_db: 1, files_in_db: 2 });
  });

  it('lets only one reconciliation run at a time, across processes (the lock lives in the database)', async () => {
    await newUser();
    await writeTree(app, userId, { 'a/1.txt': '1', 'b/2.txt': '2' });
    const root = userDir(app, userId);
    let second: Promise<unknown> | undefined;
    const slow: ScanFs = {
      ...nodeScanFs,
      readdir: async (dir) => {
        if (dir === path.join(root, 'a') && !second) {
          second = app.indexSync.run({ mode: 'audit', userId }).catch((err) => err);
        }
        if (second && dir === path.join(root, 'a')) await second;
        return nodeScanFs.readdir(dir);
      },
    };
    await serviceWith(slow).run({ mode: 'sync', userId });
    expect(await second).toMatchObject({ code: 'locked', message: expect.stringMatching(/another index reconciliation is running \(sync on .* pid \d+/) });

    // Another process holds the lock (a row with a live lease): refused. Its lease expires: taken over.
    const repo = new LocksRepository(app.db);
    const now = Date.now();
    expect(await repo.tryAcquire('index_sync', 'other-process', 'full on host-b pid 1', new Date(now).toISOString(), new Date(now + 60_000).toISOString())).toBe(true);
    await expect(app.indexSync.run({ mode: 'audit', userId })).rejects.toMatchObject({ code: 'locked', message: expect.stringMatching(/host-b/) });
    await app.db.updateTable('locks').set({ expires_at: new Date(now - 1000).toISOString() }).execute();
    expect((await app.indexSync.run({ mode: 'audit', userId })).errors).toEqual([]);
    expect(await app.db.selectFrom('locks').selectAll().execute()).toEqual([]);
  });
});

// One 100,000-entry folder on disk, shared by the dialects: creating it is most of this test's time. Each
// dialect's user root is a symlink to it (roots may be symlinks, e.g. a user on another volume).
describe('index sync of a folder with 100,000 entries', () => {
  let shared: string;
  beforeAll(async () => {
    shared = await mkdtemp(path.join(tmpdir(), 'stormvault-100k-'));
    const big = path.join(shared, 'big');
    await mkdir(big);
    // touch is far faster than 100,000 writeFile calls; -d sets an mtime long before the run.
    execFileSync('sh', ['-c', `cd "${big}" && seq -f 'f%06g.dat' 0 99999 | xargs touch -d @${OLD.getTime() / 1000}`]);
    await utimes(big, OLD, OLD);
  }, 60_000);
  afterAll(async () => {
    if (shared) await rm(shared, { recursive: true, force: true });
  });

  describe.each(testDialects())('on %s', (dialect) => {
    let t: TestApp;
    afterEach(async () => {
      await t?.cleanup();
    });

    it('syncs it and re-audits it as in sync', async () => {
      t = await createTestApp({ dialect });
      const userId = (await createUserWithKey(t.app)).user.id;
      await symlink(shared, userDir(t.app, userId));
      const sync = await t.app.indexSync.run({ mode: 'sync', userId });
      expect(sync).toMatchObject({ files_on_disk: 100_000, dirs_on_disk: 1, records_created: 100_001, errors: [] });
      const audit = await t.app.indexSync.run({ mode: 'audit', userId });
      expect(audit).toMatchObject({ files_on_disk: 100_000, files_in_db: 100_000, missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0 });
    }, 60_000);
  });
});
