import { sql, type Insertable, type Selectable } from 'kysely';
import type { DialectName } from '../../db/database.ts';
import type { DbOrTx, StoredFilesTable } from '../../db/schema.ts';
import type { FileMeta, FileRecord } from './files.types.ts';

type FileRow = Selectable<StoredFilesTable>;
type NewFileRow = Insertable<StoredFilesTable>;
/** A row to write, as services describe it (rows stay in repositories). */
export type NewFile = Omit<FileRecord, 'id'>;

function toRow(f: NewFile): NewFileRow {
  return {
    owner_id: f.ownerId,
    path: f.path,
    name: f.name,
    parent_path: f.parentPath,
    size: f.size,
    content_type: f.contentType,
    is_directory: f.isDirectory ? 1 : 0,
    sha256: f.sha256,
    modified_at: f.modifiedAt,
    created_at: f.createdAt,
    updated_at: f.updatedAt,
  };
}

function toRecord(row: FileRow): FileRecord {
  return {
    id: Number(row.id),
    ownerId: row.owner_id,
    path: row.path,
    name: row.name,
    parentPath: row.parent_path,
    size: Number(row.size),
    contentType: row.content_type,
    isDirectory: row.is_directory === 1,
    sha256: row.sha256,
    modifiedAt: row.modified_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Number of characters (code points), as substr() counts them. */
const codePoints = (s: string) => [...s].length;

// Multi-row inserts, chunked below both engines' bind-parameter limits (12 columns × 400 rows).
const INSERT_CHUNK = 400;

/** The file index (stored_files). Every query is scoped to one owner. */
export class FilesRepository {
  constructor(
    private readonly db: DbOrTx,
    private readonly dialect: DialectName,
  ) {}

  /** The same repository on another handle, e.g. a transaction the service opened (db/transaction.ts). */
  on(db: DbOrTx): FilesRepository {
    return new FilesRepository(db, this.dialect);
  }

  // Byte order on both engines, so listings and cursors agree whatever the PostgreSQL locale.
  private nameCollated() {
    return this.dialect === 'postgres' ? sql<string>`name collate "C"` : sql<string>`name`;
  }

  async findByPath(ownerId: string, path: string): Promise<FileRecord | undefined> {
    const row = await this.db.selectFrom('stored_files').selectAll().where('owner_id', '=', ownerId).where('path', '=', path).executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * Sum of the owner's file sizes: what counts against the quota. `exceptPath` leaves out the file an
   * upload would replace, in the same query (its bytes are freed by the replace).
   */
  async usage(ownerId: string, exceptPath?: string): Promise<number> {
    let q = this.db
      .selectFrom('stored_files')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('total'))
      .where('owner_id', '=', ownerId)
      .where('is_directory', '=', 0);
    if (exceptPath !== undefined) q = q.where('path', '!=', exceptPath);
    const row = await q.executeTakeFirstOrThrow();
    return Number(row.total);
  }

  /** Sum of file sizes at or below `path`. */
  async subtreeSize(ownerId: string, path: string): Promise<number> {
    const row = await this.db
      .selectFrom('stored_files')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('total'))
      .where('owner_id', '=', ownerId)
      .where('is_directory', '=', 0)
      .where((eb) => eb.or([eb('path', '=', path), this.below(path)]))
      .executeTakeFirstOrThrow();
    return Number(row.total);
  }

  /** Rows at or below `path`, for copying sha256 along. */
  async subtree(ownerId: string, path: string): Promise<FileRecord[]> {
    const rows = await this.db
      .selectFrom('stored_files')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where((eb) => eb.or([eb('path', '=', path), this.below(path)]))
      .execute();
    return rows.map(toRecord);
  }

  // `path` starts with `<prefix>/`. substr instead of LIKE: user paths may contain % and _.
  // Lengths are in code points, which is what substr() counts on SQLite and PostgreSQL alike; JS .length
  // counts UTF-16 units and would cut a name holding an emoji (or any character above U+FFFF) short.
  private below(prefix: string, column: 'path' | 'parent_path' = 'path') {
    const start = `${prefix}/`;
    return sql<boolean>`substr(${sql.ref(column)}, 1, ${codePoints(start)}) = ${start}`;
  }

  /** Inserts rows; rows whose (owner, path) already exists are left as they are. */
  async insertIgnoringExisting(files: NewFile[]): Promise<void> {
    const rows = files.map(toRow);
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await this.db
        .insertInto('stored_files')
        .values(rows.slice(i, i + INSERT_CHUNK))
        .onConflict((oc) => oc.columns(['owner_id', 'path']).doNothing())
        .execute();
    }
  }

  /** Inserts the row or updates the existing one in place (keeping its id, and so its share links). */
  async upsert(file: NewFile): Promise<FileRecord> {
    const row = toRow(file);
    await this.db
      .insertInto('stored_files')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['owner_id', 'path']).doUpdateSet({
          size: row.size,
          content_type: row.content_type,
          is_directory: row.is_directory,
          sha256: row.sha256,
          modified_at: row.modified_at,
          updated_at: row.updated_at,
        }),
      )
      .execute();
    return (await this.findByPath(row.owner_id, row.path))!;
  }

  async setSha256(ownerId: string, id: number, sha256: string, modifiedAt: string, size: number): Promise<void> {
    await this.db.updateTable('stored_files').set({ sha256, modified_at: modifiedAt, size }).where('owner_id', '=', ownerId).where('id', '=', id).execute();
  }

  /** Deletes the row at `path` and every row below it (share links go with them: ON DELETE CASCADE). */
  async deleteSubtree(ownerId: string, path: string): Promise<number> {
    const res = await this.db
      .deleteFrom('stored_files')
      .where('owner_id', '=', ownerId)
      .where((eb) => eb.or([eb('path', '=', path), this.below(path)]))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /**
   * Re-points the row at `from` and every row below it to `to`, keeping ids (share links follow).
   * The caller guarantees nothing is indexed at or below `to`.
   */
  async moveSubtree(ownerId: string, from: string, to: string, toName: string, toParent: string, now: string): Promise<void> {
    const cut = codePoints(from) + 1; // 1-based position of the first character after `from`
    await this.db
      .updateTable('stored_files')
      .set({
        path: sql<string>`${to} || substr(path, ${cut})`,
        parent_path: sql<string>`${to} || substr(parent_path, ${cut})`,
      })
      .where('owner_id', '=', ownerId)
      .where(this.below(from))
      .execute();
    await this.db
      .updateTable('stored_files')
      .set({ path: to, name: toName, parent_path: toParent, updated_at: now, pending_path: null })
      .where('owner_id', '=', ownerId)
      .where('path', '=', from)
      .execute();
  }

  /** Move journal: records where the row at `from` is about to move (committed before the rename). */
  async markPendingMove(ownerId: string, from: string, to: string): Promise<void> {
    await this.db.updateTable('stored_files').set({ pending_path: to }).where('owner_id', '=', ownerId).where('path', '=', from).execute();
  }

  async clearPendingMove(ownerId: string, path: string): Promise<void> {
    await this.db.updateTable('stored_files').set({ pending_path: null }).where('owner_id', '=', ownerId).where('path', '=', path).execute();
  }

  /** Every row whose move was interrupted (any owner): start-up recovery resolves them against the disk. */
  async pendingMoves(): Promise<Array<{ ownerId: string; from: string; to: string }>> {
    const rows = await this.db
      .selectFrom('stored_files')
      .select(['owner_id', 'path', 'pending_path'])
      .where('pending_path', 'is not', null)
      .execute();
    return rows.map((r) => ({ ownerId: r.owner_id, from: r.path, to: r.pending_path! }));
  }

  /** Children of folder `parent` ordered by name (byte order), after `afterName` when given. */
  /**
   * Every child of `parent` as metadata (etag null: the disk knows it), in name order. Only the columns
   * metadata needs: WebDAV PROPFIND Depth 1 reads a whole folder at once (10,000 rows and more).
   */
  async childMetas(ownerId: string, parent: string): Promise<FileMeta[]> {
    const rows = await this.db
      .selectFrom('stored_files')
      .select(['name', 'size', 'content_type', 'is_directory', 'sha256', 'modified_at', 'created_at'])
      .where('owner_id', '=', ownerId)
      .where('parent_path', '=', parent)
      .orderBy(this.nameCollated())
      .execute();
    const prefix = parent === '' ? '' : `${parent}/`;
    return rows.map((r) => {
      const dir = r.is_directory === 1;
      return {
        path: prefix + r.name,
        name: r.name,
        size: Number(r.size),
        content_type: r.content_type,
        is_directory: dir,
        sha256: dir ? null : r.sha256,
        modified_at: r.modified_at,
        created_at: r.created_at,
        etag: null,
      };
    });
  }

  async listChildren(ownerId: string, parent: string, limit: number, afterName?: string): Promise<FileRecord[]> {
    const name = this.nameCollated();
    let q = this.db.selectFrom('stored_files').selectAll().where('owner_id', '=', ownerId).where('parent_path', '=', parent);
    if (afterName !== undefined) q = q.where(sql<boolean>`${name} > ${afterName}`);
    const rows = await q.orderBy(name).limit(limit).execute();
    return rows.map(toRecord);
  }
}
