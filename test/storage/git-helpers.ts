import { execFileSync, spawnSync } from 'node:child_process';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * True when system git is installed. Suites that need it skip with a notice on a laptop without git;
 * in CI a missing git fails the run (.ci/run installs it), never a silent skip.
 */
export function gitAvailable(): boolean {
  const ok = spawnSync('git', ['--version']).status === 0;
  if (!ok && IN_CI) throw new Error('git is not installed: in CI the backups suites must run (.ci/run installs git)');
  if (!ok) console.warn('[stormvault tests] git not installed: skipping the git backup suites');
  return ok;
}

/** Runs git in a bare repository and returns stdout (the tests inspect repositories with plain git). */
export function gitIn(gitDir: string, ...args: string[]): string {
  return execFileSync('git', args, { env: { PATH: process.env.PATH, GIT_DIR: gitDir, GIT_CONFIG_NOSYSTEM: '1', HOME: gitDir }, encoding: 'utf8' });
}
