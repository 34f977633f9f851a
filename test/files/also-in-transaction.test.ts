import { access } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbOrTx } from '../../src/db/schema.ts';
import { FilesService, type AlsoInTransaction } from '../../src/modules/files/files.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/**
 * Another module's index writes (WebDAV's dead properties and locks, issue 13) passed as
 * `alsoInTransaction` commit with the files index change, or roll back with it.
 */
describe.each(testDialects())(`${FilesService.name} alsoInTransaction on %s`, (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const uid = () => alice.user.id;
  const put = (p: string, body = p) => t.app.files.put(uid(), p, Readable.from([Buffer.from(body)]));
  const onDisk = (p: string) => access(path.join(t.config.storageRoot, uid(), p)).then(() => true, () => false);
  const indexed = async (p: string) => (await t.app.db.selectFrom('stored_files').select('id').where('owner_id', '=', uid()).where('path', '=', p).executeTakeFirst()) !== undefined;
  const marks = async () =>
    (await t.app.db.selectFrom('dav_properties').select('path').where('owner_id', '=', uid()).where('namespace', '=', 'urn:test').orderBy('path').execute()).map((r) => r.path);
  /** Writes a marker row on the handle it is given, then fails if asked to. */
  const hook = (mark: string, fail: boolean): AlsoInTransaction => async (tx: DbOrTx) => {
    expect(tx.isTransaction).toBe(true);
    await tx.insertInto('dav_properties').values({ owner_id: uid(), path: mark, namespace: 'urn:test', name: 'm', value_xml: '' }).execute();
    if (fail) throw new Error('the other module failed');
  };

  it('delete: a failing hook keeps the file and its row; a succeeding one commits with the deletion', async () => {
    await put('d/file.txt');
    await expect(t.app.files.delete(uid(), 'd/file.txt', { alsoInTransaction: hook('del-failed', true) })).rejects.toThrow('the other module failed');
    expect([await indexed('d/file.txt'), await onDisk('d/file.txt')]).toEqual([true, true]);
    await t.app.files.delete(uid(), 'd/file.txt', { alsoInTransaction: hook('del-ok', false) });
    expect([await indexed('d/file.txt'), await onDisk('d/file.txt')]).toEqual([false, false]);
    expect(await marks()).toEqual(['del-ok']);
  });

  it('copy: a failing hook leaves no copy on disk or in the index', async () => {
    await put('c/src.txt');
    await expect(t.app.files.copy(uid(), 'c/src.txt', 'c/dst.txt', { alsoInTransaction: hook('copy-failed', true) })).rejects.toThrow('the other module failed');
    expect([await indexed('c/dst.txt'), await onDisk('c/dst.txt')]).toEqual([false, false]);
    await t.app.files.copy(uid(), 'c/src.txt', 'c/dst.txt', { alsoInTransaction: hook('copy-ok', false) });
    expect([await indexed('c/dst.txt'), await onDisk('c/dst.txt')]).toEqual([true, true]);
    expect(await marks()).toEqual(['copy-ok', 'del-ok']);
  });

  it('mkdir: a failing hook leaves no folder; move: the hook commits with the rows that follow the rename', async () => {
    await expect(t.app.files.mkdir(uid(), 'm/new', { alsoInTransaction: hook('mkdir-failed', true) })).rejects.toThrow('the other module failed');
    expect([await indexed('m/new'), await onDisk('m/new'), await onDisk('m')]).toEqual([false, false, false]);
    await put('mv/a.txt');
    await t.app.files.move(uid(), 'mv', 'mv2', { alsoInTransaction: hook('move-ok', false) });
    expect([await indexed('mv2/a.txt'), await indexed('mv/a.txt')]).toEqual([true, false]);
    expect(await marks()).toEqual(['copy-ok', 'del-ok', 'move-ok']);
  });
});
