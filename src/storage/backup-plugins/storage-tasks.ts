import { AppError } from '../../errors.ts';
import { PatternError } from '../../lib/line-patterns.ts';
import type { StreamLog, StreamPayload } from '../../streams/stream.port.ts';
import { UnrecoverableError } from '../../tasks/errors.ts';
import type { TaskDefinition, TaskFramework } from '../../tasks/framework.ts';
import { BackupVersionNotFound, isBackupRelPath } from '../backup-repository.port.ts';
import { resolveLocationFolder } from './backup-folder.ts';
import type { BackupStoragePlugin } from './plugin.ts';

/** Results of storage workers, consumed by the backups index (issue 9). */
export const STORAGE_RESULTS_STREAM = 'storage:results';
export const STORAGE_BACKENDS = ['git', 'fs'] as const;
export type StorageBackend = (typeof STORAGE_BACKENDS)[number];

/** A location as a storage worker sees it: relative folder under `<backups root>/<organization_id>/`. */
export interface StorageLocationConfig {
  organization_id: string;
  folder: string;
  branch?: string;
  author_name?: string;
  author_email?: string;
  keep_versions?: number | null;
  keep_days?: number | null;
}

/** Arguments of `storage.store.<backend>` (JSON: the content travels base64-encoded). */
export interface StoreTaskArgs {
  content_b64: string;
  storage_backend: StorageBackend;
  storage_config: StorageLocationConfig;
  rel_path: string;
  task_identifier: string;
  collected_at: string;
  ignore_patterns: string[];
  /** Echoed back in the result untouched (the index's ids). */
  context: { [key: string]: string };
}

/** What a storage worker publishes on `storage:results`, one per store task. */
export interface StorageResult {
  task_identifier: string;
  storage_ref: string | null;
  sha256: string | null;
  size: number | null;
  changed: boolean;
  error: string | null;
  collected_at: string;
  context: { [key: string]: string };
}

/** Published on `storage:results` when maintenance removed versions (fs pruning): the index drops their rows. */
export interface PrunedResult {
  kind: 'pruned';
  organization_id: string;
  location_id: string;
  removed: string[];
}

export interface MaintainTaskArgs {
  storage_backend: StorageBackend;
  storage_config: StorageLocationConfig;
  location_id: string;
  now: string;
}

export interface ReadTaskArgs {
  storage_backend: StorageBackend;
  storage_config: StorageLocationConfig;
  /** One or two versions (a diff reads both in one round trip). */
  storage_refs: string[];
}

export interface StorageTasks {
  store: Record<StorageBackend, TaskDefinition<StoreTaskArgs, StorageResult>>;
  read: Record<StorageBackend, TaskDefinition<ReadTaskArgs, { contents_b64: string[] }>>;
  maintain: Record<StorageBackend, TaskDefinition<MaintainTaskArgs, { removed: number }>>;
}

export interface StorageTasksDeps {
  tasks: TaskFramework;
  streams: StreamLog;
  backupsRoot: string;
  plugins: Partial<Record<StorageBackend, BackupStoragePlugin>>;
}

/**
 * Defines the storage workers' tasks: `storage.store.git` / `storage.read.git` on queue `storage.git`,
 * and the same for fs on `storage.fs` (`stormvault worker --queue storage.git`). A store publishes its
 * outcome — or, after its last attempt, its error — on `storage:results`; the backups index consumes it.
 * Imports nothing from src/modules or src/db: with the redis tasks backend a storage worker needs no
 * database at all.
 */
export function defineStorageTasks(deps: StorageTasksDeps): StorageTasks {
  const store = {} as StorageTasks['store'];
  const read = {} as StorageTasks['read'];
  const maintain = {} as StorageTasks['maintain'];
  for (const backend of STORAGE_BACKENDS) {
    const pluginFor = () => {
      const plugin = deps.plugins[backend];
      if (!plugin) throw new UnrecoverableError(`this worker has no ${backend} storage plugin`);
      return plugin;
    };
    store[backend] = deps.tasks.define<StoreTaskArgs, StorageResult>(
      { name: `storage.store.${backend}`, queue: `storage.${backend}`, maxAttempts: 3, backoff: { baseMs: 500, capMs: 10_000 }, timeoutMs: 5 * 60_000 },
      async (args, ctx) => {
        let result: StorageResult;
        try {
          if (!isBackupRelPath(args.rel_path)) throw new UnrecoverableError(`invalid backup path ${JSON.stringify(args.rel_path)}`);
          const folder = await resolveLocationFolder(deps.backupsRoot, args.storage_config.organization_id, args.storage_config.folder);
          const outcome = await pluginFor().storeBackup(Buffer.from(args.content_b64, 'base64'), args.rel_path, { ...args.storage_config, folder }, {
            collectedAt: new Date(args.collected_at),
            taskIdentifier: args.task_identifier,
            ignorePatterns: args.ignore_patterns ?? [],
          });
          result = { ...base(args), storage_ref: outcome.storageRef, sha256: outcome.sha256, size: outcome.size, changed: outcome.changed, error: null };
        } catch (err) {
          const final = ctx.attempt >= 3 || err instanceof UnrecoverableError || err instanceof AppError || err instanceof PatternError;
          if (!final) throw err; // retried by the framework
          ctx.logger.error({ err, task_identifier: args.task_identifier }, 'storing a backup failed');
          result = { ...base(args), storage_ref: null, sha256: null, size: null, changed: false, error: (err as Error).message.slice(0, 1000) };
        }
        await deps.streams.append(STORAGE_RESULTS_STREAM, result as unknown as StreamPayload);
        return result;
      },
    );
    maintain[backend] = deps.tasks.define<MaintainTaskArgs, { removed: number }>(
      { name: `storage.maintain.${backend}`, queue: `storage.${backend}`, maxAttempts: 2, timeoutMs: 60 * 60_000 },
      async (args) => {
        const folder = await resolveLocationFolder(deps.backupsRoot, args.storage_config.organization_id, args.storage_config.folder);
        const { removed } = await pluginFor().maintain({ ...args.storage_config, folder }, new Date(args.now));
        if (removed.length > 0) {
          const pruned: PrunedResult = { kind: 'pruned', organization_id: args.storage_config.organization_id, location_id: args.location_id, removed };
          await deps.streams.append(STORAGE_RESULTS_STREAM, pruned as unknown as StreamPayload);
        }
        return { removed: removed.length };
      },
    );
    read[backend] = deps.tasks.define<ReadTaskArgs, { contents_b64: string[] }>(
      { name: `storage.read.${backend}`, queue: `storage.${backend}`, maxAttempts: 1, timeoutMs: 5 * 60_000 },
      async (args) => {
        const folder = await resolveLocationFolder(deps.backupsRoot, args.storage_config.organization_id, args.storage_config.folder);
        try {
          const refs = Array.isArray(args.storage_refs) ? args.storage_refs.slice(0, 2) : [];
          const contents = await Promise.all(refs.map((ref) => pluginFor().readBackup(ref, { ...args.storage_config, folder })));
          return { contents_b64: contents.map((c) => c.toString('base64')) };
        } catch (err) {
          if (err instanceof BackupVersionNotFound) throw new UnrecoverableError(err.message);
          throw err;
        }
      },
    );
  }
  return { store, read, maintain };
}

function base(args: StoreTaskArgs) {
  return { task_identifier: args.task_identifier, collected_at: args.collected_at, context: args.context };
}
