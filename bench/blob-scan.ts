/**
 * bench/blob-scan (issue 8): how fast BlobStore.scan() walks a tree, against `find`: plain, and with the
 * options index reconciliation of the files scope uses (NFD names as NFC, temp files, the files API's
 * limits, a linked user folder followed), which drive the reconciliation of a million files.
 *
 *   npx tsx bench/blob-scan.ts                          # builds 200,000 files in one user's folder
 *   npx tsx bench/blob-scan.ts --files 1000000 --users 1000
 *   npx tsx bench/blob-scan.ts --root /path/to/storage  # an existing tree (read only)
 *
 * Each contender runs REPEAT times on a warm cache (one untimed `find` first); the best time is printed
 * with its ratio to `find <root> -printf '%s %T@ %p\n' > /dev/null`. Target: the reconciliation options
 * cost at most 10% over the plain scan.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../src/storage/fs-blob-store.ts';
import type { ScanOptions } from '../src/storage/blob-store.port.ts';
import { parseBenchArgs } from './bench-args.ts';

const opts = parseBenchArgs(import.meta.url, {
  files: { type: 'string', default: '200000' },
  users: { type: 'string', default: '1' },
  root: { type: 'string' },
  dir: { type: 'string', default: path.join(tmpdir(), 'stormvault-bench-scan') },
});
const REPEAT = 3;

/** `files` empty files over `users` user folders, 10 × 10 sub-folders each (the index-rebuild shape). */
function buildTree(root: string, files: number, users: number): void {
  const perUser = Math.ceil(files / users);
  let made = 0;
  for (let u = 0; u < users && made < files; u++) {
    for (let i = 0; i < perUser && made < files; i++, made++) {
      const dir = path.join(root, `user-${String(u).padStart(5, '0')}`, `d${i % 10}`, `e${Math.floor(i / 10) % 10}`);
      if (i < 100) mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `file-${i}.txt`), '');
    }
  }
}

async function best(fn: () => Promise<number>): Promise<{ ms: number; entries: number }> {
  let ms = Infinity;
  let entries = 0;
  for (let i = 0; i < REPEAT; i++) {
    const t0 = performance.now();
    entries = await fn();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, entries };
}

/** What files reconciliation asks of the scan (modules/index-sync/files-index-side.ts). */
const RECONCILE_OPTIONS: ScanOptions = { nfc: true, temps: true, followLink: true, limits: { depth: 64, keyBytes: 3072 } };

async function scanCount(root: string, options?: ScanOptions): Promise<number> {
  let n = 0;
  for await (const batch of new FsBlobStore(root).scan('', options)) n += batch.length;
  return n;
}

async function main(): Promise<void> {
  let root = opts.root;
  if (!root) {
    root = path.join(opts.dir, `tree-${opts.files}-${opts.users}`);
    if (!existsSync(root)) {
      console.log(`building ${opts.files} files over ${opts.users} user(s) in ${root} (reused next time)…`);
      buildTree(root, Number(opts.files), Number(opts.users));
    }
  }
  const find = () => {
    const r = spawnSync('sh', ['-c', `find '${root}' -printf '%s %T@ %p\\n' > /dev/null`]);
    if (r.status !== 0) throw new Error('find failed');
  };
  find();
  const findTime = await best(async () => (find(), 0));
  const entries = Number(execFileSync('sh', ['-c', `find '${root}' -mindepth 1 | wc -l`]).toString());
  const scan = await best(() => scanCount(root));
  const reconcile = await best(() => scanCount(root, RECONCILE_OPTIONS));
  console.log(`blob-scan: ${entries} entries under ${root}`);
  console.log(`  find -printf          ${findTime.ms.toFixed(0).padStart(7)} ms   (baseline)`);
  console.log(`  FsBlobStore.scan      ${scan.ms.toFixed(0).padStart(7)} ms   ${(scan.ms / findTime.ms).toFixed(2)}x find   (${scan.entries} entries, sorted, validated)`);
  console.log(`  … files options       ${reconcile.ms.toFixed(0).padStart(7)} ms   ${(reconcile.ms / findTime.ms).toFixed(2)}x find   ${(reconcile.ms / scan.ms).toFixed(2)}x plain scan   (${reconcile.entries} entries)`);
  const pass = reconcile.ms <= 1.1 * scan.ms;
  console.log(`\n  ${pass ? 'PASS' : 'MISS'}: the reconciliation options cost ${(reconcile.ms / scan.ms).toFixed(2)}x the plain scan (target <= 1.1x)`);
  process.exitCode = pass ? 0 : 1;
}

await main();
