import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { drainPipeline } from '../backups/helpers.ts';
import { axeViolations, describeFindings } from './axe.ts';
import { conflictByTwoDevices } from './fixtures.ts';
import { BROWSER_POLL, browserOrSkip, buildWebInto, removeDir, screenshotDir } from '../helpers/browser.ts';
import { createUserWithKey, createTestApp, type TestApp, type TestUser } from '../helpers/test-app.ts';

/**
 * Issue 14: "Keyboard usable, labelled controls (axe-core reports no serious violations on any view),
 * works at 360 px wide". Every view (and the dialogs that are views of their own: task detail, file
 * preview, share link) is audited with axe-core at desktop width and at 360 px, and at 360 px the page
 * must not scroll sideways. Then a few keyboard-only paths: skip link, moving a task, opening and closing
 * a dialog.
 */
const browser = await browserOrSkip();

/** Desktop and 360 px in the light scheme, and desktop in the dark one (its colours have their own contrast). */
const LAYOUTS = [
  { name: 'desktop', width: 1280, height: 900, colorScheme: 'light' },
  { name: '360px', width: 360, height: 740, colorScheme: 'light' },
  { name: 'desktop-dark', width: 1280, height: 900, colorScheme: 'dark' },
] as const;

describe.skipIf(!browser)('web UI accessibility: axe-core on every view, 360 px, keyboard (Chromium)', { timeout: 90_000 }, () => {
  let t: TestApp;
  let base: string;
  let webDir: string;
  let context: BrowserContext;
  let page: Page;
  let root: TestUser;
  let orgId: string;
  let deviceId: string;
  let taskId: string;
  let shot: (page: Page, name: string) => Promise<void>;
  const password = 'a long enough password';

  const api = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.http.inject({ method: method as 'GET', url, headers: { ...root.headers, 'x-organization': orgId, ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
  const go = (hash: string) => page.evaluate((h) => (location.hash = h), hash);

  beforeAll(async () => {
    webDir = await mkdtemp(path.join(tmpdir(), 'sv-web-a11y-'));
    t = await createTestApp({ env: { STORMVAULT_PORT: '0', STORMVAULT_HOST: '127.0.0.1' }, appOptions: { webRoot: await buildWebInto(webDir) } });
    base = await t.app.listen();
    root = await createUserWithKey(t.app, { username: 'root', password, admin: true, quotaBytes: 1024 * 1024 * 1024 });
    orgId = (await t.app.organizations.listForUser(root.user.id))[0]!.organization.id;

    // Something on every view: files (a folder, a text file, a share link), tasks with a comment, a conflict,
    // a device with two versions, a site.
    expect((await api('POST', '/api/v1/dirs/projects')).statusCode).toBe(201);
    expect((await api('PUT', '/api/v1/files/notes.txt', 'hello\n', { 'content-type': 'text/plain' })).statusCode).toBeLessThan(300);
    expect((await api('POST', '/api/v1/shares', { path: 'notes.txt', max_downloads: 3 })).statusCode).toBe(201);
    const task = (await api('POST', '/api/v1/tasks', { title: 'Write the runbook', status: 'todo', priority: 'high', tags: ['ops'], due_date: '2026-12-24' })).json();
    taskId = task.id;
    await api('POST', '/api/v1/tasks', { title: 'Ship 1.0', status: 'in_progress', priority: 'low', tags: [] });
    await api('POST', '/api/v1/comments', { task_id: taskId, body: 'First comment', parent_id: null });
    expect((await conflictByTwoDevices(api)).phonePush.json().results[0].status).toBe('conflict');
    const loc = (await api('POST', '/api/v1/backup-locations', { name: 'main', type: 'git', config: { folder: 'net' } })).json();
    deviceId = (await api('POST', '/api/v1/network-devices', { name: 'core-r1', address: '10.0.0.1', group: 'core', backup_location_id: loc.id })).json().id;
    for (const cfg of ['hostname core-r1\ninterface eth0\n ip address 10.0.0.1/24\n', 'hostname core-r1\ninterface eth0\n ip address 10.0.0.2/24\n']) {
      expect((await api('POST', `/api/v1/network-devices/${deviceId}/backups`, cfg, { 'content-type': 'text/plain' })).statusCode).toBe(202);
      await drainPipeline(t.app);
    }
    expect((await api('POST', '/api/v1/sites', { name: 'docs' })).statusCode).toBe(201);
    expect((await api('PUT', '/api/v1/sites/docs/content/index.html', '<h1>hi</h1>', { 'content-type': 'application/octet-stream' })).statusCode).toBe(201);

    ({ shot } = await screenshotDir('a11y'));
    context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await t?.cleanup();
    if (webDir) await removeDir(webDir);
  });

  /** Problems found in the current test (all views of a test are audited before it fails, so one run lists them all). */
  let problems: string[] = [];
  /** Opens the view in each layout, then audits it. */
  const audit = async (name: string, open: () => Promise<void>) => {
    for (const l of LAYOUTS) {
      await page.setViewportSize({ width: l.width, height: l.height });
      await page.emulateMedia({ colorScheme: l.colorScheme });
      await open();
      const findings = await axeViolations(page);
      if (findings.length) problems.push(describeFindings(`${name} @ ${l.name}`, findings));
      if (l.width === 360) {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        if (overflow > 0) problems.push(`${name} @ 360px: the page scrolls sideways by ${overflow} px`);
      }
      await shot(page, `${name}-${l.name}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'light' });
  };
  beforeEach(() => void (problems = []));
  /** Ends each test: every problem of every view it audited, in one message. */
  const expectNoProblems = () => expect(problems, problems.join('\n')).toEqual([]);
  const closeDialog = async () => {
    if (await page.locator('dialog[open]').count()) await page.keyboard.press('Escape');
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
  };

  it('login', async () => {
    await page.goto(base);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await audit('login', async () => void (await page.getByRole('button', { name: 'Sign in' }).waitFor()));
    // Also with the API's error message shown.
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill('wrong password!');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await audit('login-error', async () => {});
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    expectNoProblems();
  });

  it('files, with a selection, the preview and the share dialog', async () => {
    const open = async () => {
      await go('#/files');
      await page.locator('.vlist .file-row[data-name="notes.txt"]').waitFor();
    };
    await audit('files', open);
    await page.locator('.file-row[data-name="notes.txt"]').getByRole('checkbox').check();
    await audit('files-selected', async () => {});
    await audit('files-preview', async () => {
        await closeDialog();
        await page.locator('.file-row[data-name="notes.txt"]').getByRole('button', { name: 'notes.txt' }).click();
        await page.locator('dialog[open] pre').waitFor();
      });
    await closeDialog();
    await audit('files-share', async () => {
        await closeDialog();
        await page.getByRole('button', { name: 'Share' }).click();
        await page.locator('dialog[open] table').waitFor();
      });
    await closeDialog();
    expectNoProblems();
  });

  it('shares', async () => {
    await audit('shares', async () => (await go('#/shares'), await page.locator('tr[data-share-id]').first().waitFor()));
    expectNoProblems();
  });

  it('tasks: board, list and detail', async () => {
    const board = async () => {
      await go('#/tasks');
      await page.locator(`.task-card[data-task-id="${taskId}"]`).waitFor();
    };
    await audit('tasks-board', board);
    await audit('tasks-list', async () => {
        await go('#/tasks');
        await page.getByRole('navigation', { name: 'Layout' }).getByRole('link', { name: 'List' }).click();
        await page.locator(`tr[data-task-id="${taskId}"]`).waitFor();
      });
    await audit('task-detail', async () => {
        await closeDialog();
        await page.getByRole('button', { name: 'Write the runbook' }).first().click();
        await page.locator('dialog[open] .history li').first().waitFor();
      });
    await closeDialog();
    expectNoProblems();
  });

  it('conflicts', async () => {
    await audit('conflicts', async () => (await go('#/conflicts'), await page.locator('article.conflict').waitFor()));
    await page.getByRole('button', { name: 'Edit and resolve' }).click();
    await audit('conflicts-editing', async () => {});
    expectNoProblems();
  });

  it('backups: devices, a device with its versions and the diff', async () => {
    await audit('backups-devices', async () => (await go('#/backups'), await page.locator('tr[data-device="core-r1"]').waitFor()));
    await audit('backups-diff', async () => {
      await go(`#/backups/${deviceId}`);
      await page.getByTestId('diff').waitFor();
      // With the collection details open too.
      await page.getByTestId('collection').evaluate((d) => ((d as HTMLDetailsElement).open = true));
    });
    expectNoProblems();
  });

  it('publishing: sites and a site', async () => {
    await audit('publishing-sites', async () => (await go('#/publishing'), await page.getByRole('link', { name: 'docs' }).waitFor()));
    await audit('publishing-site', async () => (await go('#/publishing/docs'), await page.getByTestId('manifest').waitFor()));
    expectNoProblems();
  });

  it('admin: users and keys, background tasks, index reconciliation, alerts', async () => {
    await audit('admin-users', async () => (await go('#/admin/users'), await page.locator('table.data').first().waitFor()));
    await audit('admin-tasks', async () => (await go('#/admin/tasks'), await page.getByRole('table', { name: 'Background tasks' }).waitFor()));
    await go('#/admin/index');
    await page.getByRole('button', { name: 'Run audit' }).click();
    await page.getByTestId('index-result').waitFor({ timeout: 20_000 });
    await audit('admin-index', async () => void (await page.getByTestId('index-result').waitFor()));
    await audit('admin-alerts', async () => (await go('#/admin/alerts'), await page.getByRole('heading', { name: 'Administration' }).waitFor(), await page.waitForTimeout(200)));
    expectNoProblems();
  });

  it('keyboard: the skip link, a task moved without a mouse, a dialog opened and closed with focus returned', async () => {
    // A fresh load (the session comes back from the cookie): the first Tab stop is the skip link, which
    // moves focus to the content and stays on the same page.
    await go('#/files');
    await page.reload();
    await page.locator('.vlist .file-row[data-name="notes.txt"]').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => [document.activeElement?.id, location.hash])).toEqual(['main', '#/files']);

    // A file: select it with Space, open its preview with Enter, close with Escape; focus comes back.
    const row = page.locator('.file-row[data-name="notes.txt"]');
    await row.getByRole('checkbox').focus();
    await page.keyboard.press('Space');
    expect(await row.getAttribute('aria-selected')).toBe('true');
    await row.getByRole('button', { name: 'notes.txt' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('dialog[open] pre').waitFor();
    expect(await page.evaluate(() => !!document.activeElement?.closest('dialog[open]'))).toBe(true);
    await page.keyboard.press('Escape');
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
    expect(await page.evaluate(() => document.activeElement?.textContent)).toContain('notes.txt');

    // A task moved to another column with its status menu, by keyboard only.
    await go('#/tasks');
    const card = page.locator(`.task-card[data-task-id="${taskId}"]`);
    await card.waitFor();
    const before = (await api('GET', `/api/v1/tasks/${taskId}`)).json().status as string;
    await card.getByRole('combobox').focus();
    await page.keyboard.press('ArrowDown');
    await expect.poll(async () => (await api('GET', `/api/v1/tasks/${taskId}`)).json().status, BROWSER_POLL).not.toBe(before);
    const after = (await api('GET', `/api/v1/tasks/${taskId}`)).json().status as string;
    await page.locator(`.column[data-status="${after}"] .task-card[data-task-id="${taskId}"]`).waitFor();
  });
});
