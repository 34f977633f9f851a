#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ when it is a build of the current src/ (`npm start` and
// `npm run build` make it), otherwise the TypeScript sources through tsx, so `npx stormvault` works right
// after `npm install` and always runs the code in src/. dist/ saves the tsx loader's ~30 MB per process.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { isDistFresh } from '../scripts/dist-fresh.mjs';

// V8 grows the young generation when much of it survives a collection. At start-up nearly everything does
// (compiled modules, schemas, the app), so it grew to its maximum (2 x 16 MB, all resident) and stayed there
// for the life of the server: about a fifth of its memory. Keeping it at its initial size saves ~25 MB idle
// and keeps a 1 GiB upload's peak ~10 MB above idle (with 64 KiB upload buffers, see storage/user-files.ts),
// which is what brings the server under its 150 MB target. The price, measured in docs/files.md: in many
// uploads V8 falls into a mark-compact every ~14 MB received, which doubles that upload's CPU time; with
// the default young generation it does not. This flag is read on each growth decision, so setting it
// before the app loads is enough; it cannot be given to `node` here since npx runs this file directly.
// Delete this line to trade the memory target for consistent upload speed.
v8.setFlagsFromString('--semi-space-growth-factor=1');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (isDistFresh(root)) {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
