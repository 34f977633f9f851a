import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { Principal } from '../../lib/principal.ts';
import { ApiKeysRepository, type ApiKeyRecord } from './api-keys.repository.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';

export const API_KEY_PREFIX = 'sv_';
/** last_used_at is written at most this often per key, so authentication is not a write per request. */
const TOUCH_INTERVAL_MS = 60_000;

export class ApiKeysService {
  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly clock: Clock,
  ) {}

  /** Creates a key; the plain key is in the answer and nowhere else (only its hash is stored). */
  async create(userId: string, name = 'default'): Promise<{ key: string; record: ApiKeyRecord }> {
    const label = name.trim();
    if (label.length === 0 || label.length > 100) throw new AppError('invalid_request', 'key name must be 1-100 characters');
    const key = randomToken(32, API_KEY_PREFIX);
    const record = await this.keys.insert({
      id: randomUUID(),
      userId,
      name: label,
      keyPrefix: key.slice(0, API_KEY_PREFIX.length + 6),
      keyHash: sha256Hex(key),
      createdAt: this.clock.now().toISOString(),
    });
    return { key, record };
  }

  /** The principal an API key stands for, or null when it is unknown or revoked. */
  async authenticate(key: string): Promise<Principal | null> {
    if (!key.startsWith(API_KEY_PREFIX) || key.length > 200) return null;
    const found = await this.keys.findActiveByHash(sha256Hex(key));
    if (!found) return null;
    const now = this.clock.now();
    if (!found.lastUsedAt || now.getTime() - Date.parse(found.lastUsedAt) > TOUCH_INTERVAL_MS) {
      await this.keys.touch(found.keyId, now.toISOString());
    }
    return { userId: found.userId, username: found.username, isAdmin: found.isAdmin === 1, via: 'api_key' };
  }

  list(userId: string): Promise<ApiKeyRecord[]> {
    return this.keys.listForUser(userId);
  }

  async revoke(userId: string, id: string): Promise<void> {
    if (!(await this.keys.revoke(userId, id, this.clock.now().toISOString()))) {
      throw new AppError('not_found', 'API key not found');
    }
  }
}
