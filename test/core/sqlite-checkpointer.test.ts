import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.ts';

// WAL checkpoints on a thread of their own for serve and worker (src/db/sqlite-checkpointer.ts).
describe('SQLite checkpoint thread', () => {
  let dir: string;
  let handle: DatabaseHandle | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-checkpoint-'));
  });
  afterEach(async () => {
    await handle?.destroy();
    handle = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const until = async (what: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** ~1.5 MB of rows in 150 commits (~450 pages): under both the default autocheckpoint (1,000 pages) and the backstop. */
  const write = (sqlite: NonNullable<DatabaseHandle['sqlite']>) => {
    sqlite.exec('CREATE TABLE t (v blob)');
    const insert = sqlite.prepare('INSERT INTO t VALUES (randomblob(10000))');
    for (let i = 0; i < 150; i++) insert.run();
  };

  it('copies the WAL into the database file off the event loop, with the commit-time checkpoint moved up to a backstop', async () => {
    const file = path.join(dir, 'a.db');
    handle = createDatabase(file, { checkpointThread: { everyMs: 20 } });
    const sqlite = handle.sqlite!;
    expect(sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000);
    write(sqlite);
    const runs = handle.checkpointer!.runs;
    await until(() => handle!.checkpointer!.runs >= runs + 2);
    // The pages reached the database file although no commit ran a checkpoint (the WAL is far below both limits).
    expect(statSync(file).size).toBeGreaterThan(1_500_000);
  });

  it('without the thread the same writes stay in the WAL (what the first test tells apart)', async () => {
    const file = path.join(dir, 'b.db');
    handle = createDatabase(file);
    const sqlite = handle.sqlite!;
    expect(sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    write(sqlite);
    await new Promise((r) => setTimeout(r, 100));
    expect(statSync(file).size).toBeLessThan(100_000);
  });

  it('stops with the database: the thread exits first, then the last close checkpoints and removes the WAL', async () => {
    const file = path.join(dir, 'c.db');
    const h = createDatabase(file, { checkpointThread: { everyMs: 10_000 } });
    write(h.sqlite!);
    expect(existsSync(`${file}-wal`)).toBe(true);
    await h.destroy();
    expect(existsSync(`${file}-wal`)).toBe(false);
    expect(statSync(file).size).toBeGreaterThan(1_500_000);
  });

  it('gives the connection its own checkpoints back when the thread is stopped', async () => {
    const file = path.join(dir, 'd.db');
    handle = createDatabase(file, { checkpointThread: true });
    await handle.checkpointer!.stop();
    expect(handle.sqlite!.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('is never started for an in-memory database', () => {
    handle = createDatabase(':memory:', { checkpointThread: true });
    expect(handle.checkpointer).toBeUndefined();
  });
});
