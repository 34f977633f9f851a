import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';
import { FilesService } from '../../src/modules/files/files.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/**
 * A move commits its journal (pending_path) before renaming and clears it with the row update. These
 * tests recreate what a crash leaves at each point and check what the next start makes of it.
 */
describe.each(testDialects())(`${FilesService.name} move journal on %s`, (dialect) => {
  let t: TestApp;
  let alice: TestUser;

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const abs = (p: string) => path.join(t.config.storageRoot, alice.user.id, p);
  const rows = () => t.app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', alice.user.id).orderBy('path').execute();
  const put = (p: string, body: string) => t.app.files.put(alice.user.id, p, Readable.from([Buffer.from(body)]));
  const journal = (from: string, to: string) =>
    t.app.db.updateTable('stored_files').set({ pending_path: to }).where('owner_id', '=', alice.user.id).where('path', '=', from).execute();

  it('a completed move leaves no journal behind', async () => {
    await put('j0/a.txt', 'a');
    await t.app.files.move(alice.user.id, 'j0', 'j0-moved');
    expect((await rows()).filter((r) => r.pending_path !== null)).toEqual([]);
  });

  it('crash after the rename: the next start moves the rows (ids and share links kept)', async () => {
    await put('j1/box/item.txt', 'item');
    const share = await t.app.shares.create(alice.user.id, { path: 'j1/box' });
    const before = new Map((await rows()).map((r) => [r.path, r.id]));
    await journal('j1/box', 'j1/crate');
    await rename(abs('j1/box'), abs('j1/crate')); // the rename happened; the index update did not

    // The next start (a new app on the same database and storage) resolves it before serving.
    const restarted = await createApp(t.config, { logger: createLogger(t.config, process.stderr) });
    try {
      const after = await restarted.db.selectFrom('stored_files').selectAll().where('owner_id', '=', alice.user.id).execute();
      const byPath = new Map(after.map((r) => [r.path, r]));
      expect(byPath.get('j1/crate')!.id).toBe(before.get('j1/box'));
      expect(byPath.get('j1/crate/item.txt')!.id).toBe(before.get('j1/box/item.txt'));
      expect(byPath.get('j1/crate/item.txt')!.parent_path).toBe('j1/crate');
      expect(byPath.has('j1/box')).toBe(false);
      expect(after.filter((r) => r.pending_path !== null)).toEqual([]);
      const opened = await restarted.shares.open(share.token, undefined, 'item.txt');
      expect(opened.kind).toBe('file');
      if (opened.kind === 'file') await opened.file.close();
    } finally {
      await restarted.close();
    }
  });

  it('crash before the rename: the journal entry is dropped and nothing moves', async () => {
    await put('j2/file.txt', 'stay');
    await journal('j2/file.txt', 'j2/elsewhere.txt');
    expect(await t.app.files.recoverInterruptedMoves()).toEqual({ finished: 0, undone: 1 });
    const r = (await rows()).filter((x) => x.path.startsWith('j2'));
    expect(r.map((x) => [x.path, x.pending_path])).toEqual([
      ['j2', null],
      ['j2/file.txt', null],
    ]);
    expect(await readFile(abs('j2/file.txt'), 'utf8')).toBe('stay');
  });

  it('crash after a rename that replaced a file: the replaced row goes, the moved row takes its place', async () => {
    await put('j3/new.txt', 'new');
    await put('j3/old.txt', 'old');
    const movedId = (await rows()).find((r) => r.path === 'j3/new.txt')!.id;
    await journal('j3/new.txt', 'j3/old.txt');
    await rename(abs('j3/new.txt'), abs('j3/old.txt'));
    expect(await t.app.files.recoverInterruptedMoves()).toEqual({ finished: 1, undone: 0 });
    const r = (await rows()).filter((x) => x.path.startsWith('j3/'));
    expect(r.map((x) => [x.path, x.id])).toEqual([['j3/old.txt', movedId]]);
    expect((await t.app.files.meta(alice.user.id, 'j3/old.txt')).size).toBe(3);
  });
});
