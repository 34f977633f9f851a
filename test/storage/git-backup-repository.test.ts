import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupVersionNotFound } from '../../src/storage/backup-repository.port.ts';
import { GitBackupRepository } from '../../src/storage/git/git-backup-repository.ts';
import { gitAvailable, gitIn } from './git-helpers.ts';

const author = { name: 'Backups', email: 'backups@example.test' };

describe.runIf(gitAvailable())(GitBackupRepository.name, () => {
  let dir: string;
  let gitDir: string;
  let sut: GitBackupRepository;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-git-'));
    gitDir = path.join(dir, 'repo.git');
    sut = new GitBackupRepository({ gitDir });
  });
  afterEach(async () => {
    await sut.close();
    await rm(dir, { recursive: true, force: true });
  });

  const store = (relPath: string, content: string, at = '2026-03-01T10:00:00.123Z', extra = {}) =>
    sut.store({ relPath, content: Buffer.from(content), collectedAt: new Date(at), author, taskIdentifier: `t-${Math.random()}`, ...extra });

  it('creates a bare repository on first use and commits one file per device, readable with git log', async () => {
    const v = await store('core/router1', 'hostname router1\n');
    expect(v.changed).toBe(true);
    expect(v.size).toBe(17);
    expect(v.storageRef).toMatch(/^main:core\/router1@[0-9a-f]{40}$/);
    expect(gitIn(gitDir, 'rev-parse', '--is-bare-repository').trim()).toBe('true');
    expect(gitIn(gitDir, 'show', 'main:core/router1')).toBe('hostname router1\n');
    const log = gitIn(gitDir, 'log', '--format=%s|%an|%ae|%aI', 'main');
    expect(log.trim()).toBe('update core/router1|Backups|backups@example.test|2026-03-01T10:00:00+00:00');
  });

  it('unchanged content makes no commit and returns the current version', async () => {
    const a = await store('core/r', 'one\n');
    const b = await store('core/r', 'one\n', '2026-03-02T00:00:00Z');
    expect(b.changed).toBe(false);
    expect(b.storageRef).toBe(a.storageRef);
    expect(b.sha256).toBe(a.sha256);
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('1');
  });

  it('sameContent decides "unchanged" when only ignored parts differ', async () => {
    await store('core/r', 'uptime 1\nx\n');
    const sameIgnoringUptime = (a: Buffer, b: Buffer) => a.toString().replace(/^uptime.*$/m, '') === b.toString().replace(/^uptime.*$/m, '');
    expect((await store('core/r', 'uptime 2\nx\n', undefined, { sameContent: sameIgnoringUptime })).changed).toBe(false);
    expect((await store('core/r', 'uptime 3\ny\n', undefined, { sameContent: sameIgnoringUptime })).changed).toBe(true);
  });

  it('reads any version back by its ref and refuses unknown or malformed refs', async () => {
    const v1 = await store('g/d', 'v1\n');
    const v2 = await store('g/d', 'v2\n');
    const r1 = await sut.read(v1.storageRef);
    expect(r1.size).toBe(3);
    expect(await text(r1.stream)).toBe('v1\n');
    expect(await text((await sut.read(v2.storageRef)).stream)).toBe('v2\n');
    await expect(sut.read(v1.storageRef.replace('g/d', 'g/other'))).rejects.toBeInstanceOf(BackupVersionNotFound);
    await expect(sut.read('main:../etc@' + '0'.repeat(40))).rejects.toBeInstanceOf(BackupVersionNotFound);
    await expect(sut.read('--output=/tmp/x')).rejects.toBeInstanceOf(BackupVersionNotFound);
  });

  it('lists the history newest first with collection time and task identifier', async () => {
    await sut.store({ relPath: 'a/x', content: Buffer.from('1'), collectedAt: new Date('2026-01-01T00:00:00.001Z'), author, taskIdentifier: 'task-1' });
    await sut.store({ relPath: 'b/y', content: Buffer.from('2'), collectedAt: new Date('2026-01-02T00:00:00.002Z'), author, taskIdentifier: 'task-2' });
    await sut.store({ relPath: 'a/x', content: Buffer.from('3'), collectedAt: new Date('2026-01-03T00:00:00.003Z'), author, taskIdentifier: 'task-3' });
    const all = [];
    for await (const v of sut.history()) all.push(v);
    expect(all.map((v) => [v.relPath, v.collectedAt.toISOString(), v.taskIdentifier])).toEqual([
      ['a/x', '2026-01-03T00:00:00.003Z', 'task-3'],
      ['b/y', '2026-01-02T00:00:00.002Z', 'task-2'],
      ['a/x', '2026-01-01T00:00:00.001Z', 'task-1'],
    ]);
    const ax = [];
    for await (const v of sut.history('a/x')) ax.push(v.taskIdentifier);
    expect(ax).toEqual(['task-3', 'task-1']);
    expect(await text((await sut.read(all[2]!.storageRef)).stream)).toBe('1');
  });

  it('judges "unchanged" against the real branch, not a stale view of another process\'s writes', async () => {
    const other = new GitBackupRepository({ gitDir });
    expect((await store('g/d', 'v1\n')).changed).toBe(true);
    expect((await other.store({ relPath: 'g/d', content: Buffer.from('v2\n'), collectedAt: new Date(), author })).changed).toBe(true);
    // sut last saw v1; the branch now holds v2, so v1 again is a new version.
    const back = await store('g/d', 'v1\n');
    expect(back.changed).toBe(true);
    expect(gitIn(gitDir, 'show', 'main:g/d')).toBe('v1\n');
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('3');
    expect((await other.store({ relPath: 'g/d', content: Buffer.from('v1\n'), collectedAt: new Date(), author })).changed).toBe(false);
  });

  it('refuses paths that are not <group>/<device>', async () => {
    for (const bad of ['x', 'a/b/c', '../x', 'a/..', 'a/.', '/a/b', 'a/b c', 'a/-c\n']) {
      await expect(store(bad, 'x')).rejects.toThrow(/invalid backup path/);
    }
  });

  // Four objects on one folder: each has its own in-process queue, so they race like four worker processes.
  const writers = () => [sut, ...Array.from({ length: 3 }, () => new GitBackupRepository({ gitDir }))];

  it('20 concurrent stores for one device lose no version and leave git fsck clean', async () => {
    const contents = Array.from({ length: 20 }, (_, i) => `hostname r\nversion ${i}\n`);
    const w = writers();
    const results = await Promise.all(
      contents.map((c, i) => w[i % 4]!.store({ relPath: 'core/r', content: Buffer.from(c), collectedAt: new Date(`2026-03-01T10:00:${String(i).padStart(2, '0')}Z`), author })),
    );
    expect(results.every((r) => r.changed)).toBe(true);
    const refs = new Set(results.map((r) => r.storageRef));
    expect(refs.size).toBe(20);
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('20');
    for (const r of results) expect(contents).toContain(await text((await sut.read(r.storageRef)).stream));
    const seen = new Set<string>();
    for (const r of results) seen.add(await text((await sut.read(r.storageRef)).stream));
    expect(seen.size).toBe(20);
    gitIn(gitDir, 'fsck', '--strict', '--no-progress');
  });

  it('20 concurrent stores for 20 devices in one repository all land', async () => {
    const w = writers();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => w[i % 4]!.store({ relPath: `grp${i % 3}/dev${i}`, content: Buffer.from(`config of ${i}\n`), collectedAt: new Date(), author })),
    );
    expect(results.every((r) => r.changed)).toBe(true);
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('20');
    const files = gitIn(gitDir, 'ls-tree', '-r', '--name-only', 'main').trim().split('\n');
    expect(files.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `grp${i % 3}/dev${i}`).sort());
    for (let i = 0; i < 20; i++) expect(gitIn(gitDir, 'show', `main:grp${i % 3}/dev${i}`)).toBe(`config of ${i}\n`);
    gitIn(gitDir, 'fsck', '--strict', '--no-progress');
  });

  it('writes through fast-import on a private temporary ref: no index file, no temporary ref left; sweeps those of dead processes', async () => {
    const indexDir = path.join(gitDir, 'stormvault-index');
    await store('core/r', 'one\n');
    expect(gitIn(gitDir, 'for-each-ref', '--format=%(refname)').trim().split('\n')).toEqual(['refs/heads/main']);
    await expect(readdir(indexDir)).rejects.toThrow(/ENOENT/);
    // Left by a process that was killed (a pid no process has), and by one still running: a private index
    // file of an earlier version, and a temporary ref between its fast-import and its swap.
    const host = hostname().replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64);
    const dead = `${host}.999999999.${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`;
    const running = `${host}.${process.ppid}.${'1'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`;
    await mkdir(indexDir, { recursive: true });
    await writeFile(path.join(indexDir, dead), 'x');
    await writeFile(path.join(indexDir, running), 'x');
    const head = gitIn(gitDir, 'rev-parse', 'main').trim();
    gitIn(gitDir, 'update-ref', `refs/stormvault/tmp/${dead}`, head);
    gitIn(gitDir, 'update-ref', `refs/stormvault/tmp/${running}`, head);
    const next = new GitBackupRepository({ gitDir });
    await next.store({ relPath: 'core/r', content: Buffer.from('two\n'), collectedAt: new Date(), author });
    expect(await readdir(indexDir)).toEqual([running]);
    expect(gitIn(gitDir, 'for-each-ref', '--format=%(refname)').trim().split('\n')).toEqual(['refs/heads/main', `refs/stormvault/tmp/${running}`]);
    await next.close();
  });

  it('stores queued together land in order, one commit each: unchanged against the batch itself, a failing sameContent fails alone', async () => {
    await store('g/x', 'x0\n');
    const boom = () => {
      throw new Error('pattern budget exceeded');
    };
    const at = (s: number) => `2026-03-01T10:00:0${s}Z`;
    // Queued in one tick: the first is written alone, the other five make one batch behind it.
    const results = await Promise.allSettled([
      store('g/x', 'x1\n', at(1)),
      store('g/x', 'x2\n', at(2)),
      store('g/x', 'x2\n', at(3)), // the same as the one before it in the batch: unchanged
      store('g/y', 'y1\n', at(4)),
      store('g/x', 'x3\n', at(5), { sameContent: boom }),
      store('g/x', 'x1\n', at(6)), // x1 again after x2: a new version
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const v = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
    expect(v.map((r) => r?.changed ?? null)).toEqual([true, true, false, true, null, true]);
    expect(v[2]!.storageRef).toBe(v[1]!.storageRef);
    expect((results[4] as PromiseRejectedResult).reason.message).toMatch(/pattern budget/);
    for (const [i, content] of [[0, 'x1\n'], [1, 'x2\n'], [2, 'x2\n'], [3, 'y1\n'], [5, 'x1\n']] as const) {
      expect(String(await sut.readBuffer(v[i]!.storageRef)), `store ${i}`).toBe(content);
    }
    expect(gitIn(gitDir, 'log', '--format=%s|%aI', 'main').trim().split('\n')).toEqual([
      `update g/x|2026-03-01T10:00:06+00:00`,
      `update g/y|2026-03-01T10:00:04+00:00`,
      `update g/x|2026-03-01T10:00:02+00:00`,
      `update g/x|2026-03-01T10:00:01+00:00`,
      `update g/x|2026-03-01T10:00:00+00:00`,
    ]);
    const versions = [];
    for await (const h of sut.history()) versions.push(h.storageRef);
    expect(versions.slice(0, 4)).toEqual([v[5]!.storageRef, v[3]!.storageRef, v[1]!.storageRef, v[0]!.storageRef]);
    gitIn(gitDir, 'fsck', '--strict', '--no-progress');
  });

  it('reads objects through one long-lived cat-file and lists versions with their blob and sizes', async () => {
    await store('core/a', 'alpha\n');
    await store('core/b', 'beta beta\n');
    const versions = [];
    for await (const v of sut.history()) versions.push(v);
    expect(versions.map((v) => [v.relPath, v.valid])).toEqual([
      ['core/b', true],
      ['core/a', true],
    ]);
    const sizes = await sut.objectSizes(versions.map((v) => v.blob).concat('f'.repeat(40)));
    expect([...sizes.values()]).toEqual([10, 6]);
    const reads = await Promise.all(versions.map((v) => sut.readBuffer(v.storageRef)));
    expect(reads.map(String)).toEqual(['beta beta\n', 'alpha\n']);
    expect(await sut.readObject('f'.repeat(40))).toBeNull();
    expect(await sut.contains(versions[1]!.storageRef)).toBe(true);
    expect(await sut.contains(`main:core/a@${'f'.repeat(40)}`)).toBe(false);
    await sut.close();
  });

  it('two repository objects on one folder (two worker processes) share it safely', async () => {
    // Separate objects do not share the in-process queue, so they race on the branch's compare-and-swap.
    const other = new GitBackupRepository({ gitDir });
    const third = new GitBackupRepository({ gitDir });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        [sut, other, third][i % 3]!.store({ relPath: `g/d${i}`, content: Buffer.from(`c${i}`), collectedAt: new Date(), author }),
      ),
    );
    expect(results.every((r) => r.changed)).toBe(true);
    expect(gitIn(gitDir, 'rev-list', '--count', 'main').trim()).toBe('10');
    gitIn(gitDir, 'fsck', '--strict', '--no-progress');
  });
});
