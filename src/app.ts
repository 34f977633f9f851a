import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from './clock.ts';
import { withJwtSecret, type Config } from './config/config.ts';
import { createDatabase, type DialectName } from './db/database.ts';
import { migrateToLatest } from './db/migrator.ts';
import type { Db } from './db/schema.ts';
import { buildHttpServer } from './http/server.ts';
import { createLogger, type Logger } from './logger.ts';
import { LeaseLocks } from './locks/lease-lock.ts';
import { LocksRepository } from './locks/locks.repository.ts';
import { ApiKeysRepository } from './modules/auth/api-keys.repository.ts';
import { ApiKeysService } from './modules/auth/api-keys.service.ts';
import { authRoutes } from './modules/auth/auth.routes.ts';
import { AuthService } from './modules/auth/auth.service.ts';
import { LoginThrottle } from './modules/auth/login-throttle.ts';
import { RefreshTokensRepository } from './modules/auth/refresh-tokens.repository.ts';
import { randomToken } from './modules/auth/secrets.ts';
import { FilesRepository } from './modules/files/files.repository.ts';
import { filesRoutes } from './modules/files/files.routes.ts';
import { FilesService } from './modules/files/files.service.ts';
import { healthRoutes } from './modules/health/health.routes.ts';
import { ShareLinksRepository } from './modules/shares/share-links.repository.ts';
import { shareLinksRoutes } from './modules/shares/share-links.routes.ts';
import { ShareLinksService } from './modules/shares/share-links.service.ts';
import { IndexSyncRepository } from './modules/index-sync/index-sync.repository.ts';
import { indexSyncRoutes } from './modules/index-sync/index-sync.routes.ts';
import { IndexSyncService } from './modules/index-sync/index-sync.service.ts';
import { defineIndexSyncTasks } from './modules/index-sync/index-sync.tasks.ts';
import { UsersRepository } from './modules/users/users.repository.ts';
import { usersRoutes } from './modules/users/users.routes.ts';
import { UsersService } from './modules/users/users.service.ts';
import { readOrCreateFile } from './storage/atomic.ts';
import { DevicesRepository } from './modules/devices/devices.repository.ts';
import { devicesRoutes } from './modules/devices/devices.routes.ts';
import { DevicesService } from './modules/devices/devices.service.ts';
import { OrganizationsRepository } from './modules/organizations/organizations.repository.ts';
import { membershipJson, orgContextOf, organizationsRoutes } from './modules/organizations/organizations.routes.ts';
import { OrganizationsService } from './modules/organizations/organizations.service.ts';
import { RecordWriter } from './modules/records/record-writer.ts';
import { RecordsRepository } from './modules/records/records.repository.ts';
import { recordsRoutes } from './modules/records/records.routes.ts';
import { RecordsService } from './modules/records/records.service.ts';
import { SyncEvents } from './modules/sync/sync.events.ts';
import { SyncRepository } from './modules/sync/sync.repository.ts';
import { syncRoutes } from './modules/sync/sync.routes.ts';
import { defineSyncTasks } from './modules/sync/sync.tasks.ts';
import { SyncService } from './modules/sync/sync.service.ts';
import { adminTasksRoutes } from './modules/admin-tasks/admin-tasks.routes.ts';
import { createTaskFramework } from './tasks/create-task-framework.ts';
import type { TaskFramework } from './tasks/framework.ts';
import { DiskTreeReader } from './storage/tree-walker.ts';
import { UserFileStore } from './storage/user-files.ts';

export interface AppOptions {
  clock?: Clock;
  logger?: Logger;
  /** Run migrations while building (default true). */
  migrate?: boolean;
}

/** Everything a process needs, built by hand in one place (DESIGN.md: composition root, no container). */
export interface App {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly db: Db;
  readonly dialect: DialectName;
  readonly users: UsersService;
  readonly apiKeys: ApiKeysService;
  readonly auth: AuthService;
  readonly files: FilesService;
  readonly shares: ShareLinksService;
  /** Index reconciliation: audit/sync/clean/full of stored_files against the disk (issue 4). */
  readonly indexSync: IndexSyncService;
  /** Records sync (issue 5): organizations, devices, projects/tasks/comments, push/pull/conflicts. */
  readonly organizations: OrganizationsService;
  readonly devices: DevicesService;
  readonly records: RecordsService;
  readonly sync: SyncService;
  readonly http: FastifyInstance;
  /** Background tasks: define, enqueue, results, schedules, workers (docs/tasks.md). */
  readonly tasks: TaskFramework;
  /** Starts listening on the configured host and port; resolves to the address. */
  listen(): Promise<string>;
  /** Stops the HTTP server, background work and the database pool, in that order. */
  close(): Promise<void>;
}

/** The JWT secret from config, or the one kept in `<dataDir>/jwt-secret`, generated on first start. */
async function resolveJwtSecret(config: Config): Promise<string> {
  if (config.auth.jwtSecret) return config.auth.jwtSecret;
  await mkdir(config.dataDir, { recursive: true });
  const secret = (await readOrCreateFile(path.join(config.dataDir, 'jwt-secret'), () => randomToken(48))).trim();
  if (secret.length < 32) throw new Error(`${path.join(config.dataDir, 'jwt-secret')} holds a secret shorter than 32 characters`);
  return secret;
}

export async function createApp(baseConfig: Config, options: AppOptions = {}): Promise<App> {
  const config = withJwtSecret(baseConfig, await resolveJwtSecret(baseConfig));
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  await mkdir(config.storageRoot, { recursive: true });

  const database = createDatabase(config.database.url);
  const closers: Array<() => Promise<void>> = [() => database.destroy()];
  try {
    if (options.migrate !== false) await migrateToLatest(database.db);

    // Built first so every module below can define its tasks; closed after HTTP, before the pool its workers use.
    const tasks = await createTaskFramework({ config, clock, logger, db: database.db, dialect: database.dialect });
    closers.unshift(() => tasks.close());

    const usersRepository = new UsersRepository(database.db);
    const users = new UsersService(usersRepository, clock, config.files.defaultQuotaBytes);
    const apiKeys = new ApiKeysService(new ApiKeysRepository(database.db), clock);
    const auth = new AuthService(
      usersRepository,
      new RefreshTokensRepository(database.db),
      new LoginThrottle(clock, config.auth.loginMaxAttempts, config.auth.loginWindowSeconds * 1000),
      clock,
      {
        jwtSecret: config.auth.jwtSecret!,
        accessTokenTtlSeconds: config.auth.accessTokenTtlSeconds,
        refreshTokenTtlSeconds: config.auth.refreshTokenTtlSeconds,
      },
    );

    const files = new FilesService({
      repo: new FilesRepository(database.db, database.dialect),
      store: new UserFileStore(config.storageRoot),
      quotas: { quotaBytes: async (userId) => (await usersRepository.findById(userId))?.quotaBytes },
      clock,
      storageRoot: config.storageRoot,
      minFreeBytes: config.files.minFreeBytes,
      logger,
    });
    // A move cut by a crash is finished or undone before anything reads the index (files module journal).
    if (options.migrate !== false) {
      const recovered = await files.recoverInterruptedMoves();
      if (recovered.finished + recovered.undone > 0) logger.warn(recovered, 'files: resolved moves interrupted by a crash');
    }
    const shares = new ShareLinksService(
      new ShareLinksRepository(database.db),
      files,
      clock,
      config.server.publicUrl,
      new LoginThrottle(clock, config.auth.loginMaxAttempts, config.auth.loginWindowSeconds * 1000),
    );

    // Cross-process lease locks (src/locks): index reconciliation today, any capability that needs one.
    const locks = new LeaseLocks(new LocksRepository(database.db), clock, { logger });
    const indexSync = new IndexSyncService(new IndexSyncRepository(database.db, database.sqlite), new DiskTreeReader(), clock, config.storageRoot, locks, {
      tempMaxAgeMs: config.files.uploadTempMaxAgeMs,
    });
    const rebuildIndexTask = defineIndexSyncTasks(tasks, indexSync, { auditSchedule: config.indexSync.auditSchedule, logger });

    const organizations = new OrganizationsService(new OrganizationsRepository(database.db), usersRepository, clock);
    const devices = new DevicesService(new DevicesRepository(database.db), clock);
    const syncEvents = new SyncEvents();
    const recordsRepository = new RecordsRepository(database.db, database.dialect);
    const recordWriter = new RecordWriter(clock);
    const records = new RecordsService(recordsRepository, recordWriter, syncEvents);
    const sync = new SyncService(new SyncRepository(database.db, database.dialect), recordsRepository, recordWriter, devices, syncEvents, clock, config.sync);
    const contextOf = orgContextOf(organizations);
    defineSyncTasks(tasks, sync);

    const http = await buildHttpServer({
      config,
      logger,
      auth: { apiKeys, users: usersRepository, jwtSecret: config.auth.jwtSecret!, clock },
      routes: [
        healthRoutes({ db: database.db, storageRoot: config.storageRoot, minFreeBytes: config.files.minFreeBytes }),
        authRoutes({ auth, apiKeys, registerDevice: async (userId, name) => (await devices.register(userId, name)).id }),
        adminTasksRoutes({ tasks }),
        indexSyncRoutes({ indexSync, rebuildTask: rebuildIndexTask }),
        usersRoutes({ users, meExtensions: [async (user) => ({ organizations: (await organizations.listForUser(user.id)).map(membershipJson) })] }),
        filesRoutes({ files }),
        shareLinksRoutes({ shares }),
        organizationsRoutes({ orgs: organizations }),
        devicesRoutes({ devices }),
        recordsRoutes({ records, contextOf }),
        syncRoutes({ sync, devices, events: syncEvents, contextOf }),
      ],
    });
    // Open event streams would hold http.close() until clients hang up.
    http.addHook('preClose', async () => syncEvents.closeAll());
    closers.unshift(() => http.close());

    let closed = false;
    return {
      config,
      clock,
      logger,
      db: database.db,
      dialect: database.dialect,
      users,
      apiKeys,
      auth,
      files,
      shares,
      indexSync,
      organizations,
      devices,
      records,
      sync,
      http,
      tasks,
      listen: () => http.listen({ host: config.server.host, port: config.server.port }),
      async close() {
        if (closed) return;
        closed = true;
        for (const close of closers) await close();
      },
    };
  } catch (err) {
    for (const close of closers) await close().catch(() => {});
    throw err;
  }
}
