import type { Clock } from '../clock.ts';
import type { LocksRepository } from '../locks/locks.repository.ts';
import type { LeaseStore } from './leased-keyed-lock.ts';

/**
 * Leases in the database's `locks` table (src/locks, migration 0006), for deployments on PostgreSQL
 * without Redis (issue 12). Taking a lease is one statement (insert, or take over only an expired row),
 * so two processes racing for it cannot both win; expiry is read from the Clock of the caller, so every
 * process must keep the same time (one host, or NTP). `description` names this process for whoever
 * inspects the table.
 */
export function databaseLeaseStore(repo: LocksRepository, clock: Pick<Clock, 'now'>, description: string): LeaseStore {
  const until = (leaseMs: number) => new Date(clock.now().getTime() + leaseMs).toISOString();
  return {
    kind: 'database',
    tryTake: (name, token, leaseMs) => repo.tryAcquire(name, token, description, clock.now().toISOString(), until(leaseMs)),
    renew: (name, token, leaseMs) => repo.renew(name, token, until(leaseMs)),
    release: (name, token) => repo.release(name, token),
  };
}
