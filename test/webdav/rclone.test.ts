import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli.ts';
import { startDavServer, type DavServer } from './helpers.ts';
import { toolAvailable } from './tools.ts';

/**
 * Issue 13: rclone as a real WebDAV client. A tree of a few hundred files of mixed sizes with unicode
 * names goes up, is checked byte for byte, moved and deleted through rclone; then the REST API and
 * `rebuild-index --mode audit` agree with what rclone sees.
 */
const NAMES = ['résumé', 'naïve café', '日本語', 'emoji 🎉', 'Ωmega', 'straße', 'plain'];

function rclone(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('rclone', args, { env: { ...process.env, ...env }, timeout: 240_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe.runIf(toolAvailable('rclone', ['version']))('rclone against /dav/', () => {
  let s: DavServer;
  let local: string;
  let env: Record<string, string>;
  const files = new Map<string, string>();

  beforeAll(async () => {
    s = await startDavServer();
    local = await mkdtemp(path.join(tmpdir(), 'stormvault-rclone-'));
    // ~300 files in 3 levels, sizes from 0 bytes to 300 KiB.
    let n = 0;
    for (const top of NAMES) {
      for (const sub of NAMES.slice(0, 6)) {
        await mkdir(path.join(local, 'tree', top, sub), { recursive: true });
        for (let i = 0; i < 7; i++) {
          const rel = path.join('tree', top, sub, `${NAMES[(i + n) % NAMES.length]} ${i}.bin`);
          const size = [0, 1, 100, 4096, 65_537, 300_000, 12][i % 7]!;
          const content = Buffer.alloc(size, (n * 31 + i) % 251);
          await writeFile(path.join(local, rel), content);
          files.set(rel, createHash('sha256').update(content).digest('hex'));
          n++;
        }
      }
    }
    const obscured = await rclone(['obscure', s.alice.key], {});
    env = {
      RCLONE_CONFIG_SV_TYPE: 'webdav',
      RCLONE_CONFIG_SV_URL: s.davUrl,
      RCLONE_CONFIG_SV_VENDOR: 'other',
      RCLONE_CONFIG_SV_USER: s.alice.user.username,
      RCLONE_CONFIG_SV_PASS: obscured.stdout.trim(),
      RCLONE_CONFIG: '/dev/null',
    };
  });
  afterAll(async () => {
    await s?.cleanup();
    if (local) await rm(local, { recursive: true, force: true });
  });

  it('copies, checks, moves and deletes a unicode tree; REST and the index audit agree', async () => {
    expect(files.size).toBeGreaterThan(250);
    const up = await rclone(['copy', path.join(local, 'tree'), 'sv:tree', '--transfers', '4'], env);
    expect(up.code, up.stderr).toBe(0);
    const check = await rclone(['check', '--download', path.join(local, 'tree'), 'sv:tree'], env);
    expect(check.code, check.stderr).toBe(0);

    // Move one folder (server-side MOVE) and delete another through rclone.
    const moved = await rclone(['moveto', `sv:tree/${NAMES[0]}`, `sv:moved/${NAMES[0]}`], env);
    expect(moved.code, moved.stderr).toBe(0);
    const purged = await rclone(['purge', `sv:tree/${NAMES[1]}`], env);
    expect(purged.code, purged.stderr).toBe(0);
    const deleted = await rclone(['delete', `sv:tree/${NAMES[2]}`], env);
    expect(deleted.code, deleted.stderr).toBe(0);

    // What rclone sees now.
    const ls = await rclone(['lsjson', '-R', '--files-only', '--hash', 'sv:'], env);
    expect(ls.code, ls.stderr).toBe(0);
    const seen = (JSON.parse(ls.stdout) as Array<{ Path: string; Size: number }>).map((e) => `${e.Path} ${e.Size}`).sort();
    const expected = [...files.keys()]
      .map((rel) => rel.split(path.sep).join('/').slice('tree/'.length))
      .filter((rel) => !rel.startsWith(`${NAMES[1]}/`) && !rel.startsWith(`${NAMES[2]}/`))
      .map((rel) => (rel.startsWith(`${NAMES[0]}/`) ? `moved/${rel}` : `tree/${rel}`));
    expect(seen.map((l) => l.slice(0, l.lastIndexOf(' '))).sort()).toEqual(expected.sort());

    // The REST API lists the same files with the same sizes.
    const viaRest: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let cursor: string | undefined;
      do {
        const q = new URLSearchParams({ limit: '1000', ...(cursor ? { cursor } : {}) });
        const res = await fetch(`${s.base}/api/v1/dirs/${dir.split('/').map(encodeURIComponent).join('/')}?${q}`, { headers: s.alice.headers });
        const body = (await res.json()) as { entries: Array<{ path: string; size: number; is_directory: boolean }>; next_cursor: string | null };
        for (const e of body.entries) {
          if (e.is_directory) await walk(e.path);
          else viaRest.push(`${e.path} ${e.size}`);
        }
        cursor = body.next_cursor ?? undefined;
      } while (cursor);
    };
    for (const top of ['tree', 'moved']) await walk(top);
    expect(viaRest.sort()).toEqual(seen);

    // And the index agrees with the disk: nothing missing, orphaned or stale.
    const audit = await runCliCaptured(['rebuild-index', '--mode', 'audit', '--user-id', s.alice.user.id, '--json'], {
      STORMVAULT_DATA_DIR: s.t.config.dataDir,
      STORMVAULT_DATABASE_URL: s.t.config.database.url,
      STORMVAULT_LOG_LEVEL: 'silent',
      STORMVAULT_TASKS_BACKEND: 'immediate',
    });
    expect(audit.code, audit.stderr).toBe(0);
    expect(JSON.parse(audit.stdout)).toMatchObject({ missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0, errors: [] });
  }, 300_000);
});
