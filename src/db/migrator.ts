import { Migrator, type MigrationResultSet } from 'kysely';
import { migrations } from './migrations/index.ts';
import type { Db } from './schema.ts';

export interface MigrateOutcome {
  applied: string[];
}

/** Brings the schema to the latest version. Safe to call on every start (it is what `serve` does). */
export async function migrateToLatest(db: Db): Promise<MigrateOutcome> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'stormvault_migrations',
    migrationLockTableName: 'stormvault_migrations_lock',
    // Features land in parallel with numbered migrations; an install that ran a later number first must
    // still accept an earlier one added afterwards.
    allowUnorderedMigrations: true,
  });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${reason}`);
  }
  return { applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
