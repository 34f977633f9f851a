import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * `rebuild-index --scope backups` (issue 9) streams a location's stored_backups rows ordered by
 * storage_ref in byte order, the order of its storage scan. SQLite's BINARY collation is byte order, so
 * stored_backups_location_idx (location_id, storage_ref) already serves it; PostgreSQL sorts text by the
 * database collation unless told COLLATE "C", and without an index in that collation every page of the
 * stream would sort all of the location's rows again (as 0004 did for stored_files).
 */
export async function up(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) {
    await sql`CREATE INDEX stored_backups_rebuild_order_idx ON stored_backups (location_id, storage_ref COLLATE "C")`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
