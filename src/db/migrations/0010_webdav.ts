import type { Kysely } from 'kysely';

/**
 * Issue 13 (WebDAV).
 * - `dav_properties`: dead properties set by PROPPATCH (RFC 4918 §9.2), keyed by owner, path and the
 *   property's expanded name; they follow their resource on MOVE/COPY and go with it on DELETE.
 * - `dav_locks`: write locks (RFC 4918 §6-7) in the database, so every `serve` process sees the same ones.
 *   Paths use the files index's form (NFC, no leading slash, '' = the root).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('dav_properties')
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('namespace', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    /** The property's value as namespace-complete XML (its children, serialized). */
    .addColumn('value_xml', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('dav_properties_pk', ['owner_id', 'path', 'namespace', 'name'])
    .execute();

  await db.schema
    .createTable('dav_locks')
    .addColumn('token', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('depth', 'text', (c) => c.notNull())
    /** The DAV:owner element the client sent, serialized (returned in lockdiscovery). */
    .addColumn('owner_xml', 'text')
    .addColumn('timeout_seconds', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dav_locks_owner_path_idx').on('dav_locks').columns(['owner_id', 'path']).execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only');
}
