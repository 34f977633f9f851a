import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(ROOT, 'node_modules', '.bin', 'depcruise');

/**
 * A tiny project breaking each rule of .dependency-cruiser.cjs once, next to edges the rules allow, so
 * `depcruise src` (as npm test runs it) is shown to catch exactly the violations and nothing else.
 */
const FIXTURE: Record<string, string> = {
  'src/errors.ts': 'export const E = 1;\n',
  'src/app.ts': "import { mkdir } from 'node:fs/promises';\nimport { S } from './modules/alpha/alpha.service.ts';\nexport const A = [mkdir, S];\n",
  'src/lib/a.ts': "import { B } from './b.ts';\nexport const A = () => B;\n",
  'src/lib/b.ts': "import { A } from './a.ts';\nexport const B = () => A;\n",
  'src/lib/c.ts': "import { E } from '../errors.ts';\nexport const C = E;\n",
  'src/storage/disk.ts': "import { statfs } from 'node:fs/promises';\nexport const D = statfs;\n",
  'src/http/server.ts': "import { S } from '../modules/alpha/alpha.service.ts';\nexport const H = S;\n",
  'src/tasks/worker.ts': "import { T } from '../modules/beta/beta.service.ts';\nexport const W = T;\n",
  'src/modules/alpha/alpha.repository.ts': "import { sql } from 'kysely';\nexport const R = sql;\n",
  'src/modules/alpha/alpha.service.ts':
    "import { sql } from 'kysely';\nimport { readFile } from 'node:fs/promises';\nimport { R } from './alpha.repository.ts';\nimport { D } from '../../storage/disk.ts';\nexport const S = [sql, readFile, R, D];\n",
  'src/modules/alpha/alpha.routes.ts': "import { R } from './alpha.repository.ts';\nimport { S } from './alpha.service.ts';\nexport const O = [R, S];\n",
  'src/modules/alpha/alpha.types.ts': "import type { BetaThing } from '../beta/beta.types.ts';\nexport type AlphaThing = BetaThing;\n",
  'src/modules/beta/beta.types.ts': 'export type BetaThing = { n: number };\n',
  'src/lib/zod.ts': "export * from 'zod/mini';\n",
  'src/modules/beta/beta.schema.ts': "import * as z from 'zod';\nimport * as mini from '../../lib/zod.ts';\nexport const Z = [z, mini];\n",
  'src/modules/beta/beta.service.ts':
    "import { execFile } from 'node:child_process';\nimport { R } from '../alpha/alpha.repository.ts';\nexport const T = [execFile, R];\n",
};

const EXPECTED = [
  // A cycle is reported once, at the edge where the cruise first closes it.
  ['no-circular', 'src/lib/a.ts', 'src/lib/b.ts'],
  ['lib-is-pure', 'src/lib/c.ts', 'src/errors.ts'],
  ['http-core-knows-no-module', 'src/http/server.ts', 'src/modules/alpha/alpha.service.ts'],
  ['core-knows-no-module', 'src/tasks/worker.ts', 'src/modules/beta/beta.service.ts'],
  ['kysely-only-in-repositories', 'src/modules/alpha/alpha.service.ts', 'kysely'],
  ['zod-only-through-lib-zod', 'src/modules/beta/beta.schema.ts', 'zod'],
  // Node's own modules are reported without the node: prefix.
  ['storage-owns-the-disk', 'src/modules/alpha/alpha.service.ts', 'fs/promises'],
  ['storage-owns-the-disk', 'src/modules/beta/beta.service.ts', 'child_process'],
  ['routes-skip-no-layer', 'src/modules/alpha/alpha.routes.ts', 'src/modules/alpha/alpha.repository.ts'],
  ['no-foreign-repository', 'src/modules/beta/beta.service.ts', 'src/modules/alpha/alpha.repository.ts'],
  ['no-module-folder-cycles', 'src/modules/alpha', 'src/modules/beta'],
  ['no-module-folder-cycles', 'src/modules/beta', 'src/modules/alpha'],
];

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

describe('dependency rules (.dependency-cruiser.cjs)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-depcruise-'));
    for (const [rel, text] of Object.entries(FIXTURE)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), text);
    }
    await writeFile(path.join(dir, 'tsconfig.json'), await readFile(path.join(ROOT, 'tsconfig.json')));
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reports each rule broken in the fixture, and none of the edges the rules allow', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'json'], { cwd: dir, maxBuffer: 64 << 20 }, (err, out) => (err ? reject(err) : resolve(out)));
    });
    const summary = JSON.parse(stdout).summary as { error: number; violations: Violation[] };
    const violations = summary.violations.map((v) => [
      v.rule.name,
      v.from,
      v.to.replace(/^(?:.*\/)?node_modules\/(kysely|zod)\/.*$/, '$1'),
    ]);
    expect(new Set(violations.map((v) => JSON.stringify(v)))).toEqual(new Set(EXPECTED.map((v) => JSON.stringify(v))));
    // The default reporter (`depcruise src` in npm test) exits with the number of errors: all are errors.
    expect(summary.error).toBe(EXPECTED.length);
  });
});

describe('transactions', () => {
  it('are opened only by db/transaction.ts and the two dialect-specific repositories it names', async () => {
    const openers: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const e of await readdir(path.join(ROOT, rel), { withFileTypes: true })) {
        const child = `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(child);
        else if (child.endsWith('.ts') && /\.transaction\(\)/.test(await readFile(path.join(ROOT, child), 'utf8'))) openers.push(child);
      }
    };
    await walk('src');
    expect(openers.filter((f) => !f.startsWith('src/db/migrations/')).sort()).toEqual([
      'src/db/transaction.ts',
      'src/modules/index-sync/index-sync.repository.ts',
      'src/tasks/backends/database/tasks.repository.ts',
    ]);
  });
});
