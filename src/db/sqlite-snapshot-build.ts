import { createDatabase } from './database.ts';
import { migrations } from './migration-list.ts';
import { migrateToLatest } from './migrator.ts';
import { captureSqliteSnapshot, type SqliteSnapshot } from './sqlite-snapshot.ts';

/**
 * The snapshot of this build's migrations (src/db/sqlite-snapshot.ts): runs every migration on an empty
 * in-memory SQLite database, reads its end state, and checks it against a second one. scripts/build.mjs
 * calls this from a bundle of this file and embeds the result into dist/.
 */
export async function buildSqliteSnapshot(): Promise<SqliteSnapshot> {
  const migrated = createDatabase(':memory:');
  const scratch = createDatabase(':memory:');
  try {
    await migrateToLatest(migrated.db, { snapshot: null });
    return await captureSqliteSnapshot(migrated.db, scratch.db, Object.keys(migrations));
  } finally {
    await Promise.all([migrated.destroy(), scratch.destroy()]);
  }
}
