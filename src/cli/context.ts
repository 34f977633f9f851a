import { Command, InvalidArgumentError } from 'commander';
import type { App, AppModuleName } from '../app.ts';
import { ConfigError } from '../config/config-error.ts';
import type { Config } from '../config/config.ts';
import { AppError, type ErrorCode } from '../errors.ts';

// Issue 12 (CLI start-up): this file and every *.command.ts are loaded to parse argv and print --help,
// so they import only commander and light modules at the top; what a command needs (config and its zod
// schema, the database, the app) is imported inside its action, when that command runs.

/** Exit codes shared by every command: 0 ran, 1 failed, 2 bad input or refused. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * The only place that knows CLI exit codes for domain error codes, as http/error-handler.ts's
 * STATUS_BY_CODE knows HTTP statuses; a new ErrorCode does not compile until it is given one here.
 * 2: the input was bad or the request was refused as asked; 1: it failed and may pass another time.
 */
export const EXIT_CODE_BY_ERROR: Record<ErrorCode, typeof EXIT_FAILURE | typeof EXIT_USAGE> = {
  invalid_request: EXIT_USAGE,
  invalid_path: EXIT_USAGE,
  unauthorized: EXIT_FAILURE,
  forbidden: EXIT_USAGE,
  not_found: EXIT_USAGE,
  conflict: EXIT_USAGE,
  already_exists: EXIT_USAGE,
  not_empty: EXIT_USAGE,
  locked: EXIT_USAGE,
  resync_required: EXIT_FAILURE,
  precondition_failed: EXIT_FAILURE,
  payload_too_large: EXIT_FAILURE,
  quota_exceeded: EXIT_FAILURE,
  range_not_satisfiable: EXIT_FAILURE,
  rate_limited: EXIT_FAILURE,
  internal: EXIT_FAILURE,
  unavailable: EXIT_FAILURE,
  storage_worker_unavailable: EXIT_FAILURE,
  insufficient_storage: EXIT_FAILURE,
};

/** Thrown by commands for a one-line reason and an exit code; main() prints and exits. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_USAGE,
  ) {
    super(message);
  }
}

/** What every command gets: where to print, how to build the app. Tests pass their own. */
export interface CliContext {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  isTty: boolean;
}

export async function loadCliConfig(ctx: CliContext): Promise<Config> {
  const { loadConfig } = await import('../config/config.ts');
  return loadConfig(ctx.env);
}

/**
 * Builds the app for a one-shot command (logs to stderr at warn unless STORMVAULT_LOG_LEVEL says otherwise,
 * so stdout carries only the command's answer), runs `fn`, and always closes it. `modules`: the modules
 * the command uses (createApp builds what they need too), so it loads and builds nothing else (issue 12,
 * CLI start-up); default every module.
 */
export async function withApp<T>(ctx: CliContext, fn: (app: App) => Promise<T>, modules?: readonly AppModuleName[]): Promise<T> {
  const config = await loadCliConfig(ctx);
  const [{ createApp }, { createDeferredLogger }] = await Promise.all([import('../app.ts'), import('./deferred-logger.ts')]);
  const level = ctx.env.STORMVAULT_LOG_LEVEL ? config.log.level : 'warn';
  const logger = createDeferredLogger(level, process.stderr);
  const app = await createApp(config, { logger, http: false, ...(modules ? { modules } : {}) });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/** Maps any failure to a message and an exit code: bad input or refusals 2, everything else 1 (EXIT_CODE_BY_ERROR). */
export function describeFailure(err: unknown): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ConfigError) return { message: err.message, exitCode: EXIT_USAGE };
  if (err instanceof AppError) return { message: err.message, exitCode: EXIT_CODE_BY_ERROR[err.code] ?? EXIT_FAILURE };
  return { message: err instanceof Error ? err.message : String(err), exitCode: EXIT_FAILURE };
}

/** Commander option parser for whole numbers >= min, with a clear message. */
export function wholeNumber(min = 0) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
      throw new InvalidArgumentError(`expected a whole number >= ${min}, got "${value}"`);
    }
    return Number(value);
  };
}

export type { Command };
