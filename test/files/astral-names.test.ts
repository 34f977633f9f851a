import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesService } from '../../src/modules/files/files.service.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/**
 * Folder names with characters above U+FFFF (emoji): JS counts them as two UTF-16 units, SQL substr() as
 * one character. Subtree moves and deletes must still carry every row below the folder.
 */
describe.each(testDialects())(`${FilesService.name} with astral-plane folder names on %s`, (dialect) => {
  let t: TestApp;
  let u: TestUser;
  const put = (p: string, body: string) =>
    t.app.http.inject({ method: 'PUT', url: `/api/v1/files/${encodeURI(p)}`, headers: { ...u.headers, 'content-type': 'application/octet-stream' }, payload: body });
  const indexed = async () =>
    (await t.app.db.selectFrom('stored_files').select('path').where('owner_id', '=', u.user.id).orderBy('path').execute()).map((r) => r.path);

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    u = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('moves and deletes a folder named with an emoji together with everything below it', async () => {
    expect((await put('📁x/a.txt', 'a')).statusCode).toBe(201);
    expect((await put('📁x/sub/b.txt', 'b')).statusCode).toBe(201);

    const move = await t.app.http.inject({ method: 'POST', url: '/api/v1/move', headers: u.headers, payload: { from: '📁x', to: '🗂y' } });
    expect(move.statusCode).toBe(200);
    expect(await indexed()).toEqual(['🗂y', '🗂y/a.txt', '🗂y/sub', '🗂y/sub/b.txt']);
    const got = await t.app.http.inject({ method: 'GET', url: `/api/v1/files/${encodeURI('🗂y/sub/b.txt')}`, headers: u.headers });
    expect(got.body).toBe('b');

    const del = await t.app.http.inject({ method: 'DELETE', url: `/api/v1/files/${encodeURI('🗂y')}?recursive=true`, headers: u.headers });
    expect(del.statusCode).toBe(204);
    expect(await indexed()).toEqual([]);
  });
});
