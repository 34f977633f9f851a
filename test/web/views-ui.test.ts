import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainPipeline } from '../backups/helpers.ts';
import { conflictByTwoDevices } from './fixtures.ts';
import { startFakeDevice } from '../collect/fake-device.ts';
import { FIXTURES } from '../collect/transcripts.ts';
import { BROWSER_POLL, browserOrSkip, buildWebInto, removeDir, screenshotDir } from '../helpers/browser.ts';
import { createUserWithKey, createTestApp, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { startS3rver, type S3rverHandle } from '../publishing/s3rver.ts';

/**
 * Issue 14, "Done means", the other views in a real Chromium (one server, one browser for the file): move
 * a task across the board (and a forbidden move refused with the server's reason), resolve a conflict two
 * devices made over the API, a network device's diff, a site switched to fallback with the manifest's URLs
 * changing, and a member who finds no admin view and gets 403 from its API.
 */
const browser = await browserOrSkip();

describe.skipIf(!browser)('web UI: tasks, conflicts, backups, publishing, admin (Chromium)', () => {
  let t: TestApp;
  let s3: S3rverHandle;
  let base: string;
  let webDir: string;
  let context: BrowserContext;
  let page: Page;
  let root: TestUser;
  let mia: TestUser;
  let orgId: string;
  let shot: (page: Page, name: string) => Promise<void>;
  const password = 'a long enough password';

  const as = (user: TestUser) => (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...user.headers, 'x-organization': orgId, ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) });
  const signIn = async (username: string) => {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  };
  const go = async (hash: string) => {
    await page.evaluate((h) => (location.hash = h), hash);
  };

  beforeAll(async () => {
    webDir = await mkdtemp(path.join(tmpdir(), 'sv-web-e2e-'));
    s3 = await startS3rver();
    t = await createTestApp({
      env: { STORMVAULT_OUTBOUND_ALLOW: '127.0.0.1', STORMVAULT_PORT: '0', STORMVAULT_HOST: '127.0.0.1', STORMVAULT_PUBLISH_UPLOAD_BACKOFF_MS: '0' },
      appOptions: { webRoot: await buildWebInto(webDir), publishing: { openBucket: s3.openBucket, probeUrl: async () => 200 } },
    });
    base = await t.app.listen();
    root = await createUserWithKey(t.app, { username: 'root', password, admin: true });
    mia = await createUserWithKey(t.app, { username: 'mia', password });
    orgId = (await t.app.organizations.listForUser(root.user.id))[0]!.organization.id;
    await t.app.organizations.setMember({ organizationId: orgId, userId: root.user.id, role: 'admin' }, 'mia', 'member');
    ({ shot } = await screenshotDir('views'));
    context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    await page.goto(base);
    await signIn('root');
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await t?.cleanup();
    await s3?.stop();
    if (webDir) await removeDir(webDir);
  });

  it('moves a task across the board; a forbidden move is refused with the reason', async () => {
    const api = as(root);
    const open = (await api('POST', '/api/v1/tasks', { title: 'Write the runbook', status: 'todo', priority: 'high', tags: ['ops'] })).json();
    const finished = (await api('POST', '/api/v1/tasks', { title: 'Ship 1.0', status: 'done', priority: 'low', tags: [] })).json();
    await go('#/tasks');
    const card = (id: string) => page.locator(`.task-card[data-task-id="${id}"]`);
    await card(open.id).waitFor();
    await shot(page, 'tasks-board');
    await card(open.id).dragTo(page.locator('.column[data-status="in_progress"]'));
    await expect.poll(async () => (await api('GET', `/api/v1/tasks/${open.id}`)).json().status, BROWSER_POLL).toBe('in_progress');
    expect(await page.locator(`.column[data-status="in_progress"] .task-card[data-task-id="${open.id}"]`).count()).toBe(1);

    await card(finished.id).dragTo(page.locator('.column[data-status="in_progress"]'));
    await expect.poll(() => page.locator('.toast-error').last().textContent(), BROWSER_POLL).toContain('status cannot change from done to in_progress');
    expect((await api('GET', `/api/v1/tasks/${finished.id}`)).json().status).toBe('done');
    expect(await page.locator(`.column[data-status="done"] .task-card[data-task-id="${finished.id}"]`).count()).toBe(1);

    // Details: fields, a comment and the history.
    await card(open.id).getByRole('button', { name: 'Write the runbook' }).click();
    await page.locator('dialog[open]').getByLabel('Comment').fill('Started on it');
    await page.locator('dialog[open]').getByRole('button', { name: 'Post' }).click();
    await expect.poll(() => page.locator('dialog[open]').textContent(), BROWSER_POLL).toContain('Started on it');
    expect(await page.locator('dialog[open] .history li').count()).toBeGreaterThanOrEqual(2);
    await shot(page, 'task-detail');
    await page.locator('dialog[open]').getByRole('button', { name: 'Close' }).click();
  });

  it('live: a task created and moved over the API by another client appears and moves on the open board, without a reload', async () => {
    const api = as(root);
    const streams: Array<Promise<{ url: string; authorization: string | undefined }>> = [];
    const onRequest = (r: Request) => {
      if (r.url().includes('/api/v1/sync/events')) streams.push(r.allHeaders().then((h) => ({ url: r.url(), authorization: h.authorization })));
    };
    page.on('request', onRequest);
    // Leaving the board closes its stream; coming back opens a new one.
    await go('#/files');
    await page.getByTestId('file-count').waitFor();
    await go('#/tasks');
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    await expect.poll(() => page.getByTestId('live').getAttribute('data-live'), { ...BROWSER_POLL, timeout: 15_000 }).toBe('true');
    // The access token goes in the Authorization header, never in the (logged) URL.
    page.off('request', onRequest);
    expect(streams.length).toBeGreaterThanOrEqual(1);
    const stream = await streams.at(-1)!;
    expect(stream.authorization).toMatch(/^Bearer \S+/);
    expect(stream.url).not.toContain(stream.authorization!.slice(7));
    expect([...new URL(stream.url).searchParams.keys()]).toEqual(['device_id']);
    expect(new URL(stream.url).searchParams.get('device_id')).toMatch(/^dev_[0-9a-f]{16}$/);
    // A marker that a reload would wipe.
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    const created = (await api('POST', '/api/v1/tasks', { title: 'Rotate the TLS keys', status: 'todo', priority: 'urgent', tags: [] })).json();
    const card = page.locator(`.task-card[data-task-id="${created.id}"]`);
    await page.locator(`.column[data-status="todo"] .task-card[data-task-id="${created.id}"]`).waitFor({ timeout: 15_000 });
    const moved = await api('PATCH', `/api/v1/tasks/${created.id}`, { status: 'in_progress' }, { 'if-match': `"${created.version}"` });
    expect(moved.statusCode, moved.body).toBe(200);
    await page.locator(`.column[data-status="in_progress"] .task-card[data-task-id="${created.id}"]`).waitFor({ timeout: 15_000 });
    expect(await card.count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    // One device for the UI, reused: opening the board again does not register another.
    await go('#/files');
    await page.getByTestId('file-count').waitFor();
    await go('#/tasks');
    await expect.poll(() => page.getByTestId('live').getAttribute('data-live'), { ...BROWSER_POLL, timeout: 15_000 }).toBe('true');
    const devices = (await api('GET', '/api/v1/devices')).json().devices.filter((d: { name: string }) => d.name === 'Stormvault web UI');
    expect(devices).toHaveLength(1);
    await shot(page, 'tasks-live');
  });

  it('the task list applies the REST filters: tag, assignee, deleted', async () => {
    const api = as(root);
    const mine = (await api('POST', '/api/v1/tasks', { title: 'Renew the certificate', status: 'todo', priority: 'low', tags: ['pki'], assignee_id: root.user.id })).json();
    const other = (await api('POST', '/api/v1/tasks', { title: 'Order cables', status: 'todo', priority: 'low', tags: ['pki'] })).json();
    const gone = (await api('POST', '/api/v1/tasks', { title: 'Old idea', status: 'todo', priority: 'low', tags: ['pki'] })).json();
    expect((await api('DELETE', `/api/v1/tasks/${gone.id}`, undefined, { 'if-match': `"${gone.version}"` })).statusCode).toBeLessThan(300);
    await go('#/tasks/list');
    const ids = () => page.locator('tr[data-task-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')));
    await page.getByLabel('Tag').fill('pki');
    // A live update re-renders the list while the tag is being typed: the typing must survive it.
    const unrelated = (await api('POST', '/api/v1/tasks', { title: 'Unrelated', status: 'todo', priority: 'low', tags: [] })).json();
    await page.locator(`tr[data-task-id="${unrelated.id}"]`).waitFor({ timeout: 15_000 });
    expect(await page.getByLabel('Tag').inputValue()).toBe('pki');
    await page.getByLabel('Tag').press('Tab');
    await expect.poll(async () => (await ids()).sort(), BROWSER_POLL).toEqual([mine.id, other.id].sort());
    await page.getByLabel('Assigned to me').check();
    await expect.poll(ids, BROWSER_POLL).toEqual([mine.id]);
    await page.getByLabel('Assigned to me').uncheck();
    await page.getByLabel('Include deleted').check();
    await expect.poll(async () => (await ids()).length, BROWSER_POLL).toBe(3);
    expect(await page.locator(`tr[data-task-id="${gone.id}"]`).textContent()).toContain('(deleted');
    await shot(page, 'tasks-list-filtered');
  });

  it('resolves a conflict created by two devices over the API', async () => {
    const api = as(root);
    const { id, phonePush: second } = await conflictByTwoDevices(api);
    expect(second.json().results[0].status).toBe('conflict');

    await go('#/conflicts');
    const card = page.locator('article.conflict');
    await card.waitFor();
    expect(await card.locator('dd[data-side="local"][data-field="title"]').textContent()).toBe('Plan the offsite (phone)');
    expect(await card.locator('dd[data-side="remote"][data-field="title"]').textContent()).toBe('Plan the offsite (laptop)');
    await shot(page, 'conflicts');
    await card.getByRole('button', { name: 'Edit and resolve' }).click();
    await card.getByLabel('title').fill('Plan the offsite (both)');
    await card.getByRole('button', { name: 'Save and resolve' }).click();
    await page.getByText('No open conflicts.').waitFor();
    expect((await api('GET', `/api/v1/tasks/${id}`)).json().title).toBe('Plan the offsite (both)');
    expect((await api('GET', '/api/v1/sync/conflicts?status=open')).json().items).toEqual([]);
  });

  it("shows a network device's status, versions and the diff between two of them", async () => {
    const api = as(root);
    const loc = await api('POST', '/api/v1/backup-locations', { name: 'main', type: 'git', config: { folder: 'net', author_name: 'NetOps', author_email: 'netops@example.test' } });
    expect(loc.statusCode, loc.body).toBe(201);
    const dev = (await api('POST', '/api/v1/network-devices', { name: 'core-r1', address: '10.0.0.1', group: 'core', backup_location_id: loc.json().id })).json();
    for (const cfg of ['hostname core-r1\ninterface eth0\n ip address 10.0.0.1/24\n', 'hostname core-r1\ninterface eth0\n ip address 10.0.0.2/24\n']) {
      expect((await api('POST', `/api/v1/network-devices/${dev.id}/backups`, cfg, { 'content-type': 'text/plain' })).statusCode).toBe(202);
      await drainPipeline(t.app);
    }
    await go('#/backups');
    await page.getByRole('link', { name: 'core-r1' }).click();
    const diff = page.getByTestId('diff');
    await diff.waitFor();
    expect(await diff.locator('.del').allTextContents()).toContain(' ip address 10.0.0.1/24\n'.replace(/^/, '-'));
    expect(await diff.locator('.add').allTextContents()).toContain('+ ip address 10.0.0.2/24\n');
    await shot(page, 'backups-diff');
    await page.getByRole('link', { name: '← Network devices' }).click();
    await expect.poll(() => page.locator('tr[data-device="core-r1"]').textContent(), BROWSER_POLL).toContain('10.0.0.1');
    await shot(page, 'backups-devices');
  });

  it('backup now: the device shows the collection queued, then its new status and version', async () => {
    const api = as(root);
    const fake = await startFakeDevice({ transcript: FIXTURES['cisco-ios']!.transcript, password: 'pw-for-the-e2e-device' });
    try {
      const loc = (await api('POST', '/api/v1/backup-locations', { name: 'collected', type: 'git', config: { folder: 'collected' } })).json();
      const cred = await api('POST', '/api/v1/credentials', { name: 'e2e', username: 'backup', password: 'pw-for-the-e2e-device', enable_password: 'en4ble' });
      expect(cred.statusCode, cred.body).toBe(201);
      const dev = await api('POST', '/api/v1/network-devices', { name: 'edge-sw1', address: '127.0.0.1', port: fake.port, model: 'cisco-ios', credential_id: cred.json().id, backup_location_id: loc.id });
      expect(dev.statusCode, dev.body).toBe(201);
      await go(`#/backups/${dev.json().id}`);
      await page.getByText('No versions stored yet.').waitFor();
      const status = page.getByTestId('backup-now');
      await page.getByRole('button', { name: 'Backup now' }).click();
      // Queued first (the pipeline that stores results has not run yet)…
      await expect.poll(() => status.getAttribute('data-phase'), BROWSER_POLL).toMatch(/queued|storing|collecting/);
      expect(await status.textContent()).toMatch(/Queued|Collect/);
      await shot(page, 'backups-backup-now-queued');
      // …then the device's status, once the result is stored.
      await drainPipeline(t.app);
      await expect.poll(() => status.getAttribute('data-phase'), { ...BROWSER_POLL, timeout: 20_000 }).toBe('done');
      expect(await status.textContent()).toContain('Backed up at');
      await page.locator('tr[data-version]').first().waitFor();
      expect((await api('GET', `/api/v1/network-devices/${dev.json().id}`)).json().last_status).toBe('success');
      await shot(page, 'backups-backup-now-done');

      // A failure shows the stage and the reason: the device stops answering SSH.
      await fake.close();
      await page.getByRole('button', { name: 'Backup now' }).click();
      await expect.poll(() => status.getAttribute('data-phase'), BROWSER_POLL).not.toBe('done');
      await expect.poll(async () => (await drainPipeline(t.app), status.textContent()), { ...BROWSER_POLL, timeout: 60_000, interval: 500 }).toMatch(/^Failed at connect: /);
      expect(await status.getAttribute('data-phase')).toBe('done');

      // The device comes back with another SSH host key: refused, the new key is shown, an admin trusts it.
      const replaced = await startFakeDevice({ transcript: FIXTURES['cisco-ios']!.transcript, password: 'pw-for-the-e2e-device' });
      try {
        expect((await api('PATCH', `/api/v1/network-devices/${dev.json().id}`, { port: replaced.port })).statusCode).toBe(200);
        await page.reload();
        await page.getByRole('button', { name: 'Backup now' }).click();
        await expect.poll(async () => (await drainPipeline(t.app), status.textContent()), { ...BROWSER_POLL, timeout: 60_000, interval: 500 }).toMatch(/^Failed at connect: host key changed/);
        const collection = page.getByTestId('collection');
        await collection.locator('summary').click();
        expect(await collection.textContent()).toContain(replaced.fingerprint);
        await shot(page, 'backups-host-key-changed');
        await collection.getByRole('button', { name: 'Trust the new host key…' }).click();
        await page.locator('dialog[open]').getByRole('button', { name: 'Trust this key' }).click();
        await expect.poll(async () => (await api('GET', `/api/v1/network-devices/${dev.json().id}/collection`)).json().host_key, BROWSER_POLL).toBe(replaced.fingerprint);
        await page.getByRole('button', { name: 'Backup now' }).click();
        await expect.poll(async () => (await drainPipeline(t.app), status.textContent()), { ...BROWSER_POLL, timeout: 60_000, interval: 500 }).toMatch(/^Backed up at/);
      } finally {
        await replaced.close();
      }
    } finally {
      await fake.close().catch(() => {});
    }
  }, 120_000);

  it("switches a site to fallback mode and the manifest's URLs change from the CDN to this server", async () => {
    const api = as(root);
    const bucket = await s3.newBucket();
    const created = await api('POST', '/api/v1/sites', {
      name: 'docs',
      cdn_enabled: true,
      cdn_base_url: `${s3.endpoint}/${bucket}`,
      s3: { endpoint: s3.endpoint, region: 'us-east-1', bucket, prefix: 'pub', access_key_id: 'S3RVER', secret_access_key: 'S3RVER' },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect((await api('PUT', '/api/v1/sites/docs/content/index.html', '<h1>hi</h1>', { 'content-type': 'application/octet-stream' })).statusCode).toBe(201);
    await expect.poll(async () => (await api('GET', '/api/v1/sites/docs/content/index.html')).json().cdn.sync_verified, { ...BROWSER_POLL, timeout: 20_000 }).toBe(true);

    await go('#/publishing');
    await page.getByRole('link', { name: 'docs' }).click();
    const link = page.getByTestId('manifest').getByRole('link');
    await expect.poll(() => link.getAttribute('data-source'), BROWSER_POLL).toBe('cdn');
    expect(await link.getAttribute('href')).toContain(s3.endpoint);
    await shot(page, 'publishing-cdn');
    await page.getByLabel('Local fallback mode').check();
    await expect.poll(() => link.getAttribute('data-source'), BROWSER_POLL).toBe('local');
    expect(await link.getAttribute('href')).toMatch(/\/p\/docs\/index\.html$/);
    expect(await page.getByTestId('serving').textContent()).toContain('local');
    expect((await api('GET', '/api/v1/sites/docs')).json().local_fallback_mode).toBe(true);
    await shot(page, 'publishing-fallback');
  });

  it('an administrator sees the admin view: users, tasks, an index audit, alerts', async () => {
    await go('#/admin');
    await page.getByRole('heading', { name: 'Administration' }).waitFor();
    await expect.poll(() => page.locator('table.data').first().textContent(), BROWSER_POLL).toContain('mia');
    await shot(page, 'admin-users');
    await page.getByRole('link', { name: 'Background tasks' }).click();
    // The tasks table by name: until the tab has switched, the users tab's two tables are still there.
    await page.getByRole('table', { name: 'Background tasks' }).waitFor();
    await shot(page, 'admin-tasks');
    await page.getByRole('link', { name: 'Index reconciliation' }).click();
    await page.getByRole('button', { name: 'Run audit' }).click();
    await expect.poll(() => page.getByTestId('index-result').textContent(), { ...BROWSER_POLL, timeout: 20_000 }).toContain('SUCCESSFUL');
    await shot(page, 'admin-index');
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.waitForTimeout(200);
    await shot(page, 'admin-alerts');
  });

  it('a member finds no admin view and gets 403 from its API', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn('mia');
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await go('#/admin');
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
    expect(await page.getByRole('heading', { name: 'Administration' }).count()).toBe(0);
    // The same member's own session, from inside the page: the API refuses.
    const statuses = await page.evaluate(async () => {
      const token = ((await (await fetch('/api/v1/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json', 'x-stormvault-session': '1' }, body: '{}' })).json()) as { access_token: string }).access_token;
      const out: number[] = [];
      for (const url of ['/api/v1/admin/tasks', '/api/v1/users']) out.push((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status);
      out.push((await fetch('/api/v1/index/rebuild/', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"mode":"audit"}' })).status);
      return out;
    });
    expect(statuses).toEqual([403, 403, 403]);
    expect((await as(mia)('GET', '/api/v1/admin/tasks')).statusCode).toBe(403);
    await shot(page, 'member-no-admin');
  });
});
