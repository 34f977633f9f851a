import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import { runCliCaptured } from '../helpers/cli.ts';
import { testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';

describe.each(testDialects())('sync CLI (seed-demo, sync cleanup) on %s', (dialect) => {
  let dir: string;
  let env: Record<string, string>;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-sync-cli-'));
    const db = await freshDatabaseUrl(dialect, dir);
    drop = db.drop;
    env = { STORMVAULT_DATA_DIR: dir, STORMVAULT_DATABASE_URL: db.url, STORMVAULT_TASKS_BACKEND: 'immediate', STORMVAULT_LOG_LEVEL: 'silent' };
  });
  afterAll(async () => {
    await drop?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('seeds a demo organization that the API then serves, once', async () => {
    const seeded = await runCliCaptured(['seed-demo'], env);
    expect(seeded.stderr).toBe('');
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toMatch(/1 open conflict/);
    const key = /demo-bob\s+password \S+\s+API key (\S+)/.exec(seeded.stdout)![1]!;

    const app = await createApp(loadConfig(env));
    try {
      const headers = { authorization: `Bearer ${key}` };
      const orgs = (await app.http.inject({ method: 'GET', url: '/api/v1/organizations', headers })).json().organizations;
      expect(orgs).toEqual([expect.objectContaining({ name: 'demo team', role: 'member' })]);
      const tasks = (await app.http.inject({ method: 'GET', url: '/api/v1/tasks?limit=100', headers })).json().items;
      expect(tasks).toHaveLength(9);
      const merged = tasks.find((t: any) => t.title === 'Write the About us page');
      expect(merged).toMatchObject({ priority: 'high' });
      const conflicts = (await app.http.inject({ method: 'GET', url: '/api/v1/sync/conflicts?status=open', headers })).json().items;
      expect(conflicts).toEqual([expect.objectContaining({ fields: ['title'], local: expect.objectContaining({ data: { title: 'Write the Team page' } }) })]);
    } finally {
      await app.close();
    }

    const again = await runCliCaptured(['seed-demo'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already/);
    expect((await runCliCaptured(['seed-demo', '--prefix', 'Bad Prefix'], env)).code).toBe(2);
  });

  it('reports and purges with sync cleanup, and refuses unknown flags', async () => {
    const dry = await runCliCaptured(['sync', 'cleanup', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would purge tombstones deleted before .*: 0 projects, 0 tasks, 0 comments/);
    const json = await runCliCaptured(['sync', 'cleanup', '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: false, tombstones: { project: 0, task: 0, comment: 0 } });
    expect((await runCliCaptured(['sync', 'cleanup', '--force'], env)).code).toBe(2);
    expect((await runCliCaptured(['sync', 'metrics', '--day', 'yesterday'], env)).code).toBe(2);
    const today = new Date().toISOString().slice(0, 10);
    const metrics = await runCliCaptured(['sync', 'metrics', '--day', today], env);
    expect(metrics.code).toBe(0);
    expect(metrics.stdout).toMatch(/3 pushes \(4 changes\)/);
  });
});
