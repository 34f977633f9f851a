import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { DialectName } from '../db/database.ts';
import type { Db } from '../db/schema.ts';
import type { Logger } from '../logger.ts';
import type { TaskBackendFactory } from './backend.port.ts';
import { databaseBackend } from './backends/database/database.backend.ts';
import { immediateBackend } from './backends/immediate.backend.ts';
import { TaskFramework } from './framework.ts';

export interface TaskFrameworkDeps {
  config: Config;
  clock: Clock;
  logger: Logger;
  db: Db;
  dialect: DialectName;
}

/** The backend factory `config.tasks.backend` names. */
export async function backendFromConfig(deps: TaskFrameworkDeps): Promise<TaskBackendFactory> {
  const t = deps.config.tasks;
  switch (t.backend) {
    case 'immediate':
      return immediateBackend();
    case 'database':
      return databaseBackend({ db: deps.db, dialect: deps.dialect, leaseMs: t.leaseMs, pollMs: t.pollMs });
    case 'redis': {
      // Loaded only when chosen, so processes on the embedded default never load BullMQ.
      const { redisBackend } = await import('./backends/redis/redis.backend.ts');
      // The task lease is BullMQ's job lock: a worker silent this long loses the job to the stalled-job checker.
      return redisBackend({ url: t.redisUrl!, prefix: t.redisPrefix, lockDurationMs: t.leaseMs });
    }
  }
}

/** Builds `app.tasks` from config (called by createApp before any module defines its tasks). */
export async function createTaskFramework(deps: TaskFrameworkDeps, backend?: TaskBackendFactory): Promise<TaskFramework> {
  const t = deps.config.tasks;
  return new TaskFramework({
    clock: deps.clock,
    logger: deps.logger.child({ component: 'tasks' }),
    backend: backend ?? (await backendFromConfig(deps)),
    retentionMs: t.retentionMs,
    deadRetentionMs: t.deadRetentionMs,
    concurrency: t.concurrency,
    shutdownGraceMs: t.shutdownGraceMs,
  });
}
