import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { systemClock, type Clock } from '../../src/clock.ts';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import type { TaskBackendFactory } from '../../src/tasks/backend.port.ts';
import { databaseBackend } from '../../src/tasks/backends/database/database.backend.ts';
import { immediateBackend } from '../../src/tasks/backends/immediate.backend.ts';
import { TaskFramework } from '../../src/tasks/framework.ts';
import { testDialects } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';
import { redisFixtures } from './redis.fixture.ts';

/**
 * The backends the task conformance suite runs against. Each fixture opens a "store" (a queue all its
 * nodes share: a database, a Redis prefix…) and builds "nodes" on it: TaskFrameworks standing for the
 * processes of a deployment. To add a backend, push a fixture in taskBackendFixtures().
 */
export interface TaskBackendFixture {
  readonly name: string;
  open(): Promise<TaskStore>;
}

export interface NodeOptions {
  clock?: Clock;
  /** Lease of claimed tasks (backends with leases). */
  leaseMs?: number;
  /** Idle poll interval of a started worker. */
  pollMs?: number;
  /** Its own connection, as a separate process would have (default: share the store's). */
  isolated?: boolean;
}

export interface TaskStore {
  node(options?: NodeOptions): Promise<TaskFramework>;
  /** Closes every node built so far (their workers stop); the store stays. Called after each test. */
  closeNodes?(): Promise<void>;
  /** For child-process tests: the database URL the store lives in (database backends only). */
  readonly databaseUrl?: string;
  close(): Promise<void>;
}

export const silentLogger = pino({ level: process.env.STORMVAULT_TEST_LOG_LEVEL ?? 'silent' });

/** A framework on `backend` with test-friendly defaults. */
export function frameworkOn(backend: TaskBackendFactory, clock: Clock = systemClock): TaskFramework {
  return new TaskFramework({
    clock,
    logger: silentLogger,
    backend,
    retentionMs: 7 * 24 * 3600_000,
    deadRetentionMs: 30 * 24 * 3600_000,
    concurrency: 4,
    shutdownGraceMs: 2000,
    waitPollMs: 10,
  });
}

function immediateFixture(): TaskBackendFixture {
  return {
    name: 'immediate',
    async open() {
      const nodes: TaskFramework[] = [];
      return {
        // Every node has its own memory: nothing is shared (capabilities.durable is false).
        async node(options = {}) {
          const fw = frameworkOn(immediateBackend(), options.clock);
          nodes.push(fw);
          return fw;
        },
        async closeNodes() {
          for (const n of nodes.splice(0)) await n.close();
        },
        async close() {
          for (const n of nodes.splice(0)) await n.close();
        },
      };
    },
  };
}

function databaseFixture(dialect: 'sqlite' | 'postgres'): TaskBackendFixture {
  return {
    name: `database/${dialect}`,
    async open() {
      const dir = await mkdtemp(path.join(tmpdir(), 'stormvault-tasks-'));
      const database = await freshDatabaseUrl(dialect, dir);
      const shared = createDatabase(database.url);
      await migrateToLatest(shared.db);
      const handles: DatabaseHandle[] = [shared];
      const nodes: TaskFramework[] = [];
      return {
        databaseUrl: database.url,
        async node(options = {}) {
          // SQLite connections in ONE process cannot stand for separate processes: a connection blocked in
          // busy_timeout blocks the event loop, so the holder of the write lock (same thread) never
          // commits. Real multi-process contention on SQLite is covered by the child-process tests.
          const handle = options.isolated && dialect === 'postgres' ? createDatabase(database.url, { poolSize: 4 }) : shared;
          if (handle !== shared) handles.push(handle);
          const fw = frameworkOn(
            databaseBackend({ db: handle.db, dialect: handle.dialect, leaseMs: options.leaseMs ?? 30_000, pollMs: options.pollMs ?? 20 }),
            options.clock,
          );
          nodes.push(fw);
          return fw;
        },
        async closeNodes() {
          for (const n of nodes.splice(0)) await n.close();
        },
        async close() {
          for (const n of nodes.splice(0)) await n.close();
          for (const h of handles) await h.destroy();
          await database.drop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** immediate, database on SQLite, database on PostgreSQL (when configured). The redis fixture goes here too. */
export function taskBackendFixtures(): TaskBackendFixture[] {
  return [immediateFixture(), ...testDialects().map((d) => databaseFixture(d)), ...redisFixtures()];
}

/** Only the database fixtures (child-process tests). */
export function databaseFixtures(): TaskBackendFixture[] {
  return testDialects().map((d) => databaseFixture(d));
}
