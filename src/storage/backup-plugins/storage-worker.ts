import type { Clock } from '../../clock.ts';
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/schema.ts';
import type { Logger } from '../../logger.ts';
import { createStreamLog } from '../../streams/create-stream-log.ts';
import { createTaskFramework } from '../../tasks/create-task-framework.ts';
import type { TaskWorker } from '../../tasks/framework.ts';
import { fsStoragePlugin } from './fs.plugin.ts';
import { gitStoragePlugin } from './git.plugin.ts';
import { defineStorageTasks, STORAGE_BACKENDS } from './storage-tasks.ts';

/** Queues only storage workers serve: `storage.git`, `storage.fs`. */
export const STORAGE_QUEUES: readonly string[] = STORAGE_BACKENDS.map((b) => `storage.${b}`);

/**
 * A storage worker that needs no database (issue 9): with the redis tasks backend, tasks come from BullMQ
 * and results go to Redis Streams, so `stormvault worker --queue storage.git` builds only the task
 * framework, the stream and the storage plugins — never the app, its migrations or its pool.
 */
export async function startStorageWorker(options: { config: Config; clock: Clock; logger: Logger; queues: readonly string[]; concurrency?: number }): Promise<{
  worker: TaskWorker;
  close(): Promise<void>;
}> {
  if (options.config.tasks.backend !== 'redis') throw new Error('a database-free storage worker needs the redis tasks backend');
  // The redis backend never touches the database handle; there is none to give.
  const tasks = await createTaskFramework({ config: options.config, clock: options.clock, logger: options.logger, db: undefined as unknown as Db, dialect: 'sqlite' });
  const streams = await createStreamLog({ config: options.config, clock: options.clock, claimTimeoutMs: options.config.backups.streamClaimTimeoutMs });
  const plugins = { git: gitStoragePlugin(), fs: fsStoragePlugin() };
  defineStorageTasks({ tasks, streams, backupsRoot: options.config.backups.root, plugins });
  const closePlugins = () => Promise.all([plugins.git.close(), plugins.fs.close()]);
  try {
    const worker = await tasks.startWorker({ queues: options.queues, concurrency: options.concurrency });
    return {
      worker,
      async close() {
        await worker.stop();
        await tasks.close();
        await closePlugins();
        await streams.close();
      },
    };
  } catch (err) {
    await tasks.close();
    await closePlugins();
    await streams.close();
    throw err;
  }
}
