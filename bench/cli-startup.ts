/**
 * bench:cli-startup — how long the command line takes to start, as a user runs it (issue 12).
 *
 *   npx tsx bench/cli-startup.ts [--runs 15] [--source]
 *
 * Runs `node bin/stormvault.js --help` and `node bin/stormvault.js rebuild-index` (an audit) on an empty
 * data dir as real child processes, interleaved with `node -e 0` (the baseline, measured in the same run,
 * round by round, so machine load hits both alike), and prints the median wall time of each and its ratio
 * to the baseline. bin/stormvault.js runs dist/ when it is a build of the current src/ (it builds it
 * first when it is stale, once); the bench builds dist/ before it starts, so every timed run is the
 * steady state a user sees. `--source` instead times the sources through tsx (dist/ hidden by
 * STORMVAULT_NO_DIST=1), the path taken when dist/ cannot be written.
 *
 * Targets: `--help` <= 2x `node -e 0`; an empty audit <= 3x `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildDist } from '../scripts/build.mjs';
import { parseBenchArgs } from './bench-args.ts';

const flags = parseBenchArgs(import.meta.url, {
  runs: { type: 'string', default: '15' },
  source: { type: 'boolean', default: false },
});
const RUNS = Number(flags.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error('cli-startup: --runs must be a whole number >= 1');
  process.exit(2);
}
const BIN = path.resolve(import.meta.dirname, '../bin/stormvault.js');

const env = { ...process.env, STORMVAULT_LOG_LEVEL: 'silent', ...(flags.source ? { STORMVAULT_NO_DIST: '1' } : {}) };
delete (env as Record<string, string | undefined>).STORMVAULT_DATABASE_URL;
delete (env as Record<string, string | undefined>).STORMVAULT_CONFIG_FILE;
if (!flags.source) await buildDist();

interface Case {
  name: string;
  args: string[];
  /** A fresh empty data dir per run, when the command needs one. */
  dataDir?: boolean;
}
const cases: Case[] = [
  { name: 'node -e 0 (baseline)', args: ['-e', '0'] },
  { name: 'stormvault --help', args: [BIN, '--help'] },
  { name: 'stormvault rebuild-index (empty data dir)', args: [BIN, 'rebuild-index'], dataDir: true },
];

function timeOnce(c: Case): number {
  const dir = c.dataDir ? mkdtempSync(path.join(tmpdir(), 'sv-bench-cli-')) : undefined;
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, c.args, { env: dir ? { ...env, STORMVAULT_DATA_DIR: dir } : env, stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${c.name} exited with ${r.status}: ${r.stderr.toString()}`);
    return ms;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// One warm-up round (file cache, and the first --source run's tsx cache), not counted.
for (const c of cases) timeOnce(c);
const times = cases.map(() => [] as number[]);
for (let i = 0; i < RUNS; i++) cases.forEach((c, j) => times[j]!.push(timeOnce(c)));

const baseline = median(times[0]!);
const targets = [undefined, 2, 3];
console.log(`cli-startup: ${RUNS} runs each, interleaved, median wall time (${flags.source ? 'sources through tsx' : 'dist/'})`);
cases.forEach((c, j) => {
  const m = median(times[j]!);
  const ratio = m / baseline;
  const target = targets[j];
  const verdict = target === undefined ? '' : `  target <= ${target}x: ${ratio <= target ? 'met' : 'NOT met'}`;
  console.log(`  ${c.name.padEnd(44)} ${m.toFixed(0).padStart(5)} ms  ${ratio.toFixed(2)}x${verdict}`);
});
