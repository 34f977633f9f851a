import { RateLimiterMemory } from 'rate-limiter-flexible';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import * as crypto from '../../src/lib/crypto.ts';
import { AuthService, type UserCredentials } from '../../src/modules/auth/auth.service.ts';
import type { RefreshTokensRepository } from '../../src/modules/auth/refresh-tokens.repository.ts';
import { VERIFIED_PASSWORD_TTL_MS, VerifiedPasswords } from '../../src/modules/auth/verified-passwords.ts';
import type { User } from '../../src/modules/users/users.types.ts';
import { AttemptLimiter } from '../../src/throttle/attempt-limiter.ts';

// Counts the scrypt checks the service makes (the real function still runs).
vi.mock('../../src/lib/crypto.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/lib/crypto.ts')>();
  return { ...original, verifyPassword: vi.fn(original.verifyPassword) };
});
const scrypts = () => vi.mocked(crypto.verifyPassword).mock.calls.length;

describe(VerifiedPasswords.name, () => {
  const password = 'correct horse battery';
  let clock: ManualClock;
  let account: { user: User; passwordHash: string | null } | undefined;
  let cache: VerifiedPasswords;
  let sut: AuthService;

  beforeEach(async () => {
    vi.mocked(crypto.verifyPassword).mockClear();
    clock = new ManualClock(Date.UTC(2026, 11, 1));
    account = { user: { id: 'u1', username: 'alice', isAdmin: false } as User, passwordHash: await crypto.hashPassword(password) };
    const users: UserCredentials = {
      findById: async () => account?.user,
      findCredentials: async (username) => (account && username.toLowerCase() === 'alice' ? account : undefined),
    };
    cache = new VerifiedPasswords(clock);
    const throttle = new AttemptLimiter(new RateLimiterMemory({ points: 3, duration: 60 }), 'too many failed logins');
    sut = new AuthService(users, {} as RefreshTokensRepository, throttle, clock, { jwtSecret: 'x'.repeat(32), accessTokenTtlSeconds: 900, refreshTokenTtlSeconds: 3600 }, cache);
  });

  it('spares the scrypt of a pair verified within the TTL, and checks again after it', async () => {
    await sut.checkBasicPassword('alice', password, '10.0.0.1');
    await sut.checkBasicPassword('alice', password, '10.0.0.1');
    await sut.checkBasicPassword('alice', password, '10.0.0.2');
    expect(scrypts()).toBe(1);
    clock.advance(VERIFIED_PASSWORD_TTL_MS);
    await sut.checkBasicPassword('alice', password, '10.0.0.1');
    expect(scrypts()).toBe(2);
  });

  it('never remembers a failure: every wrong guess costs its scrypt and is refused', async () => {
    await sut.checkBasicPassword('alice', password, '10.0.0.1');
    for (let i = 0; i < 2; i++) await expect(sut.checkBasicPassword('alice', 'wrong guess', '10.0.0.1')).rejects.toMatchObject({ code: 'unauthorized' });
    expect(scrypts()).toBe(3);
    expect(cache.size).toBe(1);
  });

  it('does not weaken the throttle: a locked username is 429 even with a remembered password', async () => {
    await sut.checkBasicPassword('alice', password, '10.0.0.1');
    for (let i = 0; i < 3; i++) await expect(sut.checkBasicPassword('alice', `guess-${i}`, `10.0.1.${i}`)).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(sut.checkBasicPassword('alice', password, '10.0.2.1')).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('is invalidated at once by a password change (the stored hash differs) and by a deleted account', async () => {
    await sut.checkBasicPassword('alice', password, '10.0.0.1');
    account = { ...account!, passwordHash: await crypto.hashPassword('a brand new password') };
    await expect(sut.checkBasicPassword('alice', password, '10.0.0.1')).rejects.toMatchObject({ code: 'unauthorized' });
    expect(cache.size).toBe(0);
    await sut.checkBasicPassword('alice', 'a brand new password', '10.0.0.1');
    account = undefined;
    await expect(sut.checkBasicPassword('alice', 'a brand new password', '10.0.0.1')).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('is not used by the REST login path (checkPassword)', async () => {
    await sut.checkPassword('alice', password, '10.0.0.1');
    await sut.checkPassword('alice', password, '10.0.0.1');
    expect(scrypts()).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('is bounded, evicting the oldest, and keyed by an HMAC: no password in its keys', () => {
    const small = new VerifiedPasswords(clock, { maxEntries: 2 });
    small.remember('a', 'secret-a', 'ua', 'ha');
    small.remember('b', 'secret-b', 'ub', 'hb');
    small.remember('c', 'secret-c', 'uc', 'hc');
    expect(small.size).toBe(2);
    expect(small.matches('a', 'secret-a', 'ua', 'ha')).toBe(false);
    expect(small.matches('c', 'secret-c', 'uc', 'hc')).toBe(true);
    expect(small.matches('c', 'secret-c', 'other-user', 'hc')).toBe(false);
    const keys = [...(small as unknown as { entries: Map<string, unknown> }).entries.keys()];
    expect(keys.some((k) => k.includes('secret'))).toBe(false);
    expect(keys.every((k) => /^[A-Za-z0-9_-]{43}$/.test(k))).toBe(true);
  });
});
