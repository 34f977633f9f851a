import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/clock.ts';
import { createDatabase } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { databaseStream } from '../../src/streams/database/database-stream.ts';
import { redisStream } from '../../src/streams/redis/redis-stream.ts';
import type { StreamLog } from '../../src/streams/stream.port.ts';
import { redisAvailable, testDialects, TEST_REDIS_URL } from '../helpers/env.ts';
import { freshDatabaseUrl } from '../helpers/test-app.ts';
import { deleteKeys } from '../tasks/redis.fixture.ts';

export interface OpenStream {
  log: StreamLog;
  /** Makes pending entries older than the claim timeout (database: moves the clock; redis: lets Redis's clock pass it). */
  ageBeyondClaimTimeout(): Promise<void>;
  close(): Promise<void>;
}

export interface StreamFixture {
  name: string;
  open(): Promise<OpenStream>;
}

const CLAIM_MS = 1000;
const REDIS_CLAIM_MS = 80;

/** Every adapter the suites run on: database on SQLite (and PostgreSQL when configured), redis when configured. */
export function streamFixtures(): StreamFixture[] {
  const out: StreamFixture[] = testDialects().map((dialect) => ({
    name: `database (${dialect})`,
    async open() {
      const dir = await mkdtemp(path.join(tmpdir(), 'sv-streams-'));
      const url = await freshDatabaseUrl(dialect, dir);
      const handle = createDatabase(url.url);
      await migrateToLatest(handle.db);
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const log = databaseStream({ db: handle.db, dialect: handle.dialect, clock, claimTimeoutMs: CLAIM_MS });
      return {
        log,
        ageBeyondClaimTimeout: async () => clock.advance(CLAIM_MS + 1),
        async close() {
          await log.close();
          await handle.destroy();
          await url.drop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  }));
  if (redisAvailable()) {
    out.push({
      name: 'redis',
      async open() {
        const prefix = `svtest-${randomUUID().slice(0, 8)}`;
        const log = redisStream({ url: TEST_REDIS_URL!, prefix, claimTimeoutMs: REDIS_CLAIM_MS });
        return {
          log,
          // XAUTOCLAIM measures idle time with Redis's own clock; the only way to age an entry is to let it pass.
          ageBeyondClaimTimeout: () => new Promise((r) => setTimeout(r, REDIS_CLAIM_MS + 20)),
          async close() {
            await log.close();
            await deleteKeys(TEST_REDIS_URL!, prefix);
          },
        };
      },
    });
  }
  return out;
}
