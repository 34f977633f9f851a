import type SqliteDatabase from 'better-sqlite3';
import type { Clock } from './clock.ts';
import type { Config } from './config/config.ts';
import type { DialectName } from './db/database.ts';
import type { Db } from './db/schema.ts';
import type { RouteModule } from './http/server.ts';
import type { SignalBus } from './coordination/signal-bus.port.ts';
import type { LeaseLocks } from './locks/lease-lock.ts';
import type { Logger } from './logger.ts';
import type { BlobStore } from './storage/blob-store.port.ts';
import type { TaskDefinition, TaskFramework } from './tasks/framework.ts';
import type { Throttles } from './throttle/create-throttles.ts';

/** The storage adapters the core opens once; modules use these instead of building their own. */
export interface CoreStorage {
  /** Root folder of per-user files (`{root}/{user_id}/{path}`). */
  readonly root: string;
  /** The BlobStore of user files: the fs adapter rooted at `root` (keys `<user_id>/<path>`, modules/files/files-layout.ts). */
  readonly files: BlobStore;
}

/**
 * What `app.ts` builds before any capability (docs/architecture.md): config, clock, logger, database,
 * tasks and storage. Every `create<Name>Module(core, deps)` gets this and nothing global.
 */
export interface Core {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly db: Db;
  readonly dialect: DialectName;
  /**
   * The better-sqlite3 connection behind `db` (SQLite only), for the rare repository loop that touches
   * every row of a table (index reconciliation's scan and first sync) and cannot afford the query builder.
   */
  readonly sqlite?: SqliteDatabase.Database;
  readonly tasks: TaskFramework;
  /** Cross-process lease locks in the database (src/locks): "one at a time" across serve/worker/CLI. */
  readonly locks: LeaseLocks;
  readonly storage: CoreStorage;
  /** Login and share-password throttles, on Redis or the database (shared by every process). */
  readonly throttles: Throttles;
  /** Cross-process nudges (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, or this process alone on SQLite); closed by the app. */
  readonly signals: SignalBus;
}

/**
 * The one shape of a capability: `create<Name>Module(core, deps)` returns its service(s) as named fields
 * plus these. `app.ts` registers the routes, knows the task definitions and runs `beforeClose`.
 */
export interface ModuleParts {
  /** Registered in order after auth and error handling are installed. */
  readonly routes: readonly RouteModule[];
  /** The tasks the module defined on `core.tasks` (schedules included). */
  readonly tasks: readonly TaskDefinition<any, any>[];
  /** Runs before the HTTP server closes (e.g. ends open event streams that would hold close()). */
  readonly beforeClose?: () => Promise<void> | void;
}
