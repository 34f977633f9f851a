import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { KeyedLock, type KeyedMutex } from './keyed-lock.ts';

/**
 * Where a LeasedKeyedLock keeps its leases: named, each held by one random token until it expires.
 * Every call acts only for `token`, so a holder whose lease expired can neither renew nor delete its
 * successor's lease. Adapters: Redis (redis-lease-store.ts: SET NX PX, compare-and-delete) and the
 * database (database-lease-store.ts: the `locks` table of src/locks).
 */
export interface LeaseStore {
  /** Which store, for logs and the docs. */
  readonly kind: 'redis' | 'database';
  /** Takes `name` for `leaseMs` when it is free or its lease expired; false when someone else holds it. One atomic step. */
  tryTake(name: string, token: string, leaseMs: number): Promise<boolean>;
  /** Extends our lease to `leaseMs` from now; false when it is no longer ours (it expired and was taken). */
  renew(name: string, token: string, leaseMs: number): Promise<boolean>;
  /** Deletes the lease if it is still ours. */
  release(name: string, token: string): Promise<void>;
}

export interface LeasedKeyedLockOptions {
  /** Names the leases `<namespace>:<key>` (e.g. `files-write`), so several locks can share one store. */
  namespace: string;
  /** Lease of a held lock, renewed every third of it; a crashed holder frees the key after this long. Default 30 s. */
  leaseMs?: number;
  /** How long run() waits for the lock before failing with `locked`. Default 120 s. */
  waitMs?: number;
  /** Timers of the backoff and the renewal (DESIGN.md: no global timers). */
  clock: Pick<Clock, 'setTimeout' | 'setInterval' | 'clearInterval'>;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * KeyedMutex across processes (issue 12: the files API's per-user write lock held only inside one process,
 * so two `serve` processes could both pass a quota or If-Match check and both commit). Same contract as
 * KeyedLock.run: one critical section per key at a time, now across every process sharing the store.
 *
 * Inside a process, callers of a key queue on a local KeyedLock first, so each process has at most one
 * contender per key in the store. The contender takes the lease, retrying with a short jittered backoff
 * (2 → 50 ms) while another process holds it, renews the lease while its section runs, and releases it
 * only if the token is still its own.
 */
export class LeasedKeyedLock implements KeyedMutex {
  private readonly local = new KeyedLock();
  private readonly leaseMs: number;
  private readonly waitMs: number;

  constructor(
    private readonly store: LeaseStore,
    private readonly options: LeasedKeyedLockOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.waitMs = options.waitMs ?? 120_000;
  }

  get kind(): LeaseStore['kind'] {
    return this.store.kind;
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(key, async () => {
      const name = `${this.options.namespace}:${key}`;
      const token = randomBytes(16).toString('hex');
      await this.acquire(name, token);
      const { clock, logger } = this.options;
      const renew = clock.setInterval(() => {
        this.store.renew(name, token, this.leaseMs).then(
          (ok) => {
            if (!ok) logger?.warn({ lock: name }, 'a write lock lease expired while held (the holder was stalled longer than the lease)');
          },
          (err) => logger?.warn({ err, lock: name }, 'could not renew a write lock lease'),
        );
      }, Math.max(100, Math.floor(this.leaseMs / 3)));
      // A renewal timer must never keep a finished process alive.
      renew.unref();
      try {
        return await fn();
      } finally {
        clock.clearInterval(renew);
        await this.store.release(name, token).catch((err) => logger?.warn({ err, lock: name }, 'could not release a write lock; it frees itself when its lease ends'));
      }
    });
  }

  private async acquire(name: string, token: string): Promise<void> {
    let waited = 0;
    let backoff = 2;
    for (;;) {
      if (await this.store.tryTake(name, token, this.leaseMs)) return;
      if (waited > this.waitMs) throw new AppError('locked', 'another write to the same account is taking too long; try again');
      const delay = backoff / 2 + Math.random() * backoff;
      await new Promise<void>((resolve) => this.options.clock.setTimeout(resolve, delay));
      waited += delay;
      backoff = Math.min(50, backoff * 2);
    }
  }
}
