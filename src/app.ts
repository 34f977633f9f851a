import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from './clock.ts';
import { withJwtSecret, withSecretKey, type Config } from './config/config.ts';
import type { Core, ModuleParts } from './core.ts';
import { createDatabase, type DialectName } from './db/database.ts';
import { migrateToLatest } from './db/migrator.ts';
import type { Db } from './db/schema.ts';
import type { Logger } from './logger.ts';
import { LeaseLocks } from './locks/lease-lock.ts';
import { LocksRepository } from './locks/locks.repository.ts';
import { newSecretKeyText, parseSecretKey, SecretBox } from './lib/secret-box.ts';
import type { AlertsService } from './modules/alerts/alerts.service.ts';
import type { PublishingModule, PublishingModuleDeps } from './modules/publishing/publishing.module.ts';
import type { ResolveHost } from './net/outbound.ts';
import type { WebhooksService } from './modules/webhooks/webhooks.service.ts';
import type { ApiKeysService } from './modules/auth/api-keys.service.ts';
import type { AuthService } from './modules/auth/auth.service.ts';
import { randomToken } from './lib/crypto.ts';
import type { DevicesService } from './modules/devices/devices.service.ts';
import type { FilesService } from './modules/files/files.service.ts';
import type { IndexSyncService } from './modules/index-sync/index-sync.service.ts';
import type { OrganizationsService } from './modules/organizations/organizations.service.ts';
import type { RecordsModule } from './modules/records/records.module.ts';
import type { RecordsService } from './modules/records/records.service.ts';
import type { ShareLinksService } from './modules/shares/share-links.service.ts';
import type { SyncEvents } from './modules/sync/sync.events.ts';
import type { SyncService } from './modules/sync/sync.service.ts';
import type { MeExtension } from './modules/users/users.routes.ts';
import type { UsersService } from './modules/users/users.service.ts';
import { readOrCreateFile } from './storage/atomic.ts';
import { createCoordination } from './coordination/create-coordination.ts';
import { FsBlobStore } from './storage/fs-blob-store.ts';
import type { BackupsModule } from './modules/backups/backups.module.ts';
import type { CollectModule } from './modules/collect/collect.module.ts';
import type { StreamLog } from './streams/stream.port.ts';
import { createTaskFramework } from './tasks/create-task-framework.ts';
import type { TaskFramework } from './tasks/framework.ts';
import type { Throttles } from './throttle/create-throttles.ts';

/**
 * The capabilities createApp builds, each one create<Name>Module call, and the files it imports for it.
 * Imported when built, not at the top of this file: a one-shot CLI command that names the modules it uses
 * (AppOptions.modules) loads only theirs, which is most of its start-up (issue 12, CLI start-up).
 */
const MODULE_CODE = {
  users: () => import('./modules/users/users.module.ts'),
  devices: () => import('./modules/devices/devices.module.ts'),
  auth: () => Promise.all([import('./modules/auth/auth.module.ts'), import('./modules/auth/api-keys.service.ts')]),
  files: () => import('./modules/files/files.module.ts'),
  shares: () => import('./modules/shares/share-links.module.ts'),
  indexSync: () => import('./modules/index-sync/index-sync.module.ts'),
  organizations: () => import('./modules/organizations/organizations.module.ts'),
  records: () => Promise.all([import('./modules/records/records.module.ts'), import('./modules/sync/sync.events.ts')]),
  sync: () => import('./modules/sync/sync.module.ts'),
  metrics: () => Promise.all([import('./modules/metrics/metrics.module.ts'), import('./modules/index-sync/index-sync.tasks.ts')]),
  backups: () => Promise.all([import('./modules/backups/backups.module.ts'), import('./streams/create-stream-log.ts')]),
  collect: () => Promise.all([import('./modules/collect/collect.module.ts'), import('./modules/collect/model-loader.ts')]),
  webhooks: () => Promise.all([import('./modules/webhooks/webhooks.module.ts'), import('./net/outbound.ts'), import('./lib/ip-ranges.ts')]),
  alerts: () => import('./modules/alerts/alerts.module.ts'),
  publishing: () => import('./modules/publishing/publishing.module.ts'),
  webdav: () => import('./modules/webdav/webdav.module.ts'),
  health: () => import('./modules/health/health.module.ts'),
  adminTasks: () => import('./modules/admin-tasks/admin-tasks.module.ts'),
} as const;

/** A capability createApp can build (AppOptions.modules). */
export type AppModuleName = keyof typeof MODULE_CODE;

/**
 * What each module needs built before it. A module is built with everything it needs, so naming one
 * builds a working service: e.g. indexSync needs files, whose move journal is recovered before anything
 * reads the index; backups and collect need each other (backups report outcomes through collect).
 */
const MODULE_NEEDS: Record<AppModuleName, readonly AppModuleName[]> = {
  users: [],
  devices: [],
  auth: ['users', 'devices'],
  files: ['users'],
  shares: ['files'],
  indexSync: ['files'],
  organizations: ['users'],
  records: ['organizations'],
  sync: ['records', 'devices', 'organizations'],
  metrics: [],
  backups: ['organizations', 'collect'],
  collect: ['backups', 'webhooks', 'organizations'],
  webhooks: ['organizations'],
  alerts: ['organizations', 'webhooks'],
  publishing: ['organizations', 'alerts'],
  webdav: ['files'],
  health: [],
  adminTasks: [],
};

/** Every module, in build order (an app built with every module is what serve and worker run). */
export const APP_MODULES = Object.keys(MODULE_CODE) as AppModuleName[];

/** `names` and everything they need, transitively. */
export function modulesWith(names: readonly AppModuleName[]): Set<AppModuleName> {
  const out = new Set<AppModuleName>();
  const add = (name: AppModuleName) => {
    if (out.has(name)) return;
    if (!(name in MODULE_NEEDS)) throw new Error(`createApp: unknown module "${name}" (one of ${APP_MODULES.join(', ')})`);
    out.add(name);
    MODULE_NEEDS[name].forEach(add);
  };
  names.forEach(add);
  return out;
}

type ModuleCode = { [K in AppModuleName]: Awaited<ReturnType<(typeof MODULE_CODE)[K]>> };

/** The schedule of the daily `rebuild-index --scope publishing` audit (issue 11: the daily full scan). */
export const PUBLISHING_AUDIT_SCHEDULE = 'publishing.index_audit';

export interface AppOptions {
  clock?: Clock;
  logger?: Logger;
  /** Run migrations while building (default true). */
  migrate?: boolean;
  /**
   * Build the HTTP server (default true). One-shot CLI commands pass false: compiling every route's
   * schema takes most of a short command's start-up (issue 12), and they never serve.
   */
  http?: boolean;
  /**
   * Build only these modules (and what they need, MODULE_NEEDS); default every module. One-shot CLI
   * commands name what they use, so they import and build nothing else (issue 12, CLI start-up); reading
   * a service of a module that was not built throws. An app that serves HTTP builds every module.
   */
  modules?: readonly AppModuleName[];
  /** Free bytes of the storage volume (default: statfs). Tests pass a pretend small volume. */
  freeBytes?: (dir: string) => Promise<number>;
  /** Test hook: the DNS resolver of outbound requests (webhooks, CDN probes). */
  resolveHost?: ResolveHost;
  /** Test hooks of the publishing module (an S3 client factory, the crash-test step hook, a CDN probe). */
  publishing?: Pick<PublishingModuleDeps, 'openBucket' | 'onWriteStep' | 'probeUrl'>;
  /** The built web UI to serve at `/` (default: the package's dist/web, when built; null: none). */
  webRoot?: string | null;
}

/**
 * The package's dist/web (scripts/build.mjs writes it): found by walking up from this file to the folder
 * holding package.json, which works from src/ (tsx) and from any dist/ chunk alike. Null when not built.
 */
function defaultWebRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) {
      const web = path.join(dir, 'dist', 'web');
      return existsSync(path.join(web, 'index.html')) ? web : null;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
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
  /** Org-wide alerts (issue 11; backups raise theirs here too) and the org webhooks they are delivered to. */
  readonly alerts: AlertsService;
  readonly webhooks: WebhooksService;
  /** Publishing (issue 11): sites, content, the verified S3 mirror, health and failover. */
  readonly publishing: Pick<PublishingModule, 'sites' | 'content' | 'mirror' | 'health' | 'directory' | 'publishingTasks'>;
  /** The HTTP server; reading it on an app built with `http: false` throws. */
  readonly http: FastifyInstance;
  /** Login and share-password throttles, on Redis or the database (shared by every process). */
  readonly throttles: Throttles;
  /** Background tasks: define, enqueue, results, schedules, workers (docs/tasks.md). */
  readonly tasks: TaskFramework;
  /** Append-only streams with consumer groups (database table, or Redis Streams with the redis tasks backend). */
  readonly streams: StreamLog;
  /** Network-device configuration backups (issue 9, docs/backups.md). */
  readonly backups: BackupsModule;
  /** Collecting them over SSH: credentials, models, collect tasks and schedules (issue 10, docs/collection.md). */
  readonly collect: Pick<CollectModule, 'collect' | 'credentials' | 'imports' | 'models'>;
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

/**
 * The key of secrets kept encrypted at rest (src/lib/secret-box.ts): STORMVAULT_SECRET_KEY, or the one kept
 * in `<dataDir>/secret-key`, generated on first start (as the JWT secret is). Losing it makes the stored
 * S3 and webhook secrets unreadable: back it up with the database.
 */
async function resolveSecretKey(config: Config): Promise<string> {
  if (config.secretKey) return config.secretKey;
  await mkdir(config.dataDir, { recursive: true });
  const file = path.join(config.dataDir, 'secret-key');
  const text = (await readOrCreateFile(file, newSecretKeyText)).trim();
  if (!parseSecretKey(text)) throw new Error(`${file} does not hold a secret key (64 hex digits)`);
  return text;
}

export async function createApp(baseConfig: Config, options: AppOptions = {}): Promise<App> {
  if (options.modules && options.http !== false) throw new Error('createApp: an app that serves HTTP builds every module (pass http: false with modules)');
  const wanted = options.modules ? modulesWith(options.modules) : new Set(APP_MODULES);
  const has = (name: AppModuleName) => wanted.has(name);
  // The modules' code loads while the secrets and the database are prepared.
  const code = loadModuleCode(wanted);
  code.catch(() => {}); // awaited below; not an unhandled rejection if start-up fails first
  // Both secret files are written durably on first start (fsync of the file and the folder), side by
  // side and while the database opens and migrates (issue 12: an empty data dir's first command).
  // Only for the modules that use them: the JWT secret signs auth's tokens, the secrets key seals what
  // webhooks, collect and publishing keep encrypted. A one-shot command without them (an audit, say)
  // neither reads nor creates them (issue 12, CLI start-up); the first start that needs one creates it.
  const secretsRead = Promise.all([
    has('auth') ? resolveJwtSecret(baseConfig) : undefined,
    has('webhooks') || has('collect') || has('publishing') ? resolveSecretKey(baseConfig) : undefined,
  ]);
  secretsRead.catch(() => {}); // awaited below; not an unhandled rejection if the database fails first
  const clock = options.clock ?? systemClock;
  // Without one given, the server's (pino from the bundle); one-shot commands pass the CLI's deferred one.
  const logger = options.logger ?? (await import('./logger.ts')).createLogger(baseConfig);
  await Promise.all([mkdir(baseConfig.storageRoot, { recursive: true }), mkdir(baseConfig.publishing.root, { recursive: true })]);

  const database = createDatabase(baseConfig.database.url);
  const closers: Array<() => Promise<void>> = [() => database.destroy()];
  try {
    if (options.migrate !== false) await migrateToLatest(database.db);
    const [jwtSecret, secretKey] = await secretsRead;
    let config = baseConfig;
    if (jwtSecret !== undefined) config = withJwtSecret(config, jwtSecret);
    if (secretKey !== undefined) config = withSecretKey(config, secretKey);
    const secrets = secretKey !== undefined ? new SecretBox(parseSecretKey(secretKey)!) : undefined;

    // Built first so every module below can define its tasks; closed after HTTP, before the pool its workers use.
    const tasks = await createTaskFramework({ config, clock, logger, db: database.db, dialect: database.dialect });
    const tasksCloser = () => tasks.close();
    closers.unshift(tasksCloser);
    // Locks and nudges shared by every serve/worker process (Redis, else PostgreSQL; issue 12).
    const coordination = await createCoordination({ config, logger, clock, db: database.db, dialect: database.dialect });
    closers.unshift(() => coordination.close());
    logger.info({ coordination: coordination.kind }, 'coordination ready');

    // Login and share-password throttles on a store every process shares (Redis or the database), for the
    // two modules that throttle; an app without them (a one-shot audit, say) does not load the rate
    // limiter at all (issue 12, CLI start-up).
    const throttled = has('auth') || has('shares');
    const throttles = throttled ? await (await import('./throttle/create-throttles.ts')).createThrottles({ config, clock, db: database.db }) : undefined;
    if (throttles) closers.unshift(() => throttles.close());

    const core: Core = {
      config,
      clock,
      logger,
      db: database.db,
      dialect: database.dialect,
      ...(database.sqlite ? { sqlite: database.sqlite } : {}),
      tasks,
      locks: new LeaseLocks(new LocksRepository(database.db), clock, { logger }),
      storage: { root: config.storageRoot, files: new FsBlobStore(config.storageRoot, { freeBytes: options.freeBytes }) },
      get throttles() {
        if (!throttles) throw new Error(`this app was built without the auth and shares modules, which throttle (createApp with modules: ${[...wanted].join(', ')})`);
        return throttles;
      },
      signals: coordination.signals,
    };
    const m = await code;

    // Each capability is one create<Name>Module(core, deps) call; deps are other modules' services.
    // A module is built when `wanted` has it, and then so is everything it needs (MODULE_NEEDS): the `!`s below.
    const meExtensions: MeExtension[] = [];
    const users = has('users') ? m.users!.createUsersModule(core, { meExtensions }) : undefined;
    const devices = has('devices') ? m.devices!.createDevicesModule(core) : undefined;
    const auth = has('auth')
      ? m.auth![0].createAuthModule(core, { users: users!.users, registerDevice: async (userId, name) => (await devices!.devices.register(userId, name)).id })
      : undefined;
    const files = has('files')
      ? m.files!.createFilesModule(core, {
          quotas: { quotaBytes: async (userId) => (await users!.users.findById(userId))?.quotaBytes },
          lock: coordination.writeLock,
        })
      : undefined;
    // A move cut by a crash is finished or undone before anything reads the index (files module journal).
    if (files && options.migrate !== false) {
      const recovered = await files.files.recoverInterruptedMoves();
      if (recovered.finished + recovered.undone > 0) logger.warn(recovered, 'files: resolved moves interrupted by a crash');
    }
    const shares = has('shares') ? m.shares!.createShareLinksModule(core, { files: files!.files }) : undefined;
    const organizations = has('organizations') ? m.organizations!.createOrganizationsModule(core, { users: users!.users }) : undefined;
    // Org admins may rebuild their own organization's backups index (issue 9).
    const indexSync = has('indexSync')
      ? m.indexSync!.createIndexSyncModule(core, organizations ? { contextOf: organizations.contextOf } : {})
      : undefined;
    if (organizations) meExtensions.push(organizations.meExtension);
    // Records publish changes to the sync module's fan-out without importing sync (issue 8).
    const syncEvents: SyncEvents | undefined = has('records')
      ? new m.records![1].SyncEvents({
          clock,
          // In one process (SQLite) the local bus would only echo this process's own notices.
          signals: coordination.kind === 'process' ? undefined : coordination.signals,
          // Through the records module's sync service, as the sync module reads it; first called once serving.
          latestSeq: async (organizationId) => (await records!.sync.organizationSeqs(organizationId))?.changeSeq ?? 0,
          onError: (err) => logger.warn({ err }, 'sync events: could not pass on or poll for changes'),
        })
      : undefined;
    const metrics = has('metrics') ? m.metrics![0].createMetricsModule(core, { indexTaskName: m.metrics![1].REBUILD_INDEX_TASK }) : undefined;
    const records: RecordsModule | undefined = has('records') ? m.records![0].createRecordsModule(core, { contextOf: organizations!.contextOf, publisher: syncEvents! }) : undefined;
    const sync = has('sync')
      ? m.sync!.createSyncModule(core, {
          records: records!,
          events: syncEvents!,
          devices: devices!.devices,
          contextOf: organizations!.contextOf,
          // Only an app with the metrics module counts sync activity (a one-shot command is never scraped).
          ...(metrics ? { observe: (a) => metrics.metrics.observeSync(a) } : {}),
        })
      : undefined;
    let streams: StreamLog | undefined;
    let backups: BackupsModule | undefined;
    let collect: CollectModule | undefined;
    if (has('backups')) {
      const { createStreamLog } = m.backups![1];
      const openStreams = await createStreamLog({ config, clock, db: database.db, dialect: database.dialect, claimTimeoutMs: config.backups.streamClaimTimeoutMs });
      streams = openStreams;
      // Closed after the task framework (its workers may still append results), before the pool.
      closers.splice(closers.length - 1, 0, () => openStreams.close());
    }
    // A malformed custom model stops start-up here, naming the file and the reason (issue 10).
    const models = has('collect') ? await m.collect![1].loadModelRegistry(config.dataDir) : undefined;
    if (has('backups')) {
      // Backups check collection fields and report outcomes through collect, created right after (no module cycle).
      const built = m.backups![0].createBackupsModule(core, {
        streams: streams!,
        contextOf: organizations!.contextOf,
        checkCollection: (ctx, c) => collect!.collect.checkCollectionFields(ctx, c),
        onOutcome: (o) => collect!.notifications.onOutcome(o),
      });
      backups = built;
      // Stream consumers stop before the task framework and the pool they use; the storage plugins after
      // the task workers (closers run first to last: tasks.close is further down the list).
      closers.splice(closers.indexOf(tasksCloser) + 1, 0, () => built.closeStorage());
      closers.unshift(() => built.stopConsumers());
      indexSync?.indexSync.registerScope(built.indexSide);
    }
    // Webhooks and CDN probes go to URLs users typed: public addresses only, unless the admin allows more.
    const outbound = has('webhooks')
      ? new m.webhooks![1].OutboundPolicy({
          allowPrivate: config.outbound.allowPrivate,
          allowed: m.webhooks![2].AddressSet.parse(config.outbound.allowed.join(',')) ?? undefined,
          resolve: options.resolveHost,
        })
      : undefined;
    const webhooks = has('webhooks') ? m.webhooks![0].createWebhooksModule(core, { secrets: secrets!, contextOf: organizations!.contextOf, outbound: outbound! }) : undefined;
    if (has('collect')) {
      collect = m.collect![0].createCollectModule(core, {
        secrets: secrets!,
        streams: streams!,
        models: models!,
        devices: backups!.devices,
        locations: backups!.locations,
        contextOf: organizations!.contextOf,
        dispatch: (orgId, event, data) => webhooks!.webhooks.dispatch(orgId, event, data),
      });
    }
    const alerts = has('alerts')
      ? m.alerts!.createAlertsModule(core, { contextOf: organizations!.contextOf, notify: async (orgId, event, data) => void (await webhooks!.webhooks.dispatch(orgId, event, data)) })
      : undefined;
    const publishing = has('publishing')
      ? await m.publishing!.createPublishingModule(core, {
          secrets: secrets!,
          organizations: organizations!.organizations,
          contextOf: organizations!.contextOf,
          alerts: alerts!.alerts,
          outbound: outbound!,
          ...options.publishing,
        })
      : undefined;
    if (publishing) indexSync?.indexSync.registerScope(publishing.indexSide);
    // Issue 11's daily full scan of the publish root (and the buckets), at the files audit's time.
    if (indexSync && publishing && config.indexSync.auditSchedule) {
      tasks.schedule({ name: PUBLISHING_AUDIT_SCHEDULE, cron: config.indexSync.auditSchedule, timezone: 'UTC', task: indexSync.rebuildTask, args: { mode: 'audit', scope: 'publishing' } });
    }

    const webdav = has('webdav') ? m.webdav!.createWebdavModule(core, { files: files!.files }) : undefined;
    const health = has('health') ? m.health!.createHealthModule(core) : undefined;
    const adminTasks = has('adminTasks') ? m.adminTasks!.createAdminTasksModule(core) : undefined;

    // Routes register in this order.
    const modules: ModuleParts[] = [
      // First, so its response hook times every route registered after it.
      metrics,
      health,
      auth,
      adminTasks,
      indexSync,
      users,
      files,
      shares,
      organizations,
      devices,
      records,
      sync,
      backups,
      collect,
      webhooks,
      alerts,
      publishing,
      webdav,
    ].filter((part): part is ModuleParts => part !== undefined);
    let http: FastifyInstance | undefined;
    if (options.http !== false) {
      // Every module is built (modules is refused above with HTTP). Imported here so apps built without
      // HTTP never load fastify, its plugins and the route schemas.
      const { buildHttpServer } = await import('./http/server.ts');
      const { API_KEY_PREFIX } = m.auth![1];
      const authModule = auth!;
      const server = await buildHttpServer({
        config,
        logger,
        // The HTTP core sees authentication as one function (issue 8: http/ imports no feature module).
        authenticate: (token) => (token.startsWith(API_KEY_PREFIX) ? authModule.apiKeys.authenticate(token) : authModule.auth.authenticateAccessToken(token)),
        // WebDAV clients send Basic: username + password (throttled as the REST login) or username + API key.
        authenticateBasic: async (username, secret, ip) => {
          if (secret.startsWith(API_KEY_PREFIX)) {
            const principal = await authModule.apiKeys.authenticate(secret);
            return principal && principal.username.toLowerCase() === username.toLowerCase() ? principal : null;
          }
          const user = await authModule.auth.checkBasicPassword(username, secret, ip);
          return { userId: user.id, username: user.username, isAdmin: user.isAdmin, via: 'password' };
        },
        routes: modules.flatMap((part) => part.routes),
        webRoot: options.webRoot === undefined ? defaultWebRoot() : options.webRoot,
      });
      for (const part of modules) if (part.beforeClose) server.addHook('preClose', async () => part.beforeClose!());
      closers.unshift(() => server.close());
      // Only a process that serves event streams listens for other processes' changes.
      await syncEvents!.start();
      closers.unshift(() => syncEvents!.stop());
      http = server;
    } else {
      // No server whose preClose would run them: the modules' own shutdown (timers, streams) runs first on close.
      closers.unshift(async () => {
        for (const part of modules) if (part.beforeClose) await part.beforeClose();
      });
    }
    const httpServer = (): FastifyInstance => {
      if (!http) throw new Error('this app was built without an HTTP server (createApp with http: false)');
      return http;
    };
    /** A module's service; throws when the module was not built (createApp with `modules`). */
    const built = <T>(name: AppModuleName, service: T | undefined): T => {
      if (service === undefined) throw new Error(`this app was built without the ${name} module (createApp with modules: ${[...wanted].join(', ')})`);
      return service;
    };

    let closed = false;
    return {
      config,
      clock,
      logger,
      db: database.db,
      dialect: database.dialect,
      get users() {
        return built('users', users?.users);
      },
      get apiKeys() {
        return built('auth', auth?.apiKeys);
      },
      get auth() {
        return built('auth', auth?.auth);
      },
      get files() {
        return built('files', files?.files);
      },
      get shares() {
        return built('shares', shares?.shares);
      },
      get indexSync() {
        return built('indexSync', indexSync?.indexSync);
      },
      get organizations() {
        return built('organizations', organizations?.organizations);
      },
      get devices() {
        return built('devices', devices?.devices);
      },
      get records() {
        return built('records', records?.records);
      },
      get sync() {
        return built('sync', sync?.sync);
      },
      get alerts() {
        return built('alerts', alerts?.alerts);
      },
      get webhooks() {
        return built('webhooks', webhooks?.webhooks);
      },
      get publishing() {
        return built('publishing', publishing);
      },
      get throttles() {
        return core.throttles;
      },
      get http() {
        return httpServer();
      },
      tasks,
      get streams() {
        return built('backups', streams);
      },
      get backups() {
        return built('backups', backups);
      },
      get collect() {
        return built('collect', collect);
      },
      listen: () => httpServer().listen({ host: config.server.host, port: config.server.port }),
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

/** Imports the code of the wanted modules, all at once. */
async function loadModuleCode(wanted: ReadonlySet<AppModuleName>): Promise<Partial<ModuleCode>> {
  const names = APP_MODULES.filter((name) => wanted.has(name));
  const loaded = await Promise.all(names.map((name) => MODULE_CODE[name]()));
  return Object.fromEntries(names.map((name, i) => [name, loaded[i]])) as Partial<ModuleCode>;
}
