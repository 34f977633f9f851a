/**
 * Domain errors. Domain code throws AppError with a code; only src/http maps codes to HTTP statuses
 * (see http/error-handler.ts), and the CLI maps them to exit codes. Add a code here and TypeScript will
 * insist it gets a status in the error handler.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_path'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'already_exists'
  | 'not_empty'
  | 'precondition_failed'
  | 'payload_too_large'
  | 'quota_exceeded'
  | 'range_not_satisfiable'
  | 'rate_limited'
  | 'resync_required'
  | 'insufficient_storage'
  | 'locked'
  | 'unavailable'
  /** No storage worker answered a backups `storage.read` in time (issue 9). */
  | 'storage_worker_unavailable'
  | 'internal';

export class AppError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts for the client (e.g. the limit that was exceeded). */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
