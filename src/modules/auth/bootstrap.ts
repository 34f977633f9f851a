import type { ApiKeysService } from './api-keys.service.ts';
import { randomToken } from '../../lib/crypto.ts';
import type { UsersService } from '../users/users.service.ts';

export interface FirstAdmin {
  username: string;
  password: string;
  apiKey: string;
}

/**
 * On a server with no users at all, creates `admin` with a random password and an API key, so a new
 * install can make its first request within a minute. Returns null when any user exists (it never runs
 * twice). Two processes racing here: the loser sees already_exists and returns null.
 */
export async function bootstrapFirstAdmin(users: UsersService, apiKeys: ApiKeysService): Promise<FirstAdmin | null> {
  if ((await users.count()) > 0) return null;
  const password = randomToken(18);
  let admin;
  try {
    admin = await users.create({ username: 'admin', password, isAdmin: true, quotaBytes: null });
  } catch {
    return null;
  }
  const { key } = await apiKeys.create(admin.id, 'first-start');
  return { username: admin.username, password, apiKey: key };
}
