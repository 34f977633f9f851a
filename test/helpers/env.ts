/**
 * Which external servers the suites may use. On a laptop without PostgreSQL or Redis those suites are
 * skipped with a printed notice; in CI (CI=true) a missing URL is a hard failure, never a silent skip.
 */
export const TEST_PG_URL = process.env.STORMVAULT_TEST_DATABASE_URL || undefined;
export const TEST_REDIS_URL = process.env.STORMVAULT_TEST_REDIS_URL || undefined;
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

const noticed = new Set<string>();
function requireOrNotice(what: string, envVar: string, present: boolean): void {
  if (present) return;
  if (IN_CI) throw new Error(`${envVar} is not set: in CI the ${what} suites must run, not skip`);
  if (!noticed.has(envVar)) {
    noticed.add(envVar);
    console.warn(`[stormvault tests] ${envVar} not set: skipping the ${what} suites`);
  }
}

export type TestDialect = 'sqlite' | 'postgres';

/** Dialects every database-backed suite runs on: always SQLite, PostgreSQL when configured. */
export function testDialects(): TestDialect[] {
  requireOrNotice('PostgreSQL', 'STORMVAULT_TEST_DATABASE_URL', Boolean(TEST_PG_URL));
  return TEST_PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** True when the Redis suites can run (throws in CI when they could not). */
export function redisAvailable(): boolean {
  requireOrNotice('Redis', 'STORMVAULT_TEST_REDIS_URL', Boolean(TEST_REDIS_URL));
  return Boolean(TEST_REDIS_URL);
}
