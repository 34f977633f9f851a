import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisBackend } from '../../src/tasks/backends/redis/redis.backend.ts';
import type { TaskFramework } from '../../src/tasks/framework.ts';
import { redisAvailable, TEST_REDIS_URL } from '../helpers/env.ts';
import { frameworkOn, type TaskBackendFixture, type TaskStore } from './backends.ts';

/**
 * The redis (BullMQ) backend for the task conformance suite. Each store gets its own key prefix, so
 * test files running in parallel on one Redis never see each other's queues; close() deletes its keys.
 */
export interface RedisTaskStore extends TaskStore {
  readonly redisUrl: string;
  readonly redisPrefix: string;
}

export function redisFixture(url: string): TaskBackendFixture & { open(): Promise<RedisTaskStore> } {
  return {
    name: 'redis',
    async open(): Promise<RedisTaskStore> {
      const prefix = `svtest-${randomUUID().slice(0, 8)}`;
      const nodes: TaskFramework[] = [];
      return {
        redisUrl: url,
        redisPrefix: prefix,
        async node(options = {}) {
          // A short lock keeps the stalled-job recovery (a killed worker's task) within a test's patience.
          const fw = frameworkOn(redisBackend({ url, prefix, lockDurationMs: options.leaseMs ?? 30_000 }), options.clock);
          nodes.push(fw);
          return fw;
        },
        async closeNodes() {
          for (const n of nodes.splice(0)) await n.close();
        },
        async close() {
          for (const n of nodes.splice(0)) await n.close();
          await deleteKeys(url, prefix);
        },
      };
    },
  };
}

/** The redis fixture when STORMVAULT_TEST_REDIS_URL is set (a notice otherwise; CI fails instead). */
export function redisFixtures(): TaskBackendFixture[] {
  return redisAvailable() ? [redisFixture(TEST_REDIS_URL!)] : [];
}

export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await client.quit();
  }
}
