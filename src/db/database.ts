import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresAdapter, PostgresDialect, SqliteDialect, type Dialect } from 'kysely';
import type { Database, Db } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Db;
  dialect: DialectName;
  /** The better-sqlite3 connection, for the few places that need a synchronous transaction. */
  sqlite?: SqliteDatabase.Database;
  destroy(): Promise<void>;
}

/** The better-sqlite3 connection under each SQLite Kysely instance createDatabase made (see sqliteConnectionOf). */
const sqliteConnections = new WeakMap<object, SqliteDatabase.Database>();

/**
 * The better-sqlite3 connection kysely's SQLite driver runs `db`'s queries on (one connection, so a
 * statement run on it directly belongs to the transaction kysely has open), or undefined for PostgreSQL
 * and for instances not made by createDatabase. For the few callers that run many statements at once
 * (a new database's schema snapshot: one `exec` instead of a kysely round trip per statement).
 */
export function sqliteConnectionOf(db: object): SqliteDatabase.Database | undefined {
  return sqliteConnections.get(db);
}

let addonPath: string | null | undefined;

/**
 * Where better-sqlite3's native addon is, handed to it as `nativeBinding` so it does not search for it
 * (its `bindings` package tries a dozen places: ~3-4 ms of every command, issue 12, CLI start-up). Null
 * when the addon is not at the place its install builds it to: better-sqlite3 then searches as before.
 */
function sqliteAddon(): string | null {
  if (addonPath === undefined) {
    try {
      const file = createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
      addonPath = existsSync(file) ? file : null;
    } catch {
      addonPath = null;
    }
  }
  return addonPath;
}

/** Resolves `sqlite:<file>` or a bare path to an absolute file path. */
export function sqliteFileFromUrl(url: string): string {
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : url;
  return file === ':memory:' ? file : path.resolve(file);
}

// int8 (bigint) and numeric come back from pg as strings by default; our sizes and counters fit in 2^53.
const PG_INT8 = 20;
const PG_NUMERIC = 1700;

/**
 * The pg pool, created on first use: pg is imported only then, so a process on SQLite never loads it
 * (loading pg also loads Node's fetch implementation: ~20 ms of a short CLI command, issue 12).
 */
async function createPgPool(url: string, max: number) {
  const { default: pg } = await import('pg');
  const types = {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === PG_INT8 || oid === PG_NUMERIC) return (v: string) => Number(v);
      return pg.types.getTypeParser(oid, format as 'text');
    },
  };
  const pool = new pg.Pool({ connectionString: url, max, types: types as never });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

export function createDatabase(url: string, options: { poolSize?: number } = {}): DatabaseHandle {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const max = options.poolSize ?? 10;
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: () => createPgPool(url, max) }) });
    return { db, dialect: 'postgres', destroy: () => db.destroy() };
  }
  const file = sqliteFileFromUrl(url);
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const addon = sqliteAddon();
  const sqlite = new SqliteDatabase(file, addon ? { nativeBinding: addon } : {});
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  // WAL + NORMAL is durable against process crashes; only an OS crash can lose the last commits.
  sqlite.pragma('synchronous = NORMAL');
  const dialect: Dialect = new SqliteDialect({ database: cachingPrepare(sqlite) });
  const db = new Kysely<Database>({ dialect });
  sqliteConnections.set(db, sqlite);
  return { db, dialect: 'sqlite', sqlite, destroy: () => db.destroy() };
}

/**
 * What Kysely's SQLite driver is given: it calls `prepare(sql)` for every query, and compiling a statement
 * costs about as much as running a short one (~60-120 µs; a third of the database time of bench/collect).
 * The last `max` distinct statements are kept and reused. Kysely runs one query at a time on the
 * connection (its mutex), so a cached statement is never in use twice; a busy one (an open iterator) is
 * replaced, never shared. SQLite re-prepares a cached statement itself after a schema change.
 */
export function cachingPrepare(sqlite: SqliteDatabase.Database, max = 500) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sql: string): SqliteDatabase.Statement {
      const hit = cache.get(sql);
      cache.delete(sql);
      const stmt = hit && !hit.busy ? hit : sqlite.prepare(sql);
      cache.set(sql, stmt); // most recently used last
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return stmt;
    },
  };
}

/** For migrations, which receive a Kysely<any>: tells the dialect from the adapter. */
export function isPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
