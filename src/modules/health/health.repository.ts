import { sql } from 'kysely';
import type { Db } from '../../db/schema.ts';

export class HealthRepository {
  constructor(private readonly db: Db) {}

  /** Resolves when the database answers a trivial query. */
  async ping(): Promise<void> {
    await sql`select 1 as ok`.execute(this.db);
  }
}
