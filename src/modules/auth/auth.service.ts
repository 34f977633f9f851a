import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { UsersService } from '../users/users.service.ts';
import type { User } from '../users/users.types.ts';
import { signJwt } from './jwt.ts';
import type { LoginThrottle } from './login-throttle.ts';
import type { RefreshTokensRepository } from './refresh-tokens.repository.ts';
import { hashPassword, randomToken, sha256Hex, verifyPassword } from './secrets.ts';

export const REFRESH_TOKEN_PREFIX = 'svr_';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  /** Seconds until the access token expires. */
  expires_in: number;
}

export interface AuthSettings {
  jwtSecret: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
}

export interface LoginResult {
  user: User;
  tokens: TokenPair;
}

/** What login and refresh need to know about users (the users module's service satisfies it). */
export type UserCredentials = Pick<UsersService, 'findById' | 'findCredentials'>;

export class AuthService {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly users: UserCredentials,
    private readonly refreshTokens: RefreshTokensRepository,
    private readonly throttle: LoginThrottle,
    private readonly clock: Clock,
    private readonly settings: AuthSettings,
  ) {}

  /**
   * Checks a username and password and issues a token pair. Failures count against both the client IP
   * and the username; either over the limit answers rate_limited (429) before the password is checked,
   * so a locked username cannot be used as a guessing oracle.
   */
  async login(
    username: string,
    password: string,
    ip: string,
    options: { device?: (userId: string) => Promise<string> } = {},
  ): Promise<LoginResult> {
    const keys = [`ip:${ip}`, `user:${username.toLowerCase()}`];
    const wait = Math.max(...keys.map((k) => this.throttle.retryAfterSeconds(k)));
    if (wait > 0) {
      throw new AppError('rate_limited', `too many failed logins; try again in ${wait} s`, { retry_after: wait });
    }
    const found = await this.users.findCredentials(username);
    // Hash something even for unknown users so response time does not reveal which usernames exist.
    const ok = found
      ? await verifyPassword(password, found.passwordHash)
      : await verifyPassword(password, await (this.dummyHash ??= hashPassword(randomToken(16))));
    if (!found || !ok) {
      keys.forEach((k) => this.throttle.recordFailure(k));
      throw new AppError('unauthorized', 'wrong username or password');
    }
    this.throttle.reset(keys[1]!);
    // `device` registers a new sync device, only after the password checked out.
    const deviceId = options.device ? await options.device(found.user.id) : null;
    const tokens = await this.issue(found.user, randomUUID(), deviceId);
    return { user: found.user, tokens };
  }

  /**
   * Exchanges a refresh token for a new pair (rotation). Presenting a token that was already used
   * revokes its whole family: either the client is confused or someone else holds a copy.
   */
  async refresh(refreshToken: string): Promise<LoginResult> {
    const invalid = new AppError('unauthorized', 'invalid or expired refresh token');
    if (!refreshToken.startsWith(REFRESH_TOKEN_PREFIX) || refreshToken.length > 200) throw invalid;
    const row = await this.refreshTokens.findByHash(sha256Hex(refreshToken));
    const now = this.clock.now();
    if (!row || row.revokedAt || row.expiresAt <= now.toISOString()) throw invalid;
    if (row.usedAt || !(await this.refreshTokens.markUsed(row.id, now.toISOString()))) {
      await this.refreshTokens.revokeFamily(row.familyId, now.toISOString());
      throw new AppError('unauthorized', 'refresh token was already used; this login has been revoked, sign in again');
    }
    const user = await this.users.findById(row.userId);
    if (!user) throw invalid;
    // The rotated pair stays bound to the device the login registered.
    return { user, tokens: await this.issue(user, row.familyId, row.deviceId) };
  }

  /** Revokes the login (token family) a refresh token belongs to. Unknown tokens are ignored. */
  async logout(refreshToken: string): Promise<void> {
    const row = await this.refreshTokens.findByHash(sha256Hex(refreshToken));
    if (row) await this.refreshTokens.revokeFamily(row.familyId, this.clock.now().toISOString());
  }

  private async issue(user: User, familyId: string, deviceId: string | null): Promise<TokenPair> {
    const now = this.clock.now();
    const refresh = randomToken(32, REFRESH_TOKEN_PREFIX);
    await this.refreshTokens.insert({
      id: randomUUID(),
      userId: user.id,
      familyId,
      tokenHash: sha256Hex(refresh),
      deviceId,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.settings.refreshTokenTtlSeconds * 1000).toISOString(),
    });
    const claims = { sub: user.id, typ: 'access' as const, ...(deviceId ? { did: deviceId } : {}) };
    return {
      access_token: signJwt(claims, this.settings.jwtSecret, this.settings.accessTokenTtlSeconds, now),
      refresh_token: refresh,
      token_type: 'Bearer',
      expires_in: this.settings.accessTokenTtlSeconds,
    };
  }
}
