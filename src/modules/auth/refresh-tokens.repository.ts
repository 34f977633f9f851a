import type { DbOrTx, RefreshTokensTable } from '../../db/schema.ts';

/** One refresh token as the auth service sees it (the secret itself is never stored, only its hash). */
export interface RefreshTokenRecord {
  id: string;
  userId: string;
  familyId: string;
  deviceId: string | null;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  revokedAt: string | null;
}

export class RefreshTokensRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(token: Omit<RefreshTokenRecord, 'usedAt' | 'revokedAt'> & { tokenHash: string }): Promise<void> {
    const row: RefreshTokensTable = {
      id: token.id,
      user_id: token.userId,
      family_id: token.familyId,
      token_hash: token.tokenHash,
      device_id: token.deviceId,
      created_at: token.createdAt,
      expires_at: token.expiresAt,
      used_at: null,
      revoked_at: null,
    };
    await this.db.insertInto('refresh_tokens').values(row).execute();
  }

  async findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined> {
    const row = await this.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return (
      row && {
        id: row.id,
        userId: row.user_id,
        familyId: row.family_id,
        deviceId: row.device_id,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        usedAt: row.used_at,
        revokedAt: row.revoked_at,
      }
    );
  }

  /**
   * Marks a token used, only if it is still unused and unrevoked; returns false when another request
   * rotated it first (so two concurrent refreshes with one token cannot both succeed).
   */
  async markUsed(id: string, at: string): Promise<boolean> {
    const result = await this.db
      .updateTable('refresh_tokens')
      .set({ used_at: at })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async revokeFamily(familyId: string, at: string): Promise<void> {
    await this.db
      .updateTable('refresh_tokens')
      .set({ revoked_at: at })
      .where('family_id', '=', familyId)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async deleteExpired(before: string): Promise<number> {
    const result = await this.db.deleteFrom('refresh_tokens').where('expires_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
