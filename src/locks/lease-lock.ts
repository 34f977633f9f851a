import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { LockHolder, LocksRepository } from './locks.repository.ts';

export type { LockHolder } from './locks.repository.ts';

/** A held lock. `lost()` turns true when a renewal found the lease taken over (the holder must stop). */
export interface Lease {
  readonly name: string;
  lost(): boolean;
  /** Stops renewing and deletes the row (only if still ours). Idempotent. */
  release(): Promise<void>;
}

/** Starts a repeating timer and returns its cancel function. */
export type RepeatTimer = (fn: () => void, everyMs: number) => () => void;

export interface LeaseLocksOptions {
  logger?: Logger;
  /** Renewal timer; default the Clock's setInterval (tests drive it with a ManualClock). */
  repeat?: RepeatTimer;
}

/**
 * Cross-process mutual exclusion through the database (DESIGN.md "Processes": anything that must hold
 * across several serve/worker/CLI processes goes through the database or Redis). A lock is a row with a
 * lease: the holder renews it every third of the TTL; if the holder dies, the lease expires and the next
 * caller takes it over, so a crash never blocks forever. Used by index reconciliation of every scope
 * (docs/index-sync.md) and available to any capability that needs "one at a time across processes".
 */
export class LeaseLocks {
  private readonly repeat: RepeatTimer;

  constructor(
    private readonly repo: LocksRepository,
    private readonly clock: Clock,
    private readonly options: LeaseLocksOptions = {},
  ) {
    this.repeat =
      options.repeat ??
      ((fn, everyMs) => {
        // A lease must never keep a finished CLI process alive.
        const timer = clock.setInterval(fn, everyMs).unref();
        return () => clock.clearInterval(timer);
      });
  }

  /** A description naming this process: `<what> on <host> pid <pid>` (shown to whoever is refused). */
  static describe(what: string): string {
    return `${what} on ${hostname()} pid ${process.pid}`;
  }

  /**
   * Takes `name` for `ttlMs` (renewed while held). Returns the lease, or `{ heldBy }` (the current holder,
   * undefined if it vanished in between) when someone else holds it.
   */
  async tryAcquire(name: string, description: string, ttlMs: number): Promise<Lease | { heldBy: LockHolder | undefined }> {
    const holder = randomBytes(12).toString('hex');
    const now = this.clock.now();
    const acquired = await this.repo.tryAcquire(name, holder, description, now.toISOString(), new Date(now.getTime() + ttlMs).toISOString());
    if (!acquired) return { heldBy: await this.repo.holderOf(name) };
    let lost = false;
    let released = false;
    const cancel = this.repeat(() => {
      const expires = new Date(this.clock.now().getTime() + ttlMs).toISOString();
      this.repo.renew(name, holder, expires).then(
        (ok) => {
          if (!ok) lost = true;
        },
        (err) => this.options.logger?.warn({ err, lock: name }, 'could not renew a lock lease'),
      );
    }, Math.max(1000, Math.floor(ttlMs / 3)));
    return {
      name,
      lost: () => lost,
      release: async () => {
        if (released) return;
        released = true;
        cancel();
        await this.repo.release(name, holder);
      },
    };
  }

  async holderOf(name: string): Promise<LockHolder | undefined> {
    return this.repo.holderOf(name);
  }
}

/** Narrows tryAcquire's answer. */
export function isLease(x: Lease | { heldBy: LockHolder | undefined }): x is Lease {
  return 'release' in x;
}
