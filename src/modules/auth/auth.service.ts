import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { UsersService } from '../users/users.service.ts';
import type { User } from '../users/users.types.ts';
import type { Principal } from '../../lib/principal.ts';
import { signJwt, verifyJwt } from './jwt.ts';
import type { AttemptLimiter } from '../../throttle/attempt-limiter.ts';
import type { RefreshTokensRepository } from './refresh-tokens.repository.ts';
import { randomToken, sha256Hex, verifyPassword } from '../../lib/crypto.ts';
import type { VerifiedPasswords } from './verified-passwords.ts';

export const REFRESH_TOKEN_PREFIX = 'svr_';

/**
 * Checked against when the account is unknown or has no password, so every login costs one scrypt with
 * the same parameters as a real check. It hashes a random string nobody kept; the check's answer is
 * ignored anyway.
 */
const DUMMY_PASSWORD_HASH = 'scrypt$16384$8$1$JisUwKqFOCQGva4N2iHbjg$mzFCKSSgt0flRo-mFLecl8Wu946yTsZbV4E1bQEAVec';

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
  constructor(
    private readonly users: UserCredentials,
    private readonly refreshTokens: RefreshTokensRepository,
    /** Shared by every process (src/throttle): failed logins per client IP and per username. */
    private readonly throttle: AttemptLimiter,
    private readonly clock: Clock,
    private readonly settings: AuthSettings,
    /** Recently verified Basic credentials (checkBasicPassword); none = every Basic request costs a scrypt. */
    private readonly verifiedPasswords?: VerifiedPasswords,
  ) {}

  /**
   * Checks a username and password and issues a token pair. Each attempt first reserves a try against
   * both the client IP and the (case-folded) username, atomically in the shared store; either over the
   * limit answers rate_limited (429) before the password is checked, so a locked username cannot be used
   * as a guessing oracle and a concurrent burst cannot outrun the count (issue 12). A success clears the
   * username's failures and gives the IP its try back, so only failures count.
   */
  async login(
    username: string,
    password: string,
    ip: string,
    options: { device?: (userId: string) => Promise<string> } = {},
  ): Promise<LoginResult> {
    const user = await this.checkPassword(username, password, ip);
    // `device` registers a new sync device, only after the password checked out.
    const deviceId = options.device ? await options.device(user.id) : null;
    const tokens = await this.issue(user, randomUUID(), deviceId);
    return { user, tokens };
  }

  /**
   * The password check of login(), throttle included, without issuing tokens: WebDAV's Basic auth
   * (issue 13) checks it on each request and must be throttled exactly as the REST login is.
   */
  async checkPassword(username: string, password: string, ip: string): Promise<User> {
    return this.verify(username, password, ip, null);
  }

  /**
   * checkPassword() for HTTP Basic, which clients send with every request (WebDAV, issue 13): the same
   * throttle and account lookup on every call, but a pair verified within the last minute against the
   * account's current password hash skips the scrypt (see VerifiedPasswords for the trade-off).
   */
  async checkBasicPassword(username: string, password: string, ip: string): Promise<User> {
    return this.verify(username, password, ip, this.verifiedPasswords ?? null);
  }

  private async verify(username: string, password: string, ip: string, cache: VerifiedPasswords | null): Promise<User> {
    const ipKey = `ip:${ip}`;
    const userKey = `user:${username.toLowerCase()}`;
    // Reserved before anything else, cache or not: a locked username answers 429 even to a remembered password.
    await this.throttle.reserve([ipKey, userKey]);
    const found = await this.users.findCredentials(username);
    const stored = found?.passwordHash ?? null;
    const remembered = cache !== null && found !== undefined && stored !== null && cache.matches(username, password, found.user.id, stored);
    // Otherwise exactly one scrypt whatever the account: unknown usernames and accounts without a password
    // take as long as a wrong password, so timing tells nothing (issue 12: 2.6 ms vs ~50 ms before).
    const matches = remembered || (await verifyPassword(password, stored ?? DUMMY_PASSWORD_HASH));
    if (!found || stored === null || !matches) throw new AppError('unauthorized', 'wrong username or password');
    // Only a verified success is remembered; a failure never is.
    if (cache !== null && !remembered) cache.remember(username, password, found.user.id, stored);
    await Promise.all([this.throttle.forget(userKey), this.throttle.refund(ipKey)]);
    return found.user;
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

  /** The caller an access JWT stands for, or null when it is not a valid, unexpired access token of a live user. */
  async authenticateAccessToken(token: string): Promise<Principal | null> {
    const claims = await verifyJwt(token, this.settings.jwtSecret, this.clock.now());
    if (!claims || claims.typ !== 'access') return null;
    const user = await this.users.findById(claims.sub);
    return user ? { userId: user.id, username: user.username, isAdmin: user.isAdmin, via: 'jwt' } : null;
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
      access_token: await signJwt(claims, this.settings.jwtSecret, this.settings.accessTokenTtlSeconds, now),
      refresh_token: refresh,
      token_type: 'Bearer',
      expires_in: this.settings.accessTokenTtlSeconds,
    };
  }
}
