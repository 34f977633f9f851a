import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.ts';
import { runCliCaptured } from '../helpers/cli.ts';
import { testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';

describe.each(testDialects())(`${runCli.name} user and apikey commands on %s`, (dialect) => {
  let dir: string;
  let env: Record<string, string>;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-cli-'));
    const db = await freshDatabaseUrl(dialect, dir);
    drop = db.drop;
    env = { STORMVAULT_DATA_DIR: dir, STORMVAULT_DATABASE_URL: db.url, STORMVAULT_TASKS_BACKEND: 'immediate' };
  });
  afterAll(async () => {
    await drop?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates, creates a user with a password from stdin, and an API key printed alone on the last line', async () => {
    expect((await runCliCaptured(['migrate'], env)).code).toBe(0);
    const created = await runCliCaptured(['user', 'create', '--username', 'alice', '--admin', '--password-stdin', '--quota', '1000'], env, 'secret-password\n');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toContain('created user alice (admin)');

    const key = await runCliCaptured(['apikey', 'create', '--username', 'alice', '--name', 'laptop'], env);
    expect(key.code).toBe(0);
    const lastLine = key.stdout.trimEnd().split('\n').at(-1)!;
    expect(lastLine).toMatch(/^sv_[A-Za-z0-9_-]{40,}$/);

    const list = await runCliCaptured(['user', 'list', '--json'], env);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ username: 'alice', isAdmin: true, quotaBytes: 1000 })]);
  });

  it('exits 2 with a one-line reason on bad input, and changes nothing', async () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['user', 'create', '--username', 'bob', '--bogus'], '', /unknown option '--bogus'/],
      [['user', 'create'], '', /required option '--username <name>'/],
      [['user', 'create', '--username', 'bob', '--quota', '-5'], '', /--quota.*whole number/],
      [['user', 'create', '--username', 'b/ob'], '', /invalid username/],
      [['user', 'create', '--username', 'bob', '--password-stdin'], '', /no password on standard input/],
      [['user', 'create', '--username', 'bob', '--password-stdin'], 'short\n', /at least 8 characters/],
      [['user', 'create', '--username', 'alice'], '', /already exists/],
      [['apikey', 'create', '--username', 'nobody'], '', /not found/],
      [['no-such-command'], '', /unknown command/],
    ];
    for (const [argv, stdin, reason] of cases) {
      const run = await runCliCaptured(argv, env, stdin);
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stderr, argv.join(' ')).toMatch(reason);
    }
    const list = await runCliCaptured(['user', 'list', '--json'], env);
    expect(JSON.parse(list.stdout).map((u: { username: string }) => u.username)).toEqual(['alice']);
  });

  it('reports bad configuration with exit code 2', async () => {
    const run = await runCliCaptured(['user', 'list'], { ...env, STORMVAULT_PORT: 'x' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('STORMVAULT_PORT');
  });

  it('prints help with exit code 0', async () => {
    const run = await runCliCaptured(['user', 'create', '--help'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--password-stdin');
  });
});
