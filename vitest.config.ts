import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // Setup of the large-folder reconciliation tests (100,000 entries) can near a minute on a loaded 2-core box.
    hookTimeout: 120_000,
    // Two cores: more workers only add contention on SQLite files and PostgreSQL.
    maxWorkers: 2,
  },
});
