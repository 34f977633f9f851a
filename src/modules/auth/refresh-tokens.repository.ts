import type { DbOrTx, RefreshTokensTable } from '../../db/schema.ts';

export class RefreshTokensRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(row: RefreshTokensTable): Promise<void> {
    await this.db.insertInto('refresh_tokens').values(row).execute();
  }

  async findByHash(tokenHash: string): Promise<RefreshTokensTable | undefined> {
    return this.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
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
