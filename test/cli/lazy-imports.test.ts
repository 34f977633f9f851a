import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Issue 12 (CLI start-up): a command pays for every package it loads, on every run. These packages are
// needed only by some runs (a progress bar on a terminal, a WebDAV request, a Redis throttle store), so a
// plain `--help` or an audit must not load them. Watched through a module resolve hook in a real process,
// as a user runs the CLI (the sources through tsx: dist/ is not built here).

const BIN = path.resolve(import.meta.dirname, '../../bin/stormvault.js');

/** Never loaded by `--help` or an empty audit: [what, how its resolved URL ends]. */
const NOT_LOADED: Array<[string, RegExp]> = [
  ['cli-progress (only for a bar on a terminal)', /node_modules\/cli-progress\//],
  ['fast-xml-parser (only for a WebDAV body)', /node_modules\/fast-xml-parser\//],
  ["rate-limiter-flexible's index, which loads every store it ships", /node_modules\/rate-limiter-flexible\/index\.js$/],
  // ssh2 requires cpu-features (native) itself: ssh2 not loaded means neither is.
  ['ssh2 (only for a collection or to check a private key)', /node_modules\/ssh2\//],
  ['diff (only for a stored-backups diff)', /node_modules\/diff\//],
  ['@aws-sdk/client-s3 (only for an S3 mirror or blob store)', /node_modules\/@aws-sdk\//],
];

/**
 * Never loaded by an audit of the files index: the modules it does not use (createApp with `modules`),
 * and the packages only they load. Before, createApp imported and built every module for every command.
 */
const NOT_LOADED_BY_AUDIT: Array<[string, RegExp]> = [
  ...(['publishing', 'backups', 'collect', 'webhooks', 'alerts', 'metrics', 'records', 'sync', 'organizations', 'shares', 'webdav', 'auth', 'devices', 'health', 'admin-tasks'] as const).map(
    // Its module, service, routes and repository files (the CLI's own commands load a few pure helpers, such as backups.json.ts, for every run).
    (name): [string, RegExp] => [`the ${name} module`, new RegExp(`/src/modules/${name}/[^/]*\\.(module|service|routes|repository)\\.ts$`)],
  ),
  ['the HTTP server', /\/src\/http\/server\.ts$/],
  ['prom-client (only for GET /metrics)', /node_modules\/prom-client\//],
  ['jose (only for access tokens)', /node_modules\/jose\//],
  ['the streams (only for backups and collection)', /\/src\/streams\//],
  ['mime-types (only when a file name is given a type; an empty audit gives none)', /node_modules\/mime-types\//],
  ['cron-parser and luxon (only to compute or check a schedule: a worker, not a one-shot command)', /node_modules\/(cron-parser|luxon)\//],
  ['pino (the CLI loads it only when it writes a log line; an empty audit writes none)', /node_modules\/pino\//],
  ["bindings (better-sqlite3 is handed its addon's path: no search)", /node_modules\/(bindings|file-uri-to-path)\//],
  ['rate-limiter-flexible and the throttles (only for logins and share passwords)', /(node_modules\/rate-limiter-flexible\/|\/src\/throttle\/)/],
];

describe('CLI commands load only what they use (issue 12, CLI start-up)', () => {
  let dir: string;
  let register: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-lazy-'));
    const hooks = path.join(dir, 'hooks.mjs');
    await writeFile(
      hooks,
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.SV_RESOLVED_LOG, r.url + '\\n');
  return r;
}
`,
    );
    register = path.join(dir, 'register.mjs');
    // require() calls (createRequire, CommonJS packages) do not pass the ESM resolve hook: logged as they load.
    await writeFile(
      register,
      `import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';
register(${JSON.stringify(pathToFileURL(hooks).href)});
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (!Module.isBuiltin(request)) {
    try {
      appendFileSync(process.env.SV_RESOLVED_LOG, pathToFileURL(Module._resolveFilename(request, parent, isMain)).href + '\\n');
    } catch {}
  }
  return load.apply(this, arguments);
};
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function resolvedBy(name: string, args: string[]): Promise<string[]> {
    const log = path.join(dir, `${name}.log`);
    const dataDir = path.join(dir, `${name}-data`);
    const env: Record<string, string | undefined> = { ...process.env, STORMVAULT_NO_DIST: '1', STORMVAULT_DATA_DIR: dataDir, SV_RESOLVED_LOG: log, STORMVAULT_LOG_LEVEL: 'silent' };
    delete env.STORMVAULT_DATABASE_URL;
    delete env.STORMVAULT_CONFIG_FILE;
    delete env.NODE_OPTIONS;
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, BIN, ...args], { env, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  }

  it.each([
    ['help', ['--help']],
    ['audit', ['rebuild-index', '--json']],
  ])('%s', async (name, args) => {
    const urls = await resolvedBy(name, args);
    // The hook saw the command's own modules (else this test would pass for the wrong reason).
    expect(urls.some((u) => u.endsWith('/src/cli/program.ts'))).toBe(true);
    for (const [what, pattern] of NOT_LOADED) expect(urls.filter((u) => pattern.test(u)), what).toEqual([]);
  }, 180_000);

  it('an audit of the files index builds only the index-sync module and what it needs', async () => {
    const urls = await resolvedBy('audit-modules', ['rebuild-index', '--json']);
    // It did load what an audit needs (else this test would pass for the wrong reason).
    for (const needed of ['/src/modules/index-sync/index-sync.module.ts', '/src/modules/files/files.module.ts', '/src/db/migrator.ts']) {
      expect(urls.some((u) => u.endsWith(needed)), needed).toBe(true);
    }
    for (const [what, pattern] of NOT_LOADED_BY_AUDIT) expect(urls.filter((u) => pattern.test(u)), what).toEqual([]);
  }, 180_000);
});
