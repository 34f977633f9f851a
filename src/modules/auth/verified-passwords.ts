import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../clock.ts';

/** How long a verified password is taken as verified without another scrypt (issue 13: Basic auth). */
export const VERIFIED_PASSWORD_TTL_MS = 60_000;
/** At most this many remembered (username, password) pairs per process; the oldest go first. */
export const VERIFIED_PASSWORD_MAX_ENTRIES = 1000;

interface Entry {
  userId: string;
  /** The stored password hash the password was checked against: a change of password (any process) changes it. */
  passwordHash: string;
  expiresAtMs: number;
}

/**
 * Remembers, for a short time, that a username + password pair matched, so that a WebDAV client sending
 * Basic credentials with every request costs one scrypt per minute instead of one per request (a PROPFIND
 * of a folder, then a GET per file, is hundreds of requests; scrypt is ~50 ms of CPU each: issue 13).
 *
 * What it trades, and why it is safe enough:
 * - Only the scrypt is skipped. The caller still reserves a throttle attempt first and still reads the
 *   account from the database on every request, so a locked-out username answers 429 even with a
 *   remembered password, and only a success is ever remembered: a wrong guess always costs its scrypt and
 *   counts as a failure.
 * - An entry is honoured only while the account's stored hash is the one the password was checked
 *   against: a password change or reset (in any process, it is read from the database) invalidates it at
 *   once; a deleted account is gone from the database. The TTL (60 s) bounds the rest: how long a password
 *   stays "known" to this process's memory after its last full check.
 * - Keys are an HMAC of (username, password) under a random key made per process and never stored, so the
 *   map holds no password, and a memory dump gives nothing to test guesses against offline without that
 *   key (which is in the same memory, so this is hygiene, not a barrier). Values hold no secret either
 *   (the stored hash is what the database already has).
 * - Bounded (VERIFIED_PASSWORD_MAX_ENTRIES): filling it (which takes correct passwords) only evicts.
 * - Per process: nothing needs to hold across processes, since every entry is re-validated against the
 *   database; a second process simply does its own first scrypt.
 * API keys are not cached: their check is a sha256 and one indexed query already, and a revocation must
 * take effect on the next request.
 */
export class VerifiedPasswords {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly options: { ttlMs?: number; maxEntries?: number } = {},
  ) {}

  private id(username: string, password: string): string {
    // JSON of the pair: unambiguous whatever either contains.
    return createHmac('sha256', this.key).update(JSON.stringify([username, password])).digest('base64url');
  }

  /**
   * True when this exact pair was verified within the TTL against the account that now has `userId` and
   * `passwordHash` (both as just read from the database).
   */
  matches(username: string, password: string, userId: string, passwordHash: string): boolean {
    const id = this.id(username, password);
    const entry = this.entries.get(id);
    if (!entry) return false;
    if (entry.expiresAtMs <= this.clock.now().getTime() || entry.userId !== userId || !sameString(entry.passwordHash, passwordHash)) {
      this.entries.delete(id);
      return false;
    }
    return true;
  }

  /** Records a pair that a full check (scrypt) has just verified. Never call it for a failed check. */
  remember(username: string, password: string, userId: string, passwordHash: string): void {
    const id = this.id(username, password);
    this.entries.delete(id); // re-inserted at the end: the map's order is the eviction order
    const max = this.options.maxEntries ?? VERIFIED_PASSWORD_MAX_ENTRIES;
    while (this.entries.size >= max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(id, { userId, passwordHash, expiresAtMs: this.clock.now().getTime() + (this.options.ttlMs ?? VERIFIED_PASSWORD_TTL_MS) });
  }

  /** How many pairs are remembered now (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
