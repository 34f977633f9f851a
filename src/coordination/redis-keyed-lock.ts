import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { KeyedLock, type KeyedMutex } from './keyed-lock.ts';
import { systemTimers, type Timers } from './broadcast.port.ts';

// Compare-and-delete / compare-and-extend: only the holder's token may release or renew (a holder whose
// lease expired must not delete its successor's lock).
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

export interface RedisKeyedLockOptions {
  /** Key prefix (STORMVAULT_REDIS_PREFIX); locks are `<prefix>:lock:<key>`. */
  prefix: string;
  /** Lease of a held lock, renewed every third of it; a crashed holder frees the key after this long. */
  leaseMs?: number;
  /** How long run() waits for the lock before failing with `locked`. */
  waitMs?: number;
  timers?: Timers;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * KeyedLock across processes (issue 12: the files API's per-user write lock held only inside one process,
 * so two `serve` processes could both pass a quota or If-Match check and both commit). Same contract as
 * KeyedLock.run: one critical section per key at a time, now across every process on the Redis.
 *
 * Inside a process, callers of a key queue on a local KeyedLock first, so each process has at most one
 * contender per key in Redis. The contender takes `SET key token NX PX lease`, retrying with a short
 * jittered backoff (2 → 50 ms) while another process holds it, renews the lease while its section runs,
 * and deletes the key only if the token is still its own.
 */
export class RedisKeyedLock implements KeyedMutex {
  private readonly local = new KeyedLock();
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly timers: Timers;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisKeyedLockOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.waitMs = options.waitMs ?? 120_000;
    this.timers = options.timers ?? systemTimers;
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(key, async () => {
      const name = `${this.options.prefix}:lock:${key}`;
      const token = randomBytes(16).toString('hex');
      await this.acquire(name, token);
      const renew = this.timers.setInterval(() => {
        this.redis.eval(RENEW, 1, name, token, String(this.leaseMs)).then(
          (ok) => {
            if (ok !== 1) this.options.logger?.warn({ lock: name }, 'a write lock lease expired while held (the holder was stalled longer than the lease)');
          },
          (err) => this.options.logger?.warn({ err, lock: name }, 'could not renew a write lock lease'),
        );
      }, Math.max(100, Math.floor(this.leaseMs / 3)));
      try {
        return await fn();
      } finally {
        this.timers.clearInterval(renew);
        await this.redis.eval(RELEASE, 1, name, token).catch((err) => this.options.logger?.warn({ err, lock: name }, 'could not release a write lock; it frees itself when its lease ends'));
      }
    });
  }

  private async acquire(name: string, token: string): Promise<void> {
    let waited = 0;
    let backoff = 2;
    for (;;) {
      if ((await this.redis.set(name, token, 'PX', this.leaseMs, 'NX')) === 'OK') return;
      if (waited > this.waitMs) throw new AppError('locked', 'another write to the same account is taking too long; try again');
      const delay = backoff / 2 + Math.random() * backoff;
      await new Promise<void>((resolve) => this.timers.setTimeout(resolve, delay));
      waited += delay;
      backoff = Math.min(50, backoff * 2);
    }
  }
}
