import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isDistFresh, STAMP } from '../../scripts/dist-fresh.mjs';

// bin/stormvault.js runs dist/ only when this says it is a build of the current src/; otherwise the sources.
describe('isDistFresh', () => {
  let root: string;
  const at = (file: string, seconds: number) => utimesSync(file, seconds, seconds);

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'sv-dist-fresh-'));
    mkdirSync(path.join(root, 'src', 'a'), { recursive: true });
    writeFileSync(path.join(root, 'src', 'a', 'x.ts'), '');
    mkdirSync(path.join(root, 'scripts'));
    writeFileSync(path.join(root, 'scripts', 'build.mjs'), '');
    for (const p of ['src/a/x.ts', 'src/a', 'src', 'scripts/build.mjs']) at(path.join(root, p), 1000);
    mkdirSync(path.join(root, 'dist'));
    writeFileSync(path.join(root, 'dist', STAMP), '');
    at(path.join(root, 'dist', STAMP), 2000);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is fresh when the build started after the last change under src/', () => {
    expect(isDistFresh(root)).toBe(true);
  });

  it('is stale when a source file changed after the build started', () => {
    at(path.join(root, 'src', 'a', 'x.ts'), 3000);
    expect(isDistFresh(root)).toBe(false);
  });

  it('is stale when a file was added or removed in a folder (the folder changed)', () => {
    at(path.join(root, 'src', 'a'), 3000);
    expect(isDistFresh(root)).toBe(false);
  });

  it('is stale when the build script changed after the build started (dist/ is built differently now)', () => {
    at(path.join(root, 'scripts', 'build.mjs'), 3000);
    expect(isDistFresh(root)).toBe(false);
  });

  it('is stale when the web UI source changed after the build started (dist/web is built from web/)', () => {
    mkdirSync(path.join(root, 'web', 'files'), { recursive: true });
    writeFileSync(path.join(root, 'web', 'files', 'v.tsx'), '');
    for (const p of ['web/files/v.tsx', 'web/files', 'web']) at(path.join(root, p), 1000);
    expect(isDistFresh(root)).toBe(true);
    at(path.join(root, 'web', 'files', 'v.tsx'), 3000);
    expect(isDistFresh(root)).toBe(false);
  });

  it('is stale without a stamp or without dist/', () => {
    rmSync(path.join(root, 'dist', STAMP));
    expect(isDistFresh(root)).toBe(false);
    rmSync(path.join(root, 'dist'), { recursive: true });
    expect(isDistFresh(root)).toBe(false);
  });
});
