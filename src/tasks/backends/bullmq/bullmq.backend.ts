import type { TaskBackendFactory } from '../../backend.port.ts';

export interface BullmqBackendOptions {
  redisUrl: string;
  /** Key prefix, so test files and installations sharing one Redis do not collide. */
  prefix?: string;
}

/**
 * PLACEHOLDER until the BullMQ backend lands (issue 3, second engineer): maps the TaskBackend port onto
 * BullMQ queues, priorities, delays, attempts/backoff, the failed set (dead letter), job schedulers and
 * waitUntilFinished. Replace this file wholesale; create-task-framework.ts imports `bullmqBackend` from it.
 */
export function bullmqBackend(_options: BullmqBackendOptions): TaskBackendFactory {
  return () => {
    throw new Error('the redis tasks backend is not implemented yet; use STORMVAULT_TASKS_BACKEND=database');
  };
}
