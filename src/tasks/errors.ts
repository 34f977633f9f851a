/**
 * Error classes that drive task behaviour (as BullMQ's UnrecoverableError does). They are matched by
 * class in the process that runs the handler and recorded on the result by class NAME, so a result read
 * in another process still tells them apart.
 */

/** Throw from a handler to fail the task at once: no further attempts, whatever maxAttempts says. */
export class UnrecoverableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnrecoverableError';
  }
}

/** The attempt ran longer than the task's `timeoutMs`. Retryable like any other failure. */
export class TaskTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`attempt exceeded its time limit of ${timeoutMs} ms`);
    this.name = 'TaskTimeoutError';
  }
}

/** The task was cancelled while running (the reason of the handler's AbortSignal). Never retried. */
export class TaskCancelledError extends Error {
  constructor(message = 'task was cancelled') {
    super(message);
    this.name = 'TaskCancelledError';
  }
}

/** The worker is shutting down and hands the task back; that attempt does not count. */
export class WorkerShutdownError extends Error {
  constructor() {
    super('worker shut down before the attempt finished; the task was handed back');
    this.name = 'WorkerShutdownError';
  }
}

/** `TaskResult.wait({ timeoutMs })` gave up before the task finished (the task itself is unaffected). */
export class TaskWaitTimeoutError extends Error {
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
  ) {
    super(`task ${taskId} did not finish within ${timeoutMs} ms`);
    this.name = 'TaskWaitTimeoutError';
  }
}
