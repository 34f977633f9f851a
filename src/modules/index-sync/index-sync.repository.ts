import type SqliteDatabase from 'better-sqlite3';
import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import { isPostgres } from '../../db/database.ts';
import type { Database, Db, DbOrTx } from '../../db/schema.ts';
import type { FileRecord } from '../files/files.types.ts';
import { compareCodePoints } from '../../storage/reconcile/key-order.ts';
import type { FileIndexRow } from './index-diff.ts';

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

/** Number of characters (code points), which is what substr() counts on both SQLite and PostgreSQL. */
const codePoints = (s: string) => [...s].length;

// Batches stay well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
const INSERT_CHUNK = 1000;
/** Rows per statement on PostgreSQL, where values travel as one array per column (no parameter limit). */
const PG_ARRAY_CHUNK = 10_000;
/** Rows per multi-row INSERT on SQLite (10 parameters each); 100 measured as well as 250 or 500. */
const INSERT_BLOCK = 100;
const ID_CHUNK = 1000;

/** Index reads and writes of reconciliation; the only SQL of the index-sync module. */
export class IndexSyncRepository {
  private readonly pg: boolean;
  private readonly sqlite: SqliteDatabase.Database | undefined;
  private prepared: SqliteFastPath | undefined;

  /**
   * `sqlite`: the better-sqlite3 connection behind `db` (SQLite only). With it, the two loops that touch
   * every row — the sorted scan and the inserts of a first sync — run as prepared statements on it
   * instead of through the query builder: a million rows through Kysely cost more than the walk itself.
   */
  constructor(
    private readonly db: Db,
    sqlite?: SqliteDatabase.Database,
  ) {
    this.pg = isPostgres(db as never);
    this.sqlite = this.pg ? undefined : sqlite;
  }

  /** Prepared on first use: the app builds repositories before a `migrate: false` caller has tables. */
  private get fast(): SqliteFastPath | undefined {
    if (!this.sqlite) return undefined;
    return (this.prepared ??= new SqliteFastPath(this.sqlite));
  }

  async userExists(id: string): Promise<boolean> {
    return (await this.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  async listUserIds(): Promise<string[]> {
    const rows = await this.db.selectFrom('users').select('id').orderBy('id').execute();
    return rows.map((r) => r.id);
  }

  /**
   * PostgreSQL: refreshes the planner's statistics of stored_files when many rows changed since they were
   * last gathered (a first sync of a million files, say, before autovacuum got to it). With statistics
   * from an almost empty table the planner estimated a thousand rows for a user holding a million, and
   * answered each page of the sorted scan with a bitmap scan of the user's remaining rows and a sort
   * instead of walking the (owner_id, path COLLATE "C") index: every page read the rest of the user's
   * rows, a re-audit of one big user was quadratic (bench/index-rebuild, issue 8: 27× find). ANALYZE reads
   * a sample (30,000 rows by default), not the table. SQLite plans the index walk without statistics.
   */
  async refreshStatsIfStale(): Promise<boolean> {
    if (!this.pg) return false;
    const r = await sql<{ changed: string | number; tuples: string | number }>`
      SELECT s.n_mod_since_analyze AS changed, c.reltuples AS tuples
      FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.relid = 'stored_files'::regclass`.execute(this.db);
    const row = r.rows[0];
    if (!row) return false;
    const changed = Number(row.changed);
    // reltuples is -1 for a table never analysed.
    const tuples = Math.max(0, Number(row.tuples));
    if (changed < 10_000 || changed < 0.1 * tuples) return false;
    await sql`ANALYZE stored_files`.execute(this.db);
    return true;
  }

  /** Whether the user has any index row at or below `scope` ('' = anywhere). */
  async hasRows(ownerId: string, scope: string): Promise<boolean> {
    let q = this.db.selectFrom('stored_files').select('id').where('owner_id', '=', ownerId);
    if (scope !== '') q = q.where((eb) => eb.or([eb('path', '=', scope), this.below(eb, 'path', scope)]));
    return (await q.limit(1).executeTakeFirst()) !== undefined;
  }

  /**
   * One page of the user's rows at or below `scope` ('' = all), ordered by path in byte (code point)
   * order — the order of the storage scan — after `after`. A key range on the (owner_id, path) index
   * (SQLite BINARY; PostgreSQL COLLATE "C", migration 0006), so a page costs the same wherever it starts.
   */
  async rowsByKey(ownerId: string, scope: string, after: string | null, limit: number): Promise<FileIndexRow[]> {
    const fast = this.fast?.rowsByKey(ownerId, scope, after, limit);
    if (fast) return fast;
    const c = this.pg ? sql`COLLATE "C"` : sql``;
    let q = this.db
      .selectFrom('stored_files')
      // name, parent_path and updated_at are not fetched: three strings less per row on a million rows
      // (updated_at is re-read for the few rows that differ from the disk).
      .select(['id', 'path', 'size', 'content_type', 'is_directory', 'modified_at'])
      .where('owner_id', '=', ownerId);
    if (after !== null) q = q.where(sql<SqlBool>`path ${c} > ${after}`);
    if (scope !== '') {
      // [scope, scope + "0") holds the scope and everything below it ("0" follows "/"), and siblings such
      // as "scope-x" that the second condition drops.
      q = q.where(sql<SqlBool>`path ${c} >= ${scope}`).where(sql<SqlBool>`path ${c} < ${`${scope}0`}`);
      q = q.where((eb) => eb.or([eb('path', '=', scope), this.below(eb, 'path', scope)]));
    }
    const rows = await q.orderBy(sql`path ${c}`).limit(limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      key: r.path,
      kind: Number(r.is_directory) === 1 ? 'dir' : 'file',
      size: Number(r.size),
      contentType: r.content_type,
      modifiedAt: r.modified_at,
    }));
  }

  /**
   * Of `paths` (one owner), those that have a row now, or that a row is being moved to (the files API's
   * move journal, `pending_path`: the rename on disk is done or about to be, the row update follows).
   */
  async existingPaths(ownerId: string, paths: string[]): Promise<Set<string>> {
    // Moves in flight are few (the journal is cleared with the row update), and the partial index of
    // migration 0006 holds only them: read them all rather than matching a thousand-value list. (This used
    // to be `path IN … OR pending_path IN …`; with no index on pending_path SQLite read every row of the
    // owner for each batch, which made the first sync of one user with a million files quadratic: issue 8,
    // 271.7 s = 107.5× find.)
    const moving = this.fast?.movingPaths(ownerId) ?? (await this.db.selectFrom('stored_files').select('pending_path').where('owner_id', '=', ownerId).where('pending_path', 'is not', null).execute());
    const wanted = moving.length > 0 ? new Set(paths) : undefined;
    const found = this.fast?.existingPaths(ownerId, paths) ?? (await this.pathsWithRows(ownerId, paths));
    for (const r of moving) if (r.pending_path !== null && wanted!.has(r.pending_path)) found.add(r.pending_path);
    return found;
  }

  private async pathsWithRows(ownerId: string, paths: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    if (this.pg) return this.pgPathsWithRows(ownerId, paths, found);
    for (let i = 0; i < paths.length; i += ID_CHUNK) {
      const chunk = paths.slice(i, i + ID_CHUNK);
      const rows = await this.db.selectFrom('stored_files').select('path').where('owner_id', '=', ownerId).where((eb) => this.inList(eb, 'path', chunk, 'text')).execute();
      for (const r of rows) found.add(r.path);
    }
    return found;
  }

  /**
   * PostgreSQL: `path = ANY($paths)` let the planner, holding the statistics of the table as it was before
   * a first sync (a few thousand rows per owner at most), read every row of the owner and filter them
   * against the array: each re-check of a batch read the whole user, and the first sync of one user with
   * a million files spent most of its 600 s there (issue 8, bench/index-rebuild: 16.5× find). The batch
   * spans one key range (the engine asks in key order), so one range read of the (owner_id, path
   * COLLATE "C") index answers it when the index holds few rows there (a first sync: none), and point
   * lookups through a LATERAL … LIMIT 1 (one index probe each, whatever the statistics) when it holds many.
   */
  private async pgPathsWithRows(ownerId: string, paths: string[], found: Set<string>): Promise<Set<string>> {
    if (paths.length === 0) return found;
    const [lo, hi] = keyRange(paths);
    const limit = paths.length * 2;
    const inRange = await sql<{ path: string }>`
      SELECT path FROM stored_files WHERE owner_id = ${ownerId} AND path COLLATE "C" >= ${lo} AND path COLLATE "C" <= ${hi}
      ORDER BY path COLLATE "C" LIMIT ${limit + 1}`.execute(this.db);
    if (inRange.rows.length <= limit) {
      const wanted = new Set(paths);
      for (const r of inRange.rows) if (wanted.has(r.path)) found.add(r.path);
      return found;
    }
    for (let i = 0; i < paths.length; i += PG_ARRAY_CHUNK) {
      const chunk = paths.slice(i, i + PG_ARRAY_CHUNK);
      const rows = await sql<{ path: string }>`
        SELECT f.path FROM unnest(${chunk}::text[]) AS u(p)
        JOIN LATERAL (SELECT path FROM stored_files WHERE owner_id = ${ownerId} AND path = u.p LIMIT 1) f ON true`.execute(this.db);
      for (const r of rows.rows) found.add(r.path);
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
    const fast = this.fast?.insertRows(rows, nowIso);
    if (fast !== undefined) return fast;
    return this.bulkWrite(async (db) => {
      let inserted = 0;
      for (let i = 0; i < rows.length; i += this.pg ? PG_ARRAY_CHUNK : INSERT_CHUNK) {
        if (this.pg) {
          // One parameter per column (arrays) instead of one per value: PostgreSQL parses and plans a
          // 1,000-row VALUES list with 11,000 parameters several times slower (DESIGN.md: unnest on PostgreSQL).
          // Arrays have no parameter limit: a whole batch of the engine goes in one statement.
          const chunk = rows.slice(i, i + PG_ARRAY_CHUNK);
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

const SCAN_COLUMNS = 'id, path, size, content_type, is_directory, modified_at';

/**
 * Prepared statements on the SQLite connection for the per-row loops (see the constructor). They run
 * synchronously, so they never interleave with a Kysely query; but the connection is shared, and when a
 * Kysely transaction is open on it (an upload between BEGIN and COMMIT) a statement here would read its
 * uncommitted rows or write inside it: then each method returns undefined and the caller takes the
 * Kysely path, which waits for that transaction.
 */
class SqliteFastPath {
  private readonly scanAll: SqliteDatabase.Statement;
  private readonly scanFrom: SqliteDatabase.Statement;
  private readonly scanScope: SqliteDatabase.Statement;
  private readonly scanScopeFrom: SqliteDatabase.Statement;
  private readonly insert: SqliteDatabase.Statement;
  private readonly insertBlock: SqliteDatabase.Statement;
  private readonly moving: SqliteDatabase.Statement;
  private readonly hasPath: SqliteDatabase.Statement;
  private readonly pathsBetween: SqliteDatabase.Statement;
  private readonly insertMany: (rows: NewIndexRow[], nowIso: string) => number;

  constructor(private readonly sqlite: SqliteDatabase.Database) {
    // raw(): arrays instead of one object per row from the driver (the engine builds its own).
    this.scanAll = sqlite.prepare(`SELECT ${SCAN_COLUMNS} FROM stored_files WHERE owner_id = ? ORDER BY path LIMIT ?`).raw(true);
    this.scanFrom = sqlite.prepare(`SELECT ${SCAN_COLUMNS} FROM stored_files WHERE owner_id = ? AND path > ? ORDER BY path LIMIT ?`).raw(true);
    // [scope, scope + "0") holds the scope and everything below it ("0" follows "/"), and siblings such as
    // "scope-x" that the last condition drops.
    const inScope = 'path < ? AND (path = ? OR substr(path, 1, ?) = ?)';
    this.scanScope = sqlite.prepare(`SELECT ${SCAN_COLUMNS} FROM stored_files WHERE owner_id = ? AND path >= ? AND ${inScope} ORDER BY path LIMIT ?`).raw(true);
    this.scanScopeFrom = sqlite.prepare(`SELECT ${SCAN_COLUMNS} FROM stored_files WHERE owner_id = ? AND path > ? AND ${inScope} ORDER BY path LIMIT ?`).raw(true);
    this.hasPath = sqlite.prepare('SELECT 1 FROM stored_files WHERE owner_id = ? AND path = ?').pluck(true);
    this.pathsBetween = sqlite.prepare('SELECT path FROM stored_files WHERE owner_id = ? AND path >= ? AND path <= ? ORDER BY path LIMIT ?').pluck(true);
    this.moving = sqlite.prepare('SELECT pending_path FROM stored_files WHERE owner_id = ? AND pending_path IS NOT NULL');
    const columns = '(owner_id, path, name, parent_path, size, content_type, is_directory, sha256, modified_at, created_at, updated_at)';
    const tuple = '(?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)';
    this.insert = sqlite.prepare(`INSERT INTO stored_files ${columns} VALUES ${tuple} ON CONFLICT (owner_id, path) DO NOTHING`);
    // Multi-row statements, prepared once: a statement per row cost ~20% more CPU in a first sync (one
    // VM step loop, one sqlite_sequence update and one changes() per row instead of per block).
    this.insertBlock = sqlite.prepare(`INSERT INTO stored_files ${columns} VALUES ${new Array(INSERT_BLOCK).fill(tuple).join(', ')} ON CONFLICT (owner_id, path) DO NOTHING`);
    const args: unknown[] = new Array(INSERT_BLOCK * 10);
    this.insertMany = sqlite.transaction((rows: NewIndexRow[], nowIso: string) => {
      let inserted = 0;
      let i = 0;
      for (; i + INSERT_BLOCK <= rows.length; i += INSERT_BLOCK) {
        let a = 0;
        for (let j = i; j < i + INSERT_BLOCK; j++) {
          const r = rows[j]!;
          args[a++] = r.ownerId;
          args[a++] = r.path;
          args[a++] = r.name;
          args[a++] = r.parentPath;
          args[a++] = r.size;
          args[a++] = r.contentType;
          args[a++] = r.isDirectory ? 1 : 0;
          args[a++] = r.modifiedAt;
          args[a++] = nowIso;
          args[a++] = nowIso;
        }
        inserted += this.insertBlock.run(args).changes;
      }
      for (; i < rows.length; i++) {
        const r = rows[i]!;
        inserted += this.insert.run(r.ownerId, r.path, r.name, r.parentPath, r.size, r.contentType, r.isDirectory ? 1 : 0, r.modifiedAt, nowIso, nowIso).changes;
      }
      return inserted;
    });
  }

  rowsByKey(ownerId: string, scope: string, after: string | null, limit: number): FileIndexRow[] | undefined {
    if (this.sqlite.inTransaction) return undefined;
    let raw: unknown[][];
    if (scope !== '') {
      const prefix = `${scope}/`;
      const statement = after === null ? this.scanScope : this.scanScopeFrom;
      raw = statement.all(ownerId, after ?? scope, `${scope}0`, scope, codePoints(prefix), prefix, limit) as unknown[][];
    } else if (after === null) raw = this.scanAll.all(ownerId, limit) as unknown[][];
    else raw = this.scanFrom.all(ownerId, after, limit) as unknown[][];
    const out: FileIndexRow[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]!;
      out[i] = { id: Number(r[0]), key: r[1] as string, kind: r[4] === 1 ? 'dir' : 'file', size: Number(r[2]), contentType: r[3] as string, modifiedAt: r[5] as string };
    }
    return out;
  }

  /**
   * The engine asks in key order, so the batch spans one key range: one range read answers it when the
   * index holds few rows there (a first sync: none), point lookups when it holds many (a re-audit that
   * found a few new files scattered over a big tree). Either beats preparing a thousand-value IN list.
   */
  existingPaths(ownerId: string, paths: string[]): Set<string> | undefined {
    if (this.sqlite.inTransaction) return undefined;
    const found = new Set<string>();
    if (paths.length === 0) return found;
    const [lo, hi] = keyRange(paths);
    const limit = paths.length * 2;
    const inRange = this.pathsBetween.all(ownerId, lo, hi, limit + 1) as string[];
    if (inRange.length <= limit) {
      const wanted = new Set(paths);
      for (const p of inRange) if (wanted.has(p)) found.add(p);
      return found;
    }
    for (const p of paths) if (this.hasPath.get(ownerId, p) !== undefined) found.add(p);
    return found;
  }

  /** The user's moves in flight (the partial index of migration 0006 holds only them). */
  movingPaths(ownerId: string): Array<{ pending_path: string | null }> | undefined {
    if (this.sqlite.inTransaction) return undefined;
    return this.moving.all(ownerId) as Array<{ pending_path: string | null }>;
  }

  insertRows(rows: NewIndexRow[], nowIso: string): number | undefined {
    if (this.sqlite.inTransaction) return undefined;
    return this.insertMany(rows, nowIso);
  }
}

/**
 * The lowest and highest of a non-empty batch of paths in code-point order, which is SQLite's BINARY
 * order and PostgreSQL's COLLATE "C" (`<` on UTF-16 strings differs around surrogates).
 */
function keyRange(paths: readonly string[]): [string, string] {
  let lo = paths[0]!;
  let hi = paths[0]!;
  for (const p of paths) {
    if (compareCodePoints(p, lo) < 0) lo = p;
    if (compareCodePoints(p, hi) > 0) hi = p;
  }
  return [lo, hi];
}
