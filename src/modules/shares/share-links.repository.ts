import { sql } from 'kysely';
import type { DbOrTx, ShareLinksTable } from '../../db/schema.ts';
import type { ShareLink } from './share-links.types.ts';

interface JoinedRow {
  id: string;
  owner_id: string;
  file_id: number;
  password_hash: string | null;
  expires_at: string | null;
  max_downloads: number | null;
  download_count: number;
  created_at: string;
  revoked_at: string | null;
  path: string;
  is_directory: number;
}

function toLink(row: JoinedRow): ShareLink {
  return {
    id: row.id,
    ownerId: row.owner_id,
    fileId: Number(row.file_id),
    path: row.path,
    isDirectory: row.is_directory === 1,
    hasPassword: row.password_hash !== null,
    expiresAt: row.expires_at,
    maxDownloads: row.max_downloads === null ? null : Number(row.max_downloads),
    downloadCount: Number(row.download_count),
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/** share_links, always read joined with the index row they point at (for its current path). */
export class ShareLinksRepository {
  constructor(private readonly db: DbOrTx) {}

  private joined() {
    return this.db
      .selectFrom('share_links as s')
      .innerJoin('stored_files as f', 'f.id', 's.file_id')
      .select([
        's.id',
        's.owner_id',
        's.file_id',
        's.password_hash',
        's.expires_at',
        's.max_downloads',
        's.download_count',
        's.created_at',
        's.revoked_at',
        'f.path',
        'f.is_directory',
      ]);
  }

  async insert(link: Pick<ShareLink, 'id' | 'ownerId' | 'fileId' | 'expiresAt' | 'maxDownloads' | 'createdAt'> & { tokenHash: string; passwordHash: string | null }): Promise<ShareLink> {
    const row: ShareLinksTable = {
      id: link.id,
      owner_id: link.ownerId,
      file_id: link.fileId,
      token_hash: link.tokenHash,
      password_hash: link.passwordHash,
      expires_at: link.expiresAt,
      max_downloads: link.maxDownloads,
      download_count: 0,
      created_at: link.createdAt,
      revoked_at: null,
    };
    await this.db.insertInto('share_links').values(row).execute();
    return toLink((await this.joined().where('s.id', '=', link.id).executeTakeFirstOrThrow()) as JoinedRow);
  }

  /** The link with this token hash, with its password hash for verification. */
  async findByTokenHash(tokenHash: string): Promise<{ link: ShareLink; passwordHash: string | null } | undefined> {
    const row = (await this.joined().where('s.token_hash', '=', tokenHash).executeTakeFirst()) as JoinedRow | undefined;
    return row && { link: toLink(row), passwordHash: row.password_hash };
  }

  async listByOwner(ownerId: string): Promise<ShareLink[]> {
    const rows = (await this.joined().where('s.owner_id', '=', ownerId).orderBy('s.created_at', 'desc').orderBy('s.id').execute()) as JoinedRow[];
    return rows.map(toLink);
  }

  /** Marks the owner's link revoked; false when there is no such (unrevoked) link of theirs. */
  async revoke(ownerId: string, id: string, now: string): Promise<boolean> {
    const res = await this.db
      .updateTable('share_links')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * Counts one download if the link still allows one, in a single conditional UPDATE so concurrent
   * downloads cannot overrun max_downloads. False when the link is exhausted, expired, revoked or not
   * the owner's (every query is scoped to its user, issue 12).
   */
  async consumeDownload(ownerId: string, id: string, now: string): Promise<boolean> {
    const res = await this.db
      .updateTable('share_links')
      .set({ download_count: sql<number>`download_count + 1` })
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .where((eb) => eb.or([eb('max_downloads', 'is', null), eb('download_count', '<', eb.ref('max_downloads'))]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}
