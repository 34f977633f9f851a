import type { Redis } from 'ioredis';
import type { LeaseStore } from './leased-keyed-lock.ts';

// Compare-and-delete / compare-and-extend: only the holder's token may release or renew (a holder whose
// lease expired must not delete its successor's lock).
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/** Leases in Redis: `<prefix>:lock:<name>` = token, `SET NX PX` to take, Lua compare-and-delete to release. */
export function redisLeaseStore(redis: Redis, prefix: string): LeaseStore {
  const key = (name: string) => `${prefix}:lock:${name}`;
  return {
    kind: 'redis',
    async tryTake(name, token, leaseMs) {
      return (await redis.set(key(name), token, 'PX', leaseMs, 'NX')) === 'OK';
    },
    async renew(name, token, leaseMs) {
      return (await redis.eval(RENEW, 1, key(name), token, String(leaseMs))) === 1;
    },
    async release(name, token) {
      await redis.eval(RELEASE, 1, key(name), token);
    },
  };
}
