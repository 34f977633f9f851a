import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createApp, type App, type AppOptions } from '../../src/app.ts';
import type { Clock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { User } from '../../src/modules/users/users.types.ts';
import { TEST_PG_URL, type TestDialect } from './env.ts';

/**
 * A fresh, empty database URL for one test app: a SQLite file in `dir`, or a new PostgreSQL database
 * (test files run in parallel, so each gets its own). The returned drop() removes it.
 */
export async function freshDatabaseUrl(dialect: TestDialect, dir: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (dialect === 'sqlite') return { url: `sqlite:${path.join(dir, 'test.db')}`, drop: async () => {} };
  if (!TEST_PG_URL) throw new Error('STORMVAULT_TEST_DATABASE_URL is not set');
  const name = `sv_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface TestApp {
  app: App;
  config: Config;
  /** The temp dir holding data dir and storage root. */
  dir: string;
  /** Closes the app, drops the database and removes the temp dir. */
  cleanup: () => Promise<void>;
}

export interface TestAppOptions {
  dialect?: TestDialect;
  /** Extra STORMVAULT_* settings. */
  env?: Record<string, string>;
  clock?: Clock;
  /** More createApp options (test hooks such as `publishing`). */
  appOptions?: Omit<AppOptions, 'clock'>;
  /** Free bytes of the storage volume (default: statfs): lets a test pretend a small volume. */
  freeBytes?: (dir: string) => Promise<number>;
  /** Where the app's log lines go (default stderr): a test can read them. */
  logStream?: { write(chunk: string): unknown };
}

/** A real app on a temp dir with a real database (DESIGN.md: medium tests). */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dir = await mkdtemp(path.join(tmpdir(), 'stormvault-test-'));
  const database = await freshDatabaseUrl(options.dialect ?? 'sqlite', dir);
  const config = loadConfig({
    STORMVAULT_DATA_DIR: path.join(dir, 'data'),
    STORMVAULT_DATABASE_URL: database.url,
    STORMVAULT_LOG_LEVEL: process.env.STORMVAULT_TEST_LOG_LEVEL ?? 'silent',
    STORMVAULT_MIN_FREE_BYTES: '0',
    STORMVAULT_TASKS_BACKEND: 'immediate',
    ...options.env,
  });
  const app = await createApp(config, { ...options.appOptions, clock: options.clock, freeBytes: options.freeBytes, logger: createLogger(config, options.logStream ?? process.stderr) });
  return {
    app,
    config: app.config,
    dir,
    cleanup: async () => {
      await app.close();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestUser {
  user: User;
  key: string;
  /** `{ authorization: 'Bearer <key>' }`, ready for app.http.inject. */
  headers: { authorization: string };
}

let userCounter = 0;
export async function createUserWithKey(
  app: App,
  options: { username?: string; admin?: boolean; password?: string; quotaBytes?: number | null } = {},
): Promise<TestUser> {
  const user = await app.users.create({
    username: options.username ?? `user${++userCounter}-${randomBytes(3).toString('hex')}`,
    password: options.password,
    isAdmin: options.admin ?? false,
    quotaBytes: options.quotaBytes,
  });
  const { key } = await app.apiKeys.create(user.id, 'test');
  return { user, key, headers: { authorization: `Bearer ${key}` } };
}
