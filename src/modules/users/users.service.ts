import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import { hashPassword } from '../../lib/crypto.ts';
import { UsersRepository } from './users.repository.ts';
import { USERNAME_PATTERN, USERNAME_RULE, type User } from './users.types.ts';

export interface CreateUserInput {
  username: string;
  password?: string;
  isAdmin?: boolean;
  quotaBytes?: number | null;
}

export const MIN_PASSWORD_LENGTH = 8;

export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly clock: Clock,
    private readonly defaultQuotaBytes: number | null,
  ) {}

  async create(input: CreateUserInput): Promise<User> {
    if (!USERNAME_PATTERN.test(input.username)) {
      throw new AppError('invalid_request', `invalid username: ${USERNAME_RULE}`);
    }
    if (input.password !== undefined && input.password.length < MIN_PASSWORD_LENGTH) {
      throw new AppError('invalid_request', `password must be at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    if (input.quotaBytes !== undefined && input.quotaBytes !== null && (!Number.isSafeInteger(input.quotaBytes) || input.quotaBytes < 0)) {
      throw new AppError('invalid_request', 'quota must be a whole number of bytes >= 0');
    }
    if (await this.users.findByUsername(input.username)) {
      throw new AppError('already_exists', `user "${input.username}" already exists`);
    }
    const now = this.clock.now().toISOString();
    try {
      return await this.users.insert({
        id: randomUUID(),
        username: input.username,
        passwordHash: input.password === undefined ? null : await hashPassword(input.password),
        isAdmin: input.isAdmin === true,
        quotaBytes: input.quotaBytes === undefined ? this.defaultQuotaBytes : input.quotaBytes,
        createdAt: now,
      });
    } catch (err) {
      // Lost a race with a concurrent create of the same username: the unique index said no.
      if (await this.users.findByUsername(input.username)) {
        throw new AppError('already_exists', `user "${input.username}" already exists`);
      }
      throw err;
    }
  }

  async get(id: string): Promise<User> {
    const user = await this.users.findById(id);
    if (!user) throw new AppError('not_found', 'user not found');
    return user;
  }

  async getByUsername(username: string): Promise<User> {
    const user = await this.users.findByUsername(username);
    if (!user) throw new AppError('not_found', `user "${username}" not found`);
    return user;
  }

  list(): Promise<User[]> {
    return this.users.list();
  }

  count(): Promise<number> {
    return this.users.count();
  }

  /** The user, or undefined (for other modules, which must not read the users repository). */
  findById(id: string): Promise<User | undefined> {
    return this.users.findById(id);
  }

  findByUsername(username: string): Promise<User | undefined> {
    return this.users.findByUsername(username);
  }

  /** The user and their password hash, for the auth module's login only. */
  findCredentials(username: string): Promise<{ user: User; passwordHash: string | null } | undefined> {
    return this.users.findCredentials(username);
  }
}
