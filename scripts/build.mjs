#!/usr/bin/env node
// Bundles src/main.ts into dist/ (no type check: `npm run typecheck` does that), so `npm start` and
// `npx stormvault` run plain JavaScript without the tsx loader (~30 MB of the server's memory).
//
// Issue 12 (CLI start-up): the bundle is split at every dynamic import(), so a command loads only the
// chunks it imports (src/cli/ imports what a command needs inside its action). A few dependencies are
// bundled in, because Node's ESM loader spends most of a short command's time resolving and linking
// their hundreds of small files (kysely ~280, zod ~150): bundled, kysely costs ~10 ms of CPU instead of
// ~200 ms. Only pure-JavaScript packages that never read their own files at run time are bundled
// (BUNDLED); the others stay in node_modules, imported as usual (native addons, static assets, workers).
//
//   node scripts/build.mjs          build when src/ changed since the last build (a few ms otherwise)
//   node scripts/build.mjs --force  always build
import { mkdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDistFresh, STAMP } from './dist-fresh.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Packages bundled into dist/ (see above); every other bare import stays external. */
const BUNDLED = new Set([
  // Not cron-parser/luxon: src/lib/cron.ts requires them on first use (most commands never compute a tick).
  ...['kysely', 'zod', 'commander'],
  ...['pg', 'pg-pool', 'pg-protocol', 'pg-types', 'pg-int8', 'pgpass', 'split2', 'pg-connection-string'],
  // Not mime-types/mime-db: bundled, mime-db's table becomes a 150 KB object literal that costs every command
  // ~30 ms to parse and evaluate; from node_modules it is db.json, read with JSON.parse in half that.
  ...['postgres-array', 'postgres-bytea', 'postgres-date', 'postgres-interval', 'xtend'],
  // Not rate-limiter-flexible: src/throttle requires one of its files by path, and two copies would break instanceof.
  ...['prom-client', 'tdigest', 'bintrees', '@opentelemetry/api', 'jose'],
  // pino and its dependencies: ~30 CommonJS files every command loads for its logger. pino reads a file of
  // its own only to start a transport worker (pino.transport()), which Stormvault never does.
  ...['pino', 'pino-std-serializers', '@pinojs/redact', 'safe-stable-stringify', 'quick-format-unescaped', 'sonic-boom', 'thread-stream'],
  ...['on-exit-leak-free', 'atomic-sleep', 'process-warning', 'real-require', 'pino-abstract-transport'],
]);

/** Bare specifier → package name (`@scope/name/sub` → `@scope/name`). */
const packageOf = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

const externals = {
  name: 'stormvault-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageOf(args.path)) ? undefined : { path: args.path, external: true }));
  },
};

/**
 * The web UI (issue 14): web/main.tsx (Preact) bundled for browsers into `outdir` (dist/web). Every
 * asset name carries a content hash (served with a year-long cache; src/http/web-ui.ts); index.html is
 * written from web/index.html with the hashed names filled in (served with no-cache). Views other than
 * login and files are split into chunks loaded on first use, which keeps the initial download small
 * (bench/web.ts). Resolves to the names of the initial script and stylesheet.
 */
export async function buildWeb({ outdir, build } = {}) {
  build ??= (await import('esbuild')).build;
  const web = path.join(root, 'web');
  const result = await build({
    entryPoints: [path.join(web, 'main.tsx')],
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    entryNames: '[name]-[hash]',
    chunkNames: 'chunks/[name]-[hash]',
    assetNames: 'assets/[name]-[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    tsconfig: path.join(web, 'tsconfig.json'),
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'none',
    write: true,
    logLevel: 'warning',
  });
  const outputs = Object.entries(result.metafile.outputs);
  const entry = outputs.find(([, o]) => o.entryPoint && path.resolve(root, o.entryPoint) === path.join(web, 'main.tsx'));
  if (!entry) throw new Error('web build: no output for web/main.tsx');
  const script = path.basename(entry[0]);
  const style = entry[1].cssBundle ? path.basename(entry[1].cssBundle) : null;
  // Chunks the entry imports statically are preloaded in parallel with it instead of after it is parsed.
  const preloads = entry[1].imports.filter((i) => i.kind === 'import-statement').map((i) => `<link rel="modulepreload" href="/${path.relative(outdir, path.resolve(root, i.path)).split(path.sep).join('/')}">`);
  const template = readFileSync(path.join(web, 'index.html'), 'utf8');
  const html = template
    .replace('<!-- STYLE -->', [style ? `<link rel="stylesheet" href="/${style}">` : '', ...preloads].join('\n'))
    .replace('<!-- SCRIPT -->', `<script type="module" src="/${script}"></script>`);
  writeFileSync(path.join(outdir, 'index.html'), html);
  return { script, style };
}

// Bundled CommonJS (commander) calls require() for Node built-ins; an ES module has none of its own.
const REQUIRE_BANNER = "import { createRequire as __svCreateRequire } from 'node:module'; const require = __svCreateRequire(import.meta.url);";

/**
 * The end state of this build's migrations on an empty SQLite database, as a JSON string
 * (src/db/sqlite-snapshot.ts; issue 12, CLI start-up: a new data dir's first command no longer runs
 * every migration). Captured by running the migrations themselves, from a bundle of
 * src/db/sqlite-snapshot-build.ts, which also checks that the snapshot reproduces the migrated database.
 * Null, with a warning, when that fails: dist/ then runs the migrations, as the sources do.
 */
export async function sqliteSnapshot(build, src = path.join(root, 'src')) {
  const bundle = path.join(root, `.dist-snapshot-${process.pid}.mjs`);
  try {
    await build({
      entryPoints: [path.join(src, 'db', 'sqlite-snapshot-build.ts')],
      outfile: bundle,
      bundle: true,
      plugins: [externals],
      banner: { js: REQUIRE_BANNER },
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'warning',
    });
    const { buildSqliteSnapshot } = await import(pathToFileURL(bundle).href);
    return JSON.stringify(await buildSqliteSnapshot());
  } catch (err) {
    console.error(`stormvault: no SQLite schema snapshot in dist/ (new databases run every migration): ${err.message}`);
    return null;
  } finally {
    rmSync(bundle, { force: true });
  }
}

export async function buildDist({ force = false } = {}) {
  if (!force && isDistFresh(root)) return false;
  // Loaded only when a build is needed: the up-to-date check alone stays a few milliseconds.
  const { build } = await import('esbuild');
  const started = new Date();
  const src = path.join(root, 'src');
  const snapshot = await sqliteSnapshot(build, src);
  const result = await build({
    entryPoints: [path.join(src, 'main.ts')],
    outdir: path.join(root, 'dist'),
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    // .mjs: Node knows the format from the name, instead of looking up the package.json scope of each
    // file it loads (~10% of a short command's start-up).
    outExtension: { '.js': '.mjs' },
    // Less to parse on every start; identifiers and names are kept, so stack traces read as the source.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    plugins: [externals],
    banner: { js: REQUIRE_BANNER },
    // A new SQLite database is created from this instead of running every migration (src/db/migrator.ts).
    // …and the names of this build's migrations, so an up-to-date database is recognised without loading them.
    ...(snapshot ? { define: { __STORMVAULT_SQLITE_SNAPSHOT__: JSON.stringify(snapshot), __STORMVAULT_MIGRATION_NAMES__: JSON.stringify(JSON.parse(snapshot).migrations) } } : {}),
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
    writeFileSync(target, file.contents);
  }
  await buildWeb({ outdir: path.join(tmp, 'web'), build });
  writeFileSync(path.join(tmp, STAMP), `built from src/ and web/ at ${started.toISOString()}\n`);
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
