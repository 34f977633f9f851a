#!/usr/bin/env node
// Runs the compiled JavaScript in dist/, building it first when it is not a build of the current src/
// (`npm start` and `npm run build` do the same), so `npx stormvault` always runs the code in src/.
// Plain JavaScript starts several times faster than the sources through tsx (issue 12: `--help` went
// from ~0.5 s to about 1.5x `node -e 0`; bench/cli-startup.ts) and saves tsx's ~30 MB per process.
// Only when dist/ cannot be built (a read-only install, say) or STORMVAULT_NO_DIST=1 are the TypeScript
// sources run through tsx.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDistFresh } from '../scripts/dist-fresh.mjs';

// Server memory: `npm start` runs this file as `node --max-semi-space-size=4 …` (see package.json and
// docs/files.md). The young-generation size is fixed when V8 sets up its heap, so it cannot be set from
// here at run time (v8.setFlagsFromString measured no effect); other launchers can pass it through
// NODE_OPTIONS.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function distUsable() {
  if (process.env.STORMVAULT_NO_DIST === '1') return false;
  if (isDistFresh(root)) return true;
  try {
    // Loaded only when stale: the fresh path costs one stat per source file.
    const { buildDist } = await import('../scripts/build.mjs');
    await buildDist();
    return true;
  } catch (err) {
    process.stderr.write(`stormvault: could not build dist/ (${err.message}); running the sources through tsx\n`);
    return false;
  }
}

if (await distUsable()) {
  await import('../dist/main.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
