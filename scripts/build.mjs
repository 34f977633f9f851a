#!/usr/bin/env node
// Transpiles src/**/*.ts to dist/**/*.js, file by file (no bundling, no type check: `npm run typecheck`
// does that), so `npm start` runs plain JavaScript without the tsx loader (~30 MB of the server's memory).
// Relative `.ts` import specifiers (tsconfig allowImportingTsExtensions) are rewritten to `.js`.
//
//   node scripts/build.mjs          build when src/ changed since the last build (a few ms otherwise)
//   node scripts/build.mjs --force  always build
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDistFresh, STAMP } from './dist-fresh.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}

// Data files beside the sources (device models, src/modules/collect/models/*.json) are copied as they are.
function dataFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return dataFiles(full);
    return e.name.endsWith('.json') ? [full] : [];
  });
}

// esbuild prints specifiers with double quotes; only relative ones are ours to rewrite.
const TS_SPECIFIER = /((?:\bfrom|\bimport)\s*\(?\s*)"(\.{1,2}\/[^"]*?)\.ts"/g;

export async function buildDist({ force = false } = {}) {
  if (!force && isDistFresh(root)) return false;
  // Loaded only when a build is needed: the up-to-date check alone stays a few milliseconds.
  const { build } = await import('esbuild');
  const started = new Date();
  const src = path.join(root, 'src');
  const result = await build({
    entryPoints: sources(src),
    outbase: src,
    outdir: path.join(root, 'dist'),
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked', // used only under `node --enable-source-maps`
    write: false,
    logLevel: 'warning',
  });
  // Built beside dist/ and swapped in with renames, so a process already running dist/ never sees a half-written tree.
  const tmp = path.join(root, `.dist-tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const distDir = path.join(root, 'dist');
  for (const file of result.outputFiles) {
    const target = path.join(tmp, path.relative(distDir, file.path));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, file.path.endsWith('.js') ? file.text.replace(TS_SPECIFIER, '$1"$2.js"') : file.contents);
  }
  for (const file of dataFiles(src)) {
    const target = path.join(tmp, path.relative(src, file));
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
  writeFileSync(path.join(tmp, STAMP), `built from src/ at ${started.toISOString()}\n`);
  // The stamp carries the start time: a source edited while we were building makes dist stale, not fresh.
  utimesSync(path.join(tmp, STAMP), started, started);
  const old = path.join(root, `.dist-old-${process.pid}`);
  try {
    renameSync(distDir, old);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  try {
    renameSync(tmp, distDir);
  } catch (err) {
    // A concurrent build put its dist/ in place between our two renames: it is as fresh as ours.
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const built = await buildDist({ force: process.argv.includes('--force') });
  if (built) console.error(`stormvault: built dist/ from src/ in ${Math.round(performance.now() - t0)} ms`);
}
