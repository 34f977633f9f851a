import type { DbOrTx, UsersTable } from '../../db/schema.ts';
import type { User } from './users.types.ts';

function toUser(row: UsersTable): User {
  return {
    id: row.id,
    username: row.username,
    isAdmin: row.is_admin === 1,
    quotaBytes: row.quota_bytes,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class UsersRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(user: Omit<User, 'updatedAt'> & { passwordHash: string | null }): Promise<User> {
    const row: UsersTable = {
      id: user.id,
      username: user.username,
      password_hash: user.passwordHash,
      is_admin: user.isAdmin ? 1 : 0,
      quota_bytes: user.quotaBytes,
      created_at: user.createdAt,
      updated_at: user.createdAt,
    };
    await this.db.insertInto('users').values(row).execute();
    return toUser(row);
  }

  async findById(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  /** Usernames are unique regardless of case (migration 0008 indexes lower(username)); so is the lookup. */
  private byUsername(username: string) {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb(eb.fn('lower', ['username']), '=', username.toLowerCase()));
  }

  async findByUsername(username: string): Promise<User | undefined> {
    const row = await this.byUsername(username).executeTakeFirst();
    return row && toUser(row);
  }

  async findCredentials(username: string): Promise<{ user: User; passwordHash: string | null } | undefined> {
    const row = await this.byUsername(username).executeTakeFirst();
    return row && { user: toUser(row), passwordHash: row.password_hash };
  }

  async list(): Promise<User[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('username').execute();
    return rows.map(toUser);
  }

  async count(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async listIds(): Promise<string[]> {
    const rows = await this.db.selectFrom('users').select('id').orderBy('id').execute();
    return rows.map((r) => r.id);
  }
}
