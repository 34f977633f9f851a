import { createRequire } from 'node:module';
import type { RateLimiterRes as RateLimiterResType } from 'rate-limiter-flexible';
import { AppError } from '../errors.ts';

// The one class needed, loaded from its own file: the package's index loads every store it ships
// (Redis, Mongo, MySQL, DynamoDB, ... ~40 files), ~100 ms of every CLI command (issue 12, CLI start-up).
// The index requires this same file, so instanceof holds across both.
const require = createRequire(import.meta.url);
const RateLimiterRes = require('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof RateLimiterResType;
type RateLimiterRes = RateLimiterResType;

/** The part of a rate-limiter-flexible limiter the throttle uses (any of its stores fits). */
export interface PointsLimiter {
  consume(key: string, points?: number): Promise<RateLimiterRes>;
  reward(key: string, points?: number): Promise<RateLimiterRes>;
  delete(key: string): Promise<boolean>;
}

/**
 * Throttles guesses of a secret (a password, a share password) with rate-limiter-flexible's brute-force
 * protection pattern: an attempt is *reserved* (consumed, atomically in the shared store) before the slow
 * check runs, so a burst of concurrent guesses cannot all pass a "limit not reached yet" test before any of
 * them is recorded (issue 12: 39 concurrent wrong passwords were all checked against a limit of 10).
 * A successful attempt gives its point back (`refund`) or clears the key (`forget`), so only failures count.
 */
export class AttemptLimiter {
  constructor(
    private readonly limiter: PointsLimiter,
    /** Said in the 429 answer, e.g. "too many failed logins". */
    private readonly what: string,
  ) {}

  /**
   * Reserves one attempt on every key; throws `rate_limited` (with `retry_after` seconds) when any of them
   * has none left. A store failure propagates (fail closed: no store, no guessing).
   */
  async reserve(keys: readonly string[]): Promise<void> {
    const results = await Promise.allSettled(keys.map((key) => this.limiter.consume(key, 1)));
    let waitMs = -1;
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      if (!(result.reason instanceof RateLimiterRes)) throw result.reason;
      waitMs = Math.max(waitMs, result.reason.msBeforeNext);
    }
    if (waitMs >= 0) {
      const wait = Math.max(1, Math.ceil(waitMs / 1000));
      throw new AppError('rate_limited', `${this.what}; try again in ${wait} s`, { retry_after: wait });
    }
  }

  /** Gives back the point a successful attempt reserved on `key`. */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(key, 1);
  }

  /** Clears `key` (e.g. a username's failures after a successful login). */
  async forget(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}
