import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { LeaseLocks } from '../../src/locks/lease-lock.ts';
import { LocksRepository } from '../../src/locks/locks.repository.ts';
import { IndexSyncRepository } from '../../src/modules/index-sync/index-sync.repository.ts';
import { IndexSyncService } from '../../src/modules/index-sync/index-sync.service.ts';
import { FsBlobStore, nodeScanFs, type ScanFs } from '../../src/storage/fs-blob-store.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';
import { userDir, writeTree } from './helpers.ts';

/** Records each lease renewal and lets the test await the next one (no sleeps: the clock drives the timer). */
class WatchedRepository extends LocksRepository {
  readonly renewals: string[] = [];
  private waiting: Array<() => void> = [];
  override async renew(name: string, holder: string, expiresIso: string): Promise<boolean> {
    const ok = await super.renew(name, holder, expiresIso);
    this.renewals.push(expiresIso);
    for (const wake of this.waiting.splice(0)) wake();
    return ok;
  }
  nextRenewal(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

describe.each(testDialects())(`${IndexSyncService.name} lock lease on %s`, (dialect) => {
  const clock = new ManualClock(Date.now());
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ dialect, clock });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it("renews its lease on the injected clock's timer while it runs, and stops when it is done", async () => {
    const { app } = t;
    const userId = (await createUserWithKey(app)).user.id;
    await writeTree(app, userId, { 'a/1.txt': '1' });
    const repo = new WatchedRepository(app.db);
    const ttlMs = 60_000;
    const leaseExpiry = async () => (await app.db.selectFrom('locks').select('expires_at').executeTakeFirst())?.expires_at;
    let leaseDuringRun: string | undefined;
    let renewedAt = 0;
    const fs: ScanFs = {
      ...nodeScanFs,
      readdir: async (dir) => {
        if (dir === path.join(userDir(app, userId), 'a')) {
          const renewed = repo.nextRenewal();
          clock.advance(ttlMs / 3 - 1);
          expect(repo.renewals).toEqual([]);
          clock.advance(1);
          renewedAt = clock.now().getTime();
          await renewed;
          leaseDuringRun = await leaseExpiry();
        }
        return nodeScanFs.readdir(dir);
      },
    };
    const sut = new IndexSyncService(new IndexSyncRepository(app.db), new FsBlobStore(app.config.storageRoot, { scanFs: fs }), clock, app.config.storageRoot, new LeaseLocks(repo, clock), { lockTtlMs: ttlMs });

    const stats = await sut.run({ mode: 'audit', userId });

    expect(stats.errors).toEqual([]);
    expect(repo.renewals).toEqual([new Date(renewedAt + ttlMs).toISOString()]);
    expect(leaseDuringRun).toBe(new Date(renewedAt + ttlMs).toISOString());
    expect(await leaseExpiry()).toBeUndefined();
    clock.advance(10 * ttlMs);
    expect(repo.renewals).toHaveLength(1);
  });
});
