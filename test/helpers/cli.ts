import { runCli } from '../../src/cli/program.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with the given environment and stdin; captures output and exit code. */
export async function runCliCaptured(argv: string[], env: Record<string, string | undefined>, stdin = ''): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env,
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    readStdin: async () => stdin,
    isTty: false,
  });
  return { code, stdout, stderr };
}

/**
 * The environment a CLI run needs to open the same data dir and database as a test app (createTestApp),
 * with the test app's quiet, immediate defaults; `extra` adds or overrides settings.
 */
export function cliEnvOf(t: { config: { dataDir: string; database: { url: string } } }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    STORMVAULT_DATA_DIR: t.config.dataDir,
    STORMVAULT_DATABASE_URL: t.config.database.url,
    STORMVAULT_TASKS_BACKEND: 'immediate',
    STORMVAULT_MIN_FREE_BYTES: '0',
    STORMVAULT_LOG_LEVEL: 'silent',
    ...extra,
  };
}
