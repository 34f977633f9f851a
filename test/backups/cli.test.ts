import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCliCaptured, cliEnvOf } from '../helpers/cli.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable, gitIn } from '../storage/git-helpers.ts';
import { drainPipeline } from './helpers.ts';

describe.runIf(gitAvailable())('backups CLI', () => {
  let t: TestApp;
  let env: Record<string, string>;
  let orgId: string;
  beforeEach(async () => {
    t = await createTestApp();
    const owner = await createUserWithKey(t.app);
    orgId = (await t.app.organizations.listForUser(owner.user.id))[0]!.organization.id;
    env = cliEnvOf(t);
  });
  afterEach(async () => t.cleanup());
  const cli = (args: string[], stdin = '') => runCliCaptured(args, env, stdin);

  it('location add/list, network-devices add/list/show, push, list, show, download, diff', async () => {
    const loc = await cli(['backups', 'location', 'add', '--org', orgId, '--name', 'main', '--type', 'git', '--folder', 'repo', '--author-name', 'Ops']);
    expect(loc.stderr).toBe('');
    expect(loc.code).toBe(0);
    expect(JSON.parse(loc.stdout)).toMatchObject({ name: 'main', type: 'git', config: { folder: 'repo', branch: 'main', author_name: 'Ops' } });
    expect((await cli(['backups', 'location', 'list'])).stdout).toMatch(/main\s+git\s+repo/);

    const dev = await cli(['network-devices', 'add', '--name', 'r1', '--address', '10.1.1.1', '--location', 'main', '--group', 'core', '--strip', '^! Last', '--ignore', '^ntp']);
    expect(dev.code).toBe(0);
    expect(JSON.parse(dev.stdout)).toMatchObject({ name: 'r1', group: 'core', strip_patterns: ['^! Last'], ignore_patterns: ['^ntp'] });
    expect((await cli(['network-devices', 'list'])).stdout).toMatch(/r1\s+core\s+10\.1\.1\.1/);

    const pushed = await cli(['backups', 'push', '--device', 'r1'], '! Last change\nhostname r1\n');
    expect(pushed.code).toBe(0);
    expect(pushed.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    await drainPipeline(t.app);
    await cli(['backups', 'push', '--device', 'r1'], 'hostname r1\nbanner hi\n');
    await drainPipeline(t.app);
    expect(gitIn(path.join(t.config.backups.root, orgId, 'repo'), 'log', '--format=%s', 'main').trim().split('\n')).toEqual(['update core/r1', 'update core/r1']);

    const listed = await cli(['backups', 'list', '--device', 'r1']);
    const ids = listed.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).at(-1)!);
    expect(ids).toHaveLength(2);
    expect(JSON.parse((await cli(['backups', 'show', ids[1]!])).stdout).task_identifier).toBe(pushed.stdout.trim());
    expect((await cli(['backups', 'download', ids[1]!])).stdout).toBe('hostname r1\n');
    expect((await cli(['backups', 'download', ids[1]!, '--output', '-'])).stdout).toBe('hostname r1\n');
    // --output writes the file atomically (no temp file left beside it), private, and prints nothing.
    const out = path.join(t.dir, 'r1.cfg');
    await writeFile(out, 'old content\n');
    const saved = await cli(['backups', 'download', ids[0]!, '-o', out]);
    expect([saved.code, saved.stdout, saved.stderr]).toEqual([0, '', '']);
    expect(await readFile(out, 'utf8')).toBe('hostname r1\nbanner hi\n');
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect((await readdir(t.dir)).filter((n) => n.startsWith('.sv-tmp'))).toEqual([]);
    const bad = await cli(['backups', 'download', ids[0]!, '--output', path.join(t.dir, 'no', 'such', 'r1.cfg')]);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, expect.stringMatching(/^.*--output .*: cannot write \(its folder does not exist\)$/)]);
    const diff = await cli(['backups', 'diff', ids[0]!]);
    expect(diff.stdout).toContain('+banner hi');
    expect(JSON.parse((await cli(['backups', 'diff', ids[0]!, '--against', ids[1]!, '--format', 'json'])).stdout).hunks).toHaveLength(1);
    const shown = JSON.parse((await cli(['network-devices', 'show', 'r1'])).stdout);
    expect(shown).toMatchObject({ last_status: 'success', consecutive_failures: 0 });
  }, 120_000); // a dozen CLI runs, each building the app: slow on a loaded machine

  it('bad input: one line on stderr, exit 2, nothing changed', async () => {
    const cases: Array<[string[], RegExp, string?]> = [
      [['backups', 'location', 'add', '--org', orgId, '--name', 'x', '--type', 'svn', '--folder', 'x'], /--type must be git or fs/],
      [['backups', 'location', 'add', '--org', orgId, '--name', 'x', '--type', 'git', '--folder', '/etc'], /relative/],
      [['backups', 'location', 'add', '--org', orgId, '--name', 'x', '--type', 'git', '--folder', '../x'], /invalid path/],
      [['backups', 'location', 'add', '--org', 'no-such-org', '--name', 'x', '--type', 'git', '--folder', 'x'], /no organization/],
      [['backups', 'location', 'list'], /--org ID is required/],
      [['backups', 'push', '--device', 'nope', '--org', orgId], /no network device named "nope"/, 'hostname\n'],
      [['backups', 'push', '--device', 'nope', '--org', orgId], /no configuration on standard input/, ''],
      [['backups', 'download', 'not-an-id', '--org', orgId], /no such stored backup/],
      [['consume', 'everything'], /device-results or storage-results/],
    ];
    for (const [args, message, stdin] of cases) {
      const r = await cli(args, stdin);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect((await cli(['backups', 'location', 'list', '--org', orgId])).stdout.trim().split('\n')).toHaveLength(1); // header only
  }, 120_000);
});
