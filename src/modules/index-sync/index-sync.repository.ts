import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import { isPostgres } from '../../db/database.ts';
import type { Database, Db, DbOrTx } from '../../db/schema.ts';
import type { FileRecord } from '../files/files.types.ts';
import type { IndexRow } from './index-diff.ts';

/**
 * A row sync inserts for a disk entry the index lacks: the FileRecord fields the disk determines (id,
 * timestamps of the row and sha256 are set by the insert).
 */
export type NewIndexRow = Pick<FileRecord, 'ownerId' | 'path' | 'name' | 'parentPath' | 'size' | 'contentType' | 'isDirectory' | 'modifiedAt'>;

/** New values for a stale row (disk wins). `clearSha256` when the content may have changed. */
export interface IndexRowUpdate {
  id: number;
  size: number;
  contentType: string;
  isDirectory: boolean;
  modifiedAt: string;
  clearSha256: boolean;
}

/** A page position in the (parent_path, name) stream. */
export interface RowCursor {
  parentPath: string;
  name: string;
}

interface RowShape {
  id: number;
  path: string;
  name: string;
  parent_path: string;
  size: number;
  content_type: string;
  is_directory: number;
  modified_at: string;
  updated_at?: string;
}

const toIndexRow = (r: Omit<RowShape, 'path'> & { path?: string }): IndexRow & { parentPath: string } => ({
  id: Number(r.id),
  path: r.path ?? (r.parent_path === '' ? r.name : `${r.parent_path}/${r.name}`),
  name: r.name,
  parentPath: r.parent_path,
  size: Number(r.size),
  contentType: r.content_type,
  isDirectory: Number(r.is_directory) === 1,
  modifiedAt: r.modified_at,
  ...(r.updated_at === undefined ? {} : { updatedAt: r.updated_at }),
});

/** Number of characters (code points), which is what substr() counts on both SQLite and PostgreSQL. */
const codePoints = (s: string) => [...s].length;

// Batches stay well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
const INSERT_CHUNK = 1000;
const ID_CHUNK = 1000;

/** Index reads and writes of reconciliation; the only SQL of the index-sync module. */
export class IndexSyncRepository {
  private readonly pg: boolean;

  constructor(private readonly db: Db) {
    this.pg = isPostgres(db as never);
  }

  async userExists(id: string): Promise<boolean> {
    return (await this.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  async listUserIds(): Promise<string[]> {
    const rows = await this.db.selectFrom('users').select('id').orderBy('id').execute();
    return rows.map((r) => r.id);
  }

  /** Whether the user has any index row at or below `scope` ('' = anywhere). */
  async hasRows(ownerId: string, scope: string): Promise<boolean> {
    let q = this.db.selectFrom('stored_files').select('id').where('owner_id', '=', ownerId);
    if (scope !== '') q = q.where((eb) => eb.or([eb('path', '=', scope), this.below(eb, 'path', scope)]));
    return (await q.limit(1).executeTakeFirst()) !== undefined;
  }

  async rowAt(ownerId: string, path: string): Promise<IndexRow | undefined> {
    const row = await this.db.selectFrom('stored_files').selectAll().where('owner_id', '=', ownerId).where('path', '=', path).executeTakeFirst();
    return row && toIndexRow(row as RowShape);
  }

  /**
   * One page of the user's rows whose parent folder is `scope` or below it, ordered by (parent_path, name)
   * in byte order (code point order) — the order the service visits folders in — after `after`.
   */
  async rowsPage(ownerId: string, scope: string, after: RowCursor | null, limit: number): Promise<Array<IndexRow & { parentPath: string }>> {
    const c = this.pg ? sql`COLLATE "C"` : sql``;
    let q = this.db
      .selectFrom('stored_files')
      // path (= parent_path/name) and updated_at (re-read for the rows that differ) are not fetched: two
      // strings less per row on a million rows.
      .select(['id', 'name', 'parent_path', 'size', 'content_type', 'is_directory', 'modified_at'])
      .where('owner_id', '=', ownerId);
    if (scope !== '') q = q.where((eb) => eb.or([eb('parent_path', '=', scope), this.below(eb, 'parent_path', scope)]));
    if (after) q = q.where(sql<SqlBool>`(parent_path ${c}, name ${c}) > (${after.parentPath}, ${after.name})`);
    const rows = await q.orderBy(sql`parent_path ${c}`).orderBy(sql`name ${c}`).limit(limit).execute();
    return rows.map((r) => toIndexRow(r as Omit<RowShape, 'path'>));
  }

  /**
   * Of `paths` (one owner), those that have a row now, or that a row is being moved to (the files API's
   * move journal, `pending_path`: the rename on disk is done or about to be, the row update follows).
   */
  async existingPaths(ownerId: string, paths: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < paths.length; i += ID_CHUNK) {
      const chunk = paths.slice(i, i + ID_CHUNK);
      const rows = await this.db
        .selectFrom('stored_files')
        .select(['path', 'pending_path'])
        .where('owner_id', '=', ownerId)
        .where((eb) => eb.or([this.inList(eb, 'path', chunk, 'text'), this.inList(eb, 'pending_path', chunk, 'text')]))
        .execute();
      for (const r of rows) {
        found.add(r.path);
        if (r.pending_path !== null) found.add(r.pending_path);
      }
    }
    return found;
  }

  /**
   * The current path and update time of rows by id (missing ids were deleted meanwhile), and whether a
   * move of the row is in flight (the files API's journal): such a row is neither stale nor orphaned.
   */
  async currentVersions(ids: number[]): Promise<Map<number, { path: string; updatedAt: string; moving: boolean }>> {
    const out = new Map<number, { path: string; updatedAt: string; moving: boolean }>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('stored_files')
        .select(['id', 'path', 'updated_at', 'pending_path'])
        .where((eb) => this.inList(eb, 'id', ids.slice(i, i + ID_CHUNK), 'bigint'))
        .execute();
      for (const r of rows) out.set(Number(r.id), { path: r.path, updatedAt: r.updated_at, moving: r.pending_path !== null });
    }
    return out;
  }

  /**
   * Inserts rows in multi-row statements; a row whose path appeared meanwhile (an upload won the race)
   * is left alone. Returns how many were inserted.
   */
  async insertRows(rows: NewIndexRow[], nowIso: string): Promise<number> {
    return this.bulkWrite(async (db) => {
      let inserted = 0;
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        if (this.pg) {
          // One parameter per column (arrays) instead of one per value: PostgreSQL parses and plans a
          // 1,000-row VALUES list with 11,000 parameters several times slower (DESIGN.md: unnest on PostgreSQL).
          const chunk = rows.slice(i, i + INSERT_CHUNK);
          const result = await sql`
            INSERT INTO stored_files (owner_id, path, name, parent_path, size, content_type, is_directory, sha256, modified_at, created_at, updated_at)
            SELECT owner_id, path, name, parent_path, size, content_type, is_directory, NULL, modified_at, ${nowIso}, ${nowIso}
            FROM unnest(${chunk.map((r) => r.ownerId)}::text[], ${chunk.map((r) => r.path)}::text[], ${chunk.map((r) => r.name)}::text[],
                        ${chunk.map((r) => r.parentPath)}::text[], ${chunk.map((r) => r.size)}::bigint[], ${chunk.map((r) => r.contentType)}::text[],
                        ${chunk.map((r) => (r.isDirectory ? 1 : 0))}::int[], ${chunk.map((r) => r.modifiedAt)}::text[])
                 AS u(owner_id, path, name, parent_path, size, content_type, is_directory, modified_at)
            ON CONFLICT (owner_id, path) DO NOTHING`.execute(db);
          inserted += Number(result.numAffectedRows ?? 0);
          continue;
        }
        const values = rows.slice(i, i + INSERT_CHUNK).map((r) => ({
          owner_id: r.ownerId,
          path: r.path,
          name: r.name,
          parent_path: r.parentPath,
          size: r.size,
          content_type: r.contentType,
          is_directory: r.isDirectory ? 1 : 0,
          sha256: null,
          modified_at: r.modifiedAt,
          created_at: nowIso,
          updated_at: nowIso,
        }));
        const result = await db
          .insertInto('stored_files')
          .values(values)
          .onConflict((oc) => oc.columns(['owner_id', 'path']).doNothing())
          .executeTakeFirst();
        inserted += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return inserted;
    });
  }

  /**
   * Applies stale-row updates, skipping rows changed since `unchangedSince` (the files API wrote them
   * during the scan, so our view of the disk may be older than theirs). Returns how many were updated.
   * PostgreSQL: one UPDATE … FROM unnest(…) per chunk; SQLite: one update per row inside the transaction
   * (no network round trip, so that is as fast as a single statement).
   */
  async updateRows(updates: IndexRowUpdate[], unchangedSince: string, nowIso: string): Promise<number> {
    return this.bulkWrite(async (db) => {
      let updated = 0;
      for (let i = 0; i < updates.length; i += INSERT_CHUNK) {
        const chunk = updates.slice(i, i + INSERT_CHUNK);
        if (this.pg) {
          const result = await sql`
            UPDATE stored_files AS f
            SET size = u.size, content_type = u.content_type, is_directory = u.is_directory,
                modified_at = u.modified_at, updated_at = ${nowIso},
                sha256 = CASE WHEN u.clear_sha = 1 THEN NULL ELSE f.sha256 END
            FROM unnest(${chunk.map((u) => u.id)}::bigint[], ${chunk.map((u) => u.size)}::bigint[],
                        ${chunk.map((u) => u.contentType)}::text[], ${chunk.map((u) => (u.isDirectory ? 1 : 0))}::int[],
                        ${chunk.map((u) => u.modifiedAt)}::text[], ${chunk.map((u) => (u.clearSha256 ? 1 : 0))}::int[])
                 AS u(id, size, content_type, is_directory, modified_at, clear_sha)
            WHERE f.id = u.id AND f.updated_at < ${unchangedSince} AND f.pending_path IS NULL`.execute(db);
          updated += Number(result.numAffectedRows ?? 0);
        } else {
          for (const u of chunk) {
            const r = await db
              .updateTable('stored_files')
              .set({
                size: u.size,
                content_type: u.contentType,
                is_directory: u.isDirectory ? 1 : 0,
                modified_at: u.modifiedAt,
                updated_at: nowIso,
                ...(u.clearSha256 ? { sha256: null } : {}),
              })
              .where('id', '=', u.id)
              .where('updated_at', '<', unchangedSince)
              .where('pending_path', 'is', null)
              .executeTakeFirst();
            updated += Number(r.numUpdatedRows);
          }
        }
      }
      return updated;
    });
  }

  /** Of `ids`, those an active share link points to (not revoked, not expired, downloads left). */
  async sharedIds(ids: number[], nowIso: string): Promise<Set<number>> {
    const out = new Set<number>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('share_links')
        .select('file_id')
        .distinct()
        .where((eb) => this.inList(eb, 'file_id', ids.slice(i, i + ID_CHUNK), 'bigint'))
        .where((eb) => activeShare(eb, nowIso))
        .execute();
      for (const r of rows) out.add(Number(r.file_id));
    }
    return out;
  }

  /**
   * Deletes orphaned rows, except those changed since `unchangedSince` and those an active share link
   * points to (re-checked here, inside the statement, so a link created a moment ago still protects).
   * Inactive links of deleted rows go with them (ON DELETE CASCADE). Returns how many were deleted.
   */
  async deleteRows(ids: number[], unchangedSince: string, nowIso: string): Promise<number> {
    return this.bulkWrite(async (db) => {
      let deleted = 0;
      for (let i = 0; i < ids.length; i += ID_CHUNK) {
        const result = await db
          .deleteFrom('stored_files')
          .where((eb) => this.inList(eb, 'stored_files.id', ids.slice(i, i + ID_CHUNK), 'bigint'))
          .where('updated_at', '<', unchangedSince)
          // A move in flight (files API journal) is finished or undone at the next start, never ours to delete.
          .where('pending_path', 'is', null)
          .where((eb) =>
            eb.not(
              eb.exists(
                eb
                  .selectFrom('share_links')
                  .select('share_links.id')
                  .whereRef('share_links.file_id', '=', 'stored_files.id')
                  .where((inner) => activeShare(inner, nowIso)),
              ),
            ),
          )
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    });
  }

  /**
   * Runs a batch of index writes in one transaction. On PostgreSQL without waiting for the WAL flush at
   * commit (synchronous_commit off, for this transaction only): an OS crash can lose the last batches but
   * never corrupts anything, and what is lost is an index this very tool rebuilds. Waiting for an fsync per
   * batch made a first sync of a million files 30× slower than `find` (bench/index-rebuild).
   */
  private bulkWrite<T>(fn: (db: DbOrTx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      if (this.pg) await sql`SET LOCAL synchronous_commit TO OFF`.execute(trx);
      return fn(trx);
    });
  }

  /**
   * `column IN (…)`; on PostgreSQL `column = ANY($1)` with one array parameter, which it parses and plans
   * once instead of a thousand placeholders.
   */
  private inList(eb: ExpressionBuilder<any, any>, column: string, values: Array<string | number>, pgType: 'text' | 'bigint'): Expression<SqlBool> {
    if (values.length === 0) return sql<SqlBool>`1 = 0`;
    if (this.pg) return sql<SqlBool>`${sql.ref(column)} = ANY(${values}::${sql.raw(pgType)}[])`;
    return eb(eb.ref(column), 'in', values);
  }

  /** `column` lies strictly below folder `scope` (prefix match by characters, no LIKE wildcards). */
  private below(eb: ExpressionBuilder<Database, 'stored_files'>, column: 'path' | 'parent_path', scope: string): Expression<SqlBool> {
    const prefix = `${scope}/`;
    return eb(eb.fn('substr', [eb.ref(column), eb.val(1), eb.val(codePoints(prefix))]), '=', prefix);
  }
}

function activeShare(eb: ExpressionBuilder<Database, 'share_links'>, nowIso: string): Expression<SqlBool> {
  return eb.and([
    eb('share_links.revoked_at', 'is', null),
    eb.or([eb('share_links.expires_at', 'is', null), eb('share_links.expires_at', '>', nowIso)]),
    eb.or([eb('share_links.max_downloads', 'is', null), eb('share_links.download_count', '<', eb.ref('share_links.max_downloads'))]),
  ]);
}
