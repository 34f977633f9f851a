#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ when it is a build of the current src/ (`npm start` and
// `npm run build` make it), otherwise the TypeScript sources through tsx, so `npx stormvault` works right
// after `npm install` and always runs the code in src/. dist/ saves the tsx loader's ~30 MB per process.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDistFresh } from '../scripts/dist-fresh.mjs';

// Server memory: `npm start` runs this file as `node --max-semi-space-size=4 …` (see package.json and
// docs/files.md). The young-generation size is fixed when V8 sets up its heap, so it cannot be set from
// here at run time (v8.setFlagsFromString measured no effect); other launchers can pass it through
// NODE_OPTIONS.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (isDistFresh(root)) {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
