import type { DbOrTx } from './schema.ts';

/**
 * The one way to open a transaction (issue 8, after kysely's example/): the service that needs several
 * writes to commit together calls this and builds its repositories on the handle (`repo.on(tx)`);
 * repositories take `Db | Transaction` and never open a transaction themselves. Called inside a
 * transaction already, `fn` joins it instead of nesting. Exceptions, each for a dialect-specific mode:
 * the tasks backend's SQLite `BEGIN IMMEDIATE` and index-sync's bulk writes (`SET LOCAL
 * synchronous_commit`), both inside their repository (docs/architecture.md).
 */
export function inTransaction<T>(db: DbOrTx, fn: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : db.transaction().execute(fn);
}
