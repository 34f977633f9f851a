/**
 * bench/blob-scan (issue 8): how fast BlobStore.scan() walks a tree, against `find` and the tree walker it
 * replaces (src/storage/tree-walker.ts). Index reconciliation of a million files is driven by this scan.
 *
 *   npx tsx bench/blob-scan.ts                          # builds 200,000 files in one user's folder
 *   npx tsx bench/blob-scan.ts --files 1000000 --users 1000
 *   npx tsx bench/blob-scan.ts --root /path/to/storage  # an existing tree (read only)
 *
 * Each contender runs REPEAT times on a warm cache (one untimed `find` first); the best time is printed
 * with its ratio to `find <root> -printf '%s %T@ %p\n' > /dev/null`. Target: scan within 1.2× the walker.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../src/storage/fs-blob-store.ts';
import { TEMP_PREFIX } from '../src/storage/safe-path.ts';
import { DiskTreeReader } from '../src/storage/tree-walker.ts';
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

async function walkerCount(root: string): Promise<number> {
  const reader = new DiskTreeReader();
  let n = 0;
  const visit = async (dir: string): Promise<void> => {
    for (const e of await reader.listDirectory(dir, (name) => name.startsWith(TEMP_PREFIX))) {
      n++;
      if (e.kind === 'dir') await visit(path.join(dir, e.name));
    }
  };
  await visit(root);
  return n;
}

async function scanCount(root: string): Promise<number> {
  let n = 0;
  for await (const batch of new FsBlobStore(root).scan('')) n += batch.length;
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
  const walker = await best(() => walkerCount(root));
  const scan = await best(() => scanCount(root));
  console.log(`blob-scan: ${entries} entries under ${root}`);
  console.log(`  find -printf          ${findTime.ms.toFixed(0).padStart(7)} ms   (baseline)`);
  console.log(`  DiskTreeReader walk   ${walker.ms.toFixed(0).padStart(7)} ms   ${(walker.ms / findTime.ms).toFixed(2)}x find   (${walker.entries} entries, unsorted)`);
  console.log(`  FsBlobStore.scan      ${scan.ms.toFixed(0).padStart(7)} ms   ${(scan.ms / findTime.ms).toFixed(2)}x find   ${(scan.ms / walker.ms).toFixed(2)}x walker   (${scan.entries} entries, sorted, validated)`);
  const pass = scan.ms <= 1.2 * walker.ms;
  console.log(`\n  ${pass ? 'PASS' : 'MISS'}: scan ${(scan.ms / walker.ms).toFixed(2)}x the walker (target <= 1.2x)`);
  process.exitCode = pass ? 0 : 1;
}

await main();
