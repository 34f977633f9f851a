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
