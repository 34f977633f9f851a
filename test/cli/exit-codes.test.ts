import { describe, expect, it } from 'vitest';
import { CliError, describeFailure, EXIT_CODE_BY_ERROR, EXIT_FAILURE, EXIT_USAGE } from '../../src/cli/context.ts';
import { ConfigError } from '../../src/config/config.ts';
import { AppError, type ErrorCode } from '../../src/errors.ts';

describe(describeFailure.name, () => {
  it('answers every domain error code with the exit code of the table, and the message', () => {
    for (const [code, exitCode] of Object.entries(EXIT_CODE_BY_ERROR)) {
      expect(describeFailure(new AppError(code as ErrorCode, `because ${code}`))).toEqual({ message: `because ${code}`, exitCode });
    }
  });

  it('treats bad input and refusals as usage errors (2), failures that may pass later as 1', () => {
    expect(describeFailure(new AppError('invalid_request', 'x')).exitCode).toBe(EXIT_USAGE);
    expect(describeFailure(new AppError('not_found', 'x')).exitCode).toBe(EXIT_USAGE);
    expect(describeFailure(new AppError('unavailable', 'x')).exitCode).toBe(EXIT_FAILURE);
    expect(describeFailure(new ConfigError(['bad setting'])).exitCode).toBe(EXIT_USAGE);
    expect(describeFailure(new CliError('nope', 7))).toEqual({ message: 'nope', exitCode: 7 });
    expect(describeFailure(new Error('boom'))).toEqual({ message: 'boom', exitCode: EXIT_FAILURE });
  });
});
