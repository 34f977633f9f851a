import { sql, type Kysely } from 'kysely';

/**
 * Issue 12.
 * - Usernames become unique regardless of case (the login throttle already keyed them lower-cased, so
 *   "Alice" and "alice" were two accounts sharing one throttle). Refuses to run while real duplicates
 *   exist, naming them, rather than pick a winner: an administrator renames or removes one of each group.
 * - `rate_limits`: the counters of the database throttle store (src/throttle), shared by every process.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const rows = await db.selectFrom('users').select(['username']).execute();
  const byFolded = new Map<string, string[]>();
  for (const { username } of rows as Array<{ username: string }>) {
    const folded = username.toLowerCase();
    byFolded.set(folded, [...(byFolded.get(folded) ?? []), username]);
  }
  const clashes = [...byFolded.values()].filter((names) => names.length > 1);
  if (clashes.length > 0) {
    throw new Error(
      `migration 0008: usernames must be unique regardless of case, but these differ only in case: ${clashes
        .map((names) => names.sort().join(' / '))
        .join('; ')}. Rename or remove one account of each group, then run the migration again.`,
    );
  }
  await db.schema.createIndex('users_username_folded_idx').on('users').unique().expression(sql`lower(username)`).execute();

  await db.schema
    .createTable('rate_limits')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expire', 'bigint')
    .execute();
  await db.schema.createIndex('rate_limits_expire_idx').on('rate_limits').column('expire').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only');
}
