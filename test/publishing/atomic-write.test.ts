import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { PublishContentStore, type WriteStep } from '../../src/storage/publish-content-store.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'crash-write.ts');

function runWriter(root: string, content: string, killAt: WriteStep | 'never'): Promise<{ code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, root, 'site', 'app/config.json', content, killAt], {
    cwd: path.join(import.meta.dirname, '..', '..'),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe(`${PublishContentStore.name}: a write killed at any step leaves the old or the new file`, () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sv-pub-crash-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const writeHere = async (content: string) => {
    const store = new PublishContentStore(new FsBlobStore(root));
    await store.ensureSite('site');
    await store.commitKeepingPrev(await store.stage('site', 'app/config.json', Readable.from([Buffer.from(content)]), {}));
  };
  const file = (name = 'config.json') => readFile(path.join(root, 'site', 'app', name), 'utf8');

  it('first write, then a replace that completes', async () => {
    expect(await runWriter(root, '{"v":1}', 'never')).toEqual({ code: 0, signal: null });
    expect(await runWriter(root, '{"v":2}', 'never')).toEqual({ code: 0, signal: null });
    expect(await file()).toBe('{"v":2}');
    expect(await file('config.json.prev')).toBe('{"v":1}');
  });

  const steps: Array<{ step: WriteStep; current: string; prev: string }> = [
    // Killed after the temp file is written and fsynced: nothing visible changed.
    { step: 'staged', current: '{"v":2}', prev: '{"v":1}' },
    // After linking the current file to a temp name: still old everywhere.
    { step: 'prev-linked', current: '{"v":2}', prev: '{"v":1}' },
    // After .prev took the current version: the path still holds it too (never missing).
    { step: 'prev-renamed', current: '{"v":2}', prev: '{"v":2}' },
    // After the final rename: new at the path, the replaced version in .prev.
    { step: 'renamed', current: '{"v":3}', prev: '{"v":2}' },
  ];
  for (const { step, current, prev } of steps) {
    it(`killed at "${step}": ${current} at the path, ${prev} in .prev, both whole`, async () => {
      // Back to a known state: v2 at the path, v1 in .prev.
      await rm(path.join(root, 'site'), { recursive: true, force: true });
      await writeHere('{"v":1}');
      await writeHere('{"v":2}');
      const outcome = await runWriter(root, '{"v":3}', step);
      expect(outcome.signal).toBe('SIGKILL');
      expect(await file()).toBe(current);
      expect(await file('config.json.prev')).toBe(prev);
      // Whatever is left over is a temp file no listing or scan shows.
      const names = await readdir(path.join(root, 'site', 'app'));
      expect(names.filter((n) => !n.startsWith('.sv-tmp-')).sort()).toEqual(['config.json', 'config.json.prev']);
      const store = new PublishContentStore(new FsBlobStore(root));
      expect(await store.listFiles('site', '')).toEqual(['app/config.json']);
    }, 30_000);
  }
});
