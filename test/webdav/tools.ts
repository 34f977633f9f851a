import { execFileSync } from 'node:child_process';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Whether a system tool a suite needs (litmus, rclone) is installed. In CI a missing tool is a failure,
 * never a skip (.ci/run installs them); on a laptop the suite is skipped with a notice.
 */
export function toolAvailable(tool: string, versionArgs: string[] = ['--version']): boolean {
  let found = false;
  try {
    execFileSync(tool, versionArgs, { stdio: 'ignore' });
    found = true;
  } catch (err) {
    // litmus has no --version and exits non-zero on --help: only "not found" means missing.
    found = (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  if (!found) {
    if (IN_CI) throw new Error(`${tool} is not installed: in CI the WebDAV ${tool} suite must run (.ci/run installs it with apt-get)`);
    console.warn(`[stormvault tests] ${tool} not installed: skipping its WebDAV suite (apt-get install -y ${tool})`);
  }
  return found;
}
