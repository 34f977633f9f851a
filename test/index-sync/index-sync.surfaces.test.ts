import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { AUDIT_SCHEDULE_NAME, REBUILD_INDEX_TASK, runStartupAudit } from '../../src/modules/index-sync/index-sync.tasks.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { insertRow, pathsOf, writeTree } from './helpers.ts';

describe.each(testDialects())('POST /api/v1/index/rebuild/ and the storage.rebuild_index task on %s', (dialect) => {
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    t = await createTestApp({ dialect });
    admin = await createUserWithKey(t.app, { admin: true });
    user = await createUserWithKey(t.app);
    await writeTree(t.app, user.user.id, { 'a.txt': 'a', 'd/b.txt': 'b' });
    await insertRow(t.app, user.user.id, 'gone.txt');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const rebuild = (body: unknown, headers: Record<string, string> = admin.headers) =>
    t.app.http.inject({ method: 'POST', url: '/api/v1/index/rebuild/', headers, payload: body as object });

  it('is for administrators only', async () => {
    expect((await rebuild({ mode: 'audit' }, {})).statusCode).toBe(401);
    const res = await rebuild({ mode: 'audit' }, user.headers);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('forbidden');
  });

  it('answers 400 for a bad mode or a destructive mode without force, 404 for an unknown user; nothing runs', async () => {
    for (const body of [{ mode: 'rebuild' }, {}, { mode: 'audit', extra: 1 }, { mode: 'clean' }, { mode: 'full', dry_run: true }, { mode: 'audit', path: 'x' }]) {
      const res = await rebuild(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code, JSON.stringify(body)).toBe('invalid_request');
    }
    expect((await rebuild({ mode: 'clean' })).json().error.message).toMatch(/requires force/);
    const unknown = await rebuild({ mode: 'audit', user_id: 'nobody' });
    expect(unknown.statusCode).toBe(404);
    expect((await t.app.tasks.list({ taskName: REBUILD_INDEX_TASK })).length).toBe(0);
    expect(await pathsOf(t.app, user.user.id)).toEqual(['gone.txt']);
  });

  it('runs the task and answers {task_id, status, result}; the task is visible in the admin task API', async () => {
    const res = await rebuild({ mode: 'full', user_id: user.user.id, force: true });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ status: 'SUCCESSFUL', result: { users_scanned: 1, records_created: 3, records_deleted: 1 } });
    expect(await pathsOf(t.app, user.user.id)).toEqual(['a.txt', 'd', 'd/b.txt']);
    const task = await t.app.http.inject({ method: 'GET', url: `/api/v1/admin/tasks/${body.task_id}`, headers: admin.headers });
    expect(task.statusCode).toBe(200);
    expect(task.json()).toMatchObject({ task_name: 'storage.rebuild_index', status: 'SUCCESSFUL', return_value: { records_created: 3 } });

    const again = await rebuild({ mode: 'full', user_id: user.user.id, force: true, dry_run: true });
    expect(again.json().result).toMatchObject({ records_created: 0, records_updated: 0, records_deleted: 0 });
  });

  it('agrees with the files API: what it writes, an audit finds in sync', async () => {
    const owner = await createUserWithKey(t.app);
    const put = (p: string, payload: string) => t.app.http.inject({ method: 'PUT', url: `/api/v1/files/${p}`, headers: owner.headers, payload });
    expect((await put('docs/report.pdf', 'pdf bytes')).statusCode).toBe(201);
    expect((await put('notes/caf%C3%A9.txt', 'coffee')).statusCode).toBe(201);
    expect((await t.app.http.inject({ method: 'POST', url: '/api/v1/dirs/empty/inner', headers: owner.headers })).statusCode).toBeLessThan(300);
    const audit = await rebuild({ mode: 'audit', user_id: owner.user.id });
    expect(audit.json().result).toMatchObject({ files_on_disk: 2, files_in_db: 2, missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0, errors: [] });
  });

  it('retries a run refused by the lock, at most 3 attempts; bad arguments fail at once', async () => {
    const now = Date.now();
    await t.app.db.insertInto('locks').values({ name: 'index_sync', holder: 'x', description: 'sync elsewhere', acquired_at: new Date(now).toISOString(), expires_at: new Date(now + 60_000).toISOString() }).execute();
    try {
      const locked = await t.app.tasks.enqueue(REBUILD_INDEX_TASK, { mode: 'audit' });
      await locked.wait({ timeoutMs: 30_000 });
      expect(locked.status).toBe('FAILED');
      expect(locked.attempts).toBe(3);
      expect(locked.errors.at(-1)!.message).toMatch(/another index reconciliation is running/);
    } finally {
      await t.app.db.deleteFrom('locks').execute();
    }
    const bad = await t.app.tasks.enqueue(REBUILD_INDEX_TASK, { mode: 'clean' });
    await bad.wait({ timeoutMs: 30_000 });
    expect(bad.status).toBe('FAILED');
    expect(bad.attempts).toBe(1);
  });
});

describe('periodic and start-up audits', () => {
  it('schedules a daily audit by default, a configured cron, or none when switched off', async () => {
    const base = { STORMVAULT_DATA_DIR: '/tmp/unused' };
    expect(loadConfig(base).indexSync).toEqual({ auditOnStart: true, auditSchedule: '0 3 * * *' });
    expect(loadConfig({ ...base, STORMVAULT_INDEX_AUDIT_SCHEDULE: 'off', STORMVAULT_INDEX_AUDIT_ON_START: 'false' }).indexSync).toEqual({ auditOnStart: false, auditSchedule: null });
    expect(() => loadConfig({ ...base, STORMVAULT_INDEX_AUDIT_SCHEDULE: 'every day', STORMVAULT_INDEX_AUDIT_ON_START: 'yes' })).toThrow(ConfigError);
    try {
      loadConfig({ ...base, STORMVAULT_INDEX_AUDIT_SCHEDULE: 'every day', STORMVAULT_INDEX_AUDIT_ON_START: 'yes' });
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).toMatch(/STORMVAULT_INDEX_AUDIT_SCHEDULE[\s\S]*STORMVAULT_INDEX_AUDIT_ON_START|STORMVAULT_INDEX_AUDIT_ON_START[\s\S]*STORMVAULT_INDEX_AUDIT_SCHEDULE/);
    }

    for (const [setting, expected] of [
      [undefined, '0 3 * * *'],
      ['30 1 * * 0', '30 1 * * 0'],
      ['off', null],
    ] as const) {
      const t = await createTestApp({ env: setting ? { STORMVAULT_INDEX_AUDIT_SCHEDULE: setting } : {} });
      try {
        const schedule = t.app.tasks.schedules().find((s) => s.name === AUDIT_SCHEDULE_NAME);
        if (expected === null) expect(schedule).toBeUndefined();
        else expect(schedule).toMatchObject({ cron: expected, taskName: REBUILD_INDEX_TASK, args: { mode: 'audit' } });
      } finally {
        await t.cleanup();
      }
    }
  });

  it('logs one summary line at start-up (a warning on drift) and never rejects', async () => {
    const t = await createTestApp();
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    try {
      await runStartupAudit(t.app.indexSync, logger);
      expect(lines).toEqual([expect.objectContaining({ level: 30, msg: expect.stringMatching(/^start-up index audit: index and disk agree/) })]);

      const u = await createUserWithKey(t.app);
      await writeTree(t.app, u.user.id, { 'drift.txt': 'x' });
      lines.length = 0;
      await runStartupAudit(t.app.indexSync, logger);
      expect(lines).toEqual([expect.objectContaining({ level: 40, msg: expect.stringMatching(/^start-up index audit found drift: .*missing 1/) })]);

      lines.length = 0;
      await t.app.close();
      await expect(runStartupAudit(t.app.indexSync, logger)).resolves.toBeUndefined();
      expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'start-up index audit could not run' })]);
    } finally {
      await t.cleanup();
    }
  });

  it('`serve` listens first, then logs exactly one start-up audit line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sv-audit-e2e-'));
    const storage = path.join(dir, 'storage');
    const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../bin/stormvault.js'), 'serve', '--no-worker'], {
      env: { ...process.env, STORMVAULT_DATA_DIR: dir, STORMVAULT_STORAGE_ROOT: storage, STORMVAULT_PORT: '0', STORMVAULT_MIN_FREE_BYTES: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const logs: Array<{ msg?: string; level?: number; address?: string }> = [];
      const lines = createInterface({ input: child.stdout! });
      const seen = new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
        lines.on('line', (line) => {
          if (!line.startsWith('{')) return;
          logs.push(JSON.parse(line));
          if (logs.some((l) => l.msg === 'stormvault listening') && logs.some((l) => l.msg?.startsWith('start-up index audit'))) resolve();
        });
      });
      await seen;
      const listening = logs.findIndex((l) => l.msg === 'stormvault listening');
      const audit = logs.findIndex((l) => l.msg?.startsWith('start-up index audit'));
      expect(audit).toBeGreaterThan(listening);
      expect(logs.filter((l) => l.msg?.startsWith('start-up index audit'))).toHaveLength(1);
      const res = await fetch(`${logs[listening]!.address}/health`);
      expect(res.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
