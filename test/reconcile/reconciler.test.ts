import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { LeaseLocks } from '../../src/locks/lease-lock.ts';
import type { LocksRepository } from '../../src/locks/locks.repository.ts';
import { fromBlobScan } from '../../src/storage/reconcile/blob-scan.ts';
import { compareCodePoints, sortByKey } from '../../src/storage/reconcile/key-order.ts';
import { MAX_REPORTED_ERRORS, Reconciler } from '../../src/storage/reconcile/reconciler.ts';
import type { IndexedRow, IndexSide, Partition, RowVersion, ScanEntry, StoredEntry } from '../../src/storage/reconcile/reconcile.types.ts';

// The engine alone, with a fake storage scan and a fake index (no disk, no database): every rule that
// files, backups and publishing share is pinned here once.

const START = Date.UTC(2026, 0, 1, 12);
const LONG_AGO = START - 3_600_000;

interface FakeRow extends IndexedRow {
  size: number;
}

/** Lease locks over a Map instead of the locks table. */
function memoryLocks(clock: ManualClock, repeat: (fn: () => void, ms: number) => () => void = () => () => {}): { locks: LeaseLocks; rows: Map<string, { holder: string; description: string; acquiredAt: string; expiresAt: string }> } {
  const rows = new Map<string, { holder: string; description: string; acquiredAt: string; expiresAt: string }>();
  const repo = {
    async tryAcquire(name: string, holder: string, description: string, nowIso: string, expiresIso: string) {
      const cur = rows.get(name);
      if (cur && cur.expiresAt >= nowIso) return false;
      rows.set(name, { holder, description, acquiredAt: nowIso, expiresAt: expiresIso });
      return true;
    },
    async holderOf(name: string) {
      return rows.get(name);
    },
    async renew(name: string, holder: string, expiresIso: string) {
      const cur = rows.get(name);
      if (!cur || cur.holder !== holder) return false;
      cur.expiresAt = expiresIso;
      return true;
    },
    async release(name: string, holder: string) {
      if (rows.get(name)?.holder === holder) rows.delete(name);
    },
  } satisfies Pick<LocksRepository, keyof LocksRepository>;
  return { locks: new LeaseLocks(repo as unknown as LocksRepository, clock, { repeat }), rows };
}

const file = (key: string, size = 1, mtimeMs = LONG_AGO): StoredEntry => ({ key, kind: 'file', size, mtimeMs });
const dir = (key: string, mtimeMs = LONG_AGO): StoredEntry => ({ key, kind: 'dir', size: 0, mtimeMs });
const unreadable = (key: string): ScanEntry => ({ key, kind: 'problem', code: 'EACCES', message: 'permission denied', unreadable: true });
const symlink = (key: string): ScanEntry => ({ key, kind: 'problem', code: 'symlink', message: 'symbolic link', unreadable: false });

/**
 * One partition over arrays: `storage` is the truth, `index` a map the writes change. Page sizes are small
 * so the merge crosses page boundaries on both sides.
 */
class FakeStore {
  readonly index = new Map<string, FakeRow & { updatedAtMs: number; moving?: boolean; protected?: boolean }>();
  storage: ScanEntry[] = [];
  /** Keys written to storage after the listing (an upload landing mid-scan). */
  readonly landedLater = new Set<string>();
  /** Keys whose row appeared after the index page was read. */
  readonly indexedLater = new Set<string>();
  /** Row changes made by "the files API" while the scan runs: applied when versions are read. */
  readonly touchedDuringScan = new Set<string>();
  private nextId = 1;

  constructor(
    readonly label = 'u1',
    readonly pageSize = 3,
  ) {}

  row(key: string, over: Partial<FakeRow & { updatedAtMs: number; moving: boolean; protected: boolean }> = {}): this {
    this.index.set(key, { id: this.nextId++, key, kind: 'file', size: 1, updatedAtMs: LONG_AGO, ...over });
    return this;
  }

  partition(): Partition<FakeRow> {
    const size = this.pageSize;
    const pages = <T>(items: T[]) =>
      (async function* () {
        for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
      })();
    const byId = () => new Map([...this.index.values()].map((r) => [r.id, r]));
    return {
      label: this.label,
      storage: () => pages(sortByKey([...this.storage], (e) => e.key)),
      index: () => pages(sortByKey([...this.index.values()].map(({ id, key, kind, size }) => ({ id, key, kind, size })), (r) => r.key)),
      staleFields: (row, entry) => {
        if (row.kind !== entry.kind) return ['kind'];
        return entry.kind === 'file' && row.size !== entry.size ? ['size'] : [];
      },
      indexedNow: async (keys) => new Set(keys.filter((k) => this.indexedLater.has(k))),
      insert: async (entries) => {
        for (const e of entries) this.row(e.key, { kind: e.kind, size: e.size, updatedAtMs: START + 10 });
        return entries.length;
      },
      versions: async (rows) => {
        const now = byId();
        const out = new Map<number, RowVersion>();
        for (const r of rows) {
          const cur = now.get(r.id);
          if (!cur) continue;
          const touched = this.touchedDuringScan.has(cur.key);
          out.set(r.id, { key: cur.key, updatedAtMs: touched ? START + 5 : cur.updatedAtMs, moving: cur.moving === true });
        }
        return out;
      },
      update: async (changes) => {
        for (const c of changes) Object.assign(this.index.get(c.row.key)!, { size: c.entry.size, kind: c.entry.kind, updatedAtMs: START + 10 });
        return changes.length;
      },
      storedNow: async (key) => this.landedLater.has(key) || this.storage.some((e) => e.key === key && e.kind !== 'problem'),
      protectedIds: async (rows) => new Set(rows.filter((r) => this.index.get(r.key)?.protected).map((r) => r.id)),
      remove: async (rows) => {
        let n = 0;
        for (const r of rows) if (this.index.delete(r.key)) n++;
        return n;
      },
    };
  }
}

function sideOver(...stores: FakeStore[]): IndexSide<FakeRow, undefined> {
  return {
    scope: 'fake',
    lockName: 'reconcile:fake',
    validate: async () => undefined,
    isWholeScope: () => true,
    plan: async () => stores.map((s) => s.partition()),
  };
}

function setup() {
  const clock = new ManualClock(START);
  const { locks, rows } = memoryLocks(clock);
  return { clock, lockRows: rows, sut: new Reconciler(locks, clock, { batchSize: 2 }) };
}

describe(Reconciler.name, () => {
  it('merges the two sorted scans into missing, stale and orphaned; audit changes nothing', async () => {
    const { sut } = setup();
    const store = new FakeStore();
    store.storage = [dir('a'), file('a/new.txt'), file('a/same.txt'), file('a/grown.txt', 5), file('b.txt')];
    store.row('a', { kind: 'dir' }).row('a/same.txt').row('a/grown.txt').row('a/gone.txt').row('zzz');
    const before = JSON.stringify([...store.index]);
    const stats = await sut.run(sideOver(store), { mode: 'audit' });
    expect(stats).toMatchObject({
      users_scanned: 1,
      files_on_disk: 4,
      dirs_on_disk: 1,
      files_in_db: 4,
      missing_in_db: 2,
      orphaned_in_db: 2,
      stale_in_db: 1,
      records_created: 0,
      records_updated: 0,
      records_deleted: 0,
      deferred: 0,
      errors: [],
    });
    expect(JSON.stringify([...store.index])).toBe(before);
  });

  it('sync adds and updates, full deletes unprotected orphans; a second run has nothing to do', async () => {
    const { sut } = setup();
    const store = new FakeStore();
    store.storage = [file('keep', 1), file('grown', 9), file('new')];
    store.row('keep').row('grown').row('gone').row('shared', { protected: true });
    await expect(sut.run(sideOver(store), { mode: 'full' })).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/requires force/) });
    expect(store.index.size).toBe(4);

    const sync = await sut.run(sideOver(store), { mode: 'sync' });
    expect(sync).toMatchObject({ missing_in_db: 1, records_created: 1, stale_in_db: 1, records_updated: 1, orphaned_in_db: 2, records_deleted: 0 });
    expect(store.index.get('grown')!.size).toBe(9);

    const full = await sut.run(sideOver(store), { mode: 'full', force: true });
    expect(full).toMatchObject({ missing_in_db: 0, stale_in_db: 0, orphaned_in_db: 2, records_deleted: 1, records_skipped: 1 });
    expect([...store.index.keys()].sort()).toEqual(['grown', 'keep', 'new', 'shared']);

    const again = await sut.run(sideOver(store), { mode: 'full', force: true });
    expect(again).toMatchObject({ records_created: 0, records_updated: 0, records_deleted: 0, records_skipped: 1 });
  });

  it('a dry run counts exactly what the mode would do and changes nothing', async () => {
    const { sut } = setup();
    const store = new FakeStore();
    store.storage = [file('grown', 9), file('new')];
    store.row('grown').row('gone');
    const dry = await sut.run(sideOver(store), { mode: 'full', force: true, dryRun: true });
    expect(dry).toMatchObject({ records_created: 1, records_updated: 1, records_deleted: 1 });
    expect(store.index.get('grown')!.size).toBe(1);
    expect(store.index.has('gone')).toBe(true);
    expect(store.index.has('new')).toBe(false);
    const real = await sut.run(sideOver(store), { mode: 'full', force: true });
    expect(real).toMatchObject({ records_created: dry.records_created, records_updated: dry.records_updated, records_deleted: dry.records_deleted });
  });

  it('defers what is being written during the scan (or < 1 s before it) instead of misreporting it', async () => {
    const { sut } = setup();
    const store = new FakeStore();
    store.storage = [
      file('uploading', 1, START - 500), // written half a second before the scan
      file('rewritten', 9, START - 200), // stale, but fresh on disk
      file('row-landed'), // its row appeared after the index page was read
      file('row-touched', 7), // stale, but the files API rewrote the row during the scan
      file('old-missing'),
    ];
    store.indexedLater.add('row-landed');
    store.row('rewritten').row('row-touched').row('moving-away', { moving: true }).row('moved-during-scan').row('landed-later').row('real-orphan');
    store.touchedDuringScan.add('row-touched').add('moved-during-scan');
    store.landedLater.add('landed-later');
    const stats = await sut.run(sideOver(store), { mode: 'full', force: true });
    expect(stats).toMatchObject({ missing_in_db: 1, stale_in_db: 0, orphaned_in_db: 1, records_created: 1, records_deleted: 1, deferred: 7 });
    expect(store.index.has('real-orphan')).toBe(false);
    expect(store.index.has('moving-away')).toBe(true);
    expect(store.index.get('row-touched')!.size).toBe(1);
  });

  it('never counts rows at or below an unreadable entry as orphans; reports problems with the partition label', async () => {
    const { sut } = setup();
    const store = new FakeStore('user-7');
    store.storage = [unreadable('locked'), symlink('link'), file('locked-sibling')];
    store.row('locked', { kind: 'dir' }).row('locked/inner.txt').row('locked/deep/x').row('locked-sibling').row('link').row('locked-gone');
    const stats = await sut.run(sideOver(store), { mode: 'full', force: true });
    expect(stats.errors.map((e) => [e.path, e.code])).toEqual([
      ['user-7/link', 'symlink'],
      ['user-7/locked', 'EACCES'],
    ]);
    // The symlink's row and a sibling that only shares the prefix are orphans; nothing below "locked" is.
    expect(stats).toMatchObject({ orphaned_in_db: 2, records_deleted: 2 });
    expect([...store.index.keys()].sort()).toEqual(['locked', 'locked-sibling', 'locked/deep/x', 'locked/inner.txt']);
  });

  it('an unreadable root protects the whole partition', async () => {
    const { sut } = setup();
    const store = new FakeStore();
    store.storage = [unreadable('')];
    store.row('a').row('b/c');
    const stats = await sut.run(sideOver(store), { mode: 'full', force: true });
    expect(stats).toMatchObject({ orphaned_in_db: 0, records_deleted: 0, errors: [{ path: 'u1', code: 'EACCES' }] });
  });

  it('pairs keys in code-point order whatever the keys and page boundaries (property)', async () => {
    const key = fc.stringMatching(/^[a-c\-./\u00e9\ue000\u{10000}]{1,6}$/u).filter((k) => !k.startsWith('/') && !k.endsWith('/') && !k.includes('//'));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(key, { maxLength: 25 }), fc.uniqueArray(key, { maxLength: 25 }), async (onDisk, inIndex) => {
        const { sut } = setup();
        const store = new FakeStore();
        store.storage = onDisk.map((k) => file(k));
        inIndex.forEach((k) => store.row(k));
        const missing: string[] = [];
        const orphaned: string[] = [];
        const stats = await sut.run(sideOver(store), { mode: 'audit' }, { onDiscrepancy: (d) => (d.kind === 'missing_in_db' ? missing : orphaned).push(d.path.slice(3)) });
        expect(missing.sort()).toEqual(onDisk.filter((k) => !inIndex.includes(k)).sort());
        expect(orphaned.sort()).toEqual(inIndex.filter((k) => !onDisk.includes(k)).sort());
        expect(stats.stale_in_db).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('caps the error list and says how many more there were', async () => {
    const { sut } = setup();
    const store = new FakeStore('', 1000);
    store.storage = Array.from({ length: MAX_REPORTED_ERRORS + 5 }, (_, i) => symlink(`l${String(i).padStart(5, '0')}`));
    const stats = await sut.run(sideOver(store), { mode: 'audit' });
    expect(stats.errors).toHaveLength(MAX_REPORTED_ERRORS + 1);
    expect(stats.errors.at(-1)).toMatchObject({ code: 'too_many_errors', message: '5 more errors not listed' });
  });

  it('runs one at a time per lock and reports progress per partition', async () => {
    const { sut, lockRows } = setup();
    const a = new FakeStore('a');
    const b = new FakeStore('b');
    a.storage = [file('x')];
    let second: Promise<unknown> | undefined;
    const side = sideOver(a, b);
    const progress: Array<[number, number]> = [];
    const stats = await sut.run(side, { mode: 'audit' }, {
      onProgress: (p) => {
        progress.push([p.done, p.total]);
        second ??= sut.run(side, { mode: 'audit' }).catch((err) => err);
      },
    });
    expect(stats.users_scanned).toBe(2);
    expect(await second).toMatchObject({ code: 'locked', message: expect.stringMatching(/another index reconciliation is running \(fake audit on .* pid \d+/) });
    expect(progress.at(-1)).toEqual([2, 2]);
    expect(lockRows.size).toBe(0);
  });

  it('batches missing entries across partitions when the side can insert across them (many small users: one write per batch)', async () => {
    const { sut } = setup(); // batchSize 2
    const stores = ['u1', 'u2', 'u3'].map((label) => new FakeStore(label));
    stores[0]!.storage = [file('a'), file('b'), file('c')];
    stores[1]!.storage = [file('d')];
    stores[2]!.storage = [file('e'), file('f')];
    stores[2]!.indexedLater.add('f'); // its row appeared after the index page was read: deferred, not written
    const writes: string[][] = [];
    const side: IndexSide<FakeRow, undefined> = {
      ...sideOver(...stores),
      plan: async () => {
        const parts = stores.map((s) => s.partition());
        for (const p of parts) p.insert = async () => expect.unreachable('per-partition insert with insertAcross');
        byPartition = new Map(parts.map((p, i) => [p, stores[i]!]));
        return parts;
      },
      insertAcross: async (batches) => {
        writes.push(batches.flatMap((b) => b.entries.map((e) => `${b.partition.label}/${e.key}`)));
        for (const b of batches) for (const e of b.entries) byPartition.get(b.partition)!.row(e.key, { kind: e.kind, size: e.size });
        return batches.reduce((n, b) => n + b.entries.length, 0);
      },
    };
    let byPartition = new Map<Partition<FakeRow>, FakeStore>();
    const found: string[] = [];
    const stats = await sut.run(side, { mode: 'sync' }, { onDiscrepancy: (d) => found.push(d.path) });
    expect(stats).toMatchObject({ users_scanned: 3, missing_in_db: 5, records_created: 5, deferred: 1 });
    // Full batches whatever the partition they came from; the last one at the end of the run.
    expect(writes).toEqual([['u1/a', 'u1/b'], ['u1/c', 'u2/d'], ['u3/e']]);
    expect(found).toEqual(['u1/a', 'u1/b', 'u1/c', 'u2/d', 'u3/e']);
    expect(stores.map((s) => [...s.index.keys()])).toEqual([['a', 'b', 'c'], ['d'], ['e']]);
  });

  it('keeps scanning while a batch is written (one write in flight), and a failed write fails the run after it settled', async () => {
    const { sut, lockRows } = setup(); // batchSize 2
    const stores = ['u1', 'u2', 'u3'].map((label) => new FakeStore(label));
    stores[0]!.storage = [file('a'), file('b')];
    stores[1]!.storage = [file('c'), file('d')];
    stores[2]!.storage = [file('e')];
    const events: string[] = [];
    const sideWith = (insertAcross: IndexSide<FakeRow, undefined>['insertAcross']): IndexSide<FakeRow, undefined> => ({
      ...sideOver(...stores),
      plan: async () =>
        stores.map((s) => {
          const p = s.partition();
          const storage = p.storage;
          return { ...p, storage: () => (events.push(`scan ${s.label}`), storage()) };
        }),
      insertAcross,
    });
    const stats = await sut.run(
      sideWith(async (batches) => {
        const keys = batches.flatMap((b) => b.entries.map((e) => `${b.partition.label}/${e.key}`)).join(',');
        events.push(`write ${keys}`);
        await new Promise((r) => setTimeout(r, 20));
        events.push(`written ${keys}`);
        return batches.reduce((n, b) => n + b.entries.length, 0);
      }),
      { mode: 'sync' },
    );
    expect(stats.records_created).toBe(5);
    // u2 is scanned while u1's batch is being written; the next write waits for the previous one.
    expect(events).toEqual(['scan u1', 'write u1/a,u1/b', 'scan u2', 'written u1/a,u1/b', 'write u2/c,u2/d', 'scan u3', 'written u2/c,u2/d', 'write u3/e', 'written u3/e']);

    events.length = 0;
    let writing = 0;
    const failing = sut.run(
      sideWith(async () => {
        writing++;
        await new Promise((r) => setTimeout(r, 20));
        writing--;
        throw new Error('disk full');
      }),
      { mode: 'sync' },
    );
    await expect(failing).rejects.toThrow('disk full');
    expect(writing).toBe(0); // nothing still running once the run has failed
    expect(lockRows.size).toBe(0);
  });

  it('stops when its lease was taken over', async () => {
    const clock = new ManualClock(START);
    let tick: () => void = () => {};
    const { locks, rows } = memoryLocks(clock, (fn) => ((tick = fn), () => {}));
    const sut = new Reconciler(locks, clock);
    const store = new FakeStore('u', 1);
    store.storage = [file('a'), file('b'), file('c'), file('d')];
    const side = sideOver(store);
    const partition = side.plan;
    side.plan = async (ctx) => {
      const ps = await partition(ctx);
      // Another process takes the lock over (our lease expired) and our next renewal notices.
      rows.set('reconcile:fake', { holder: 'other', description: 'x', acquiredAt: '', expiresAt: '9999' });
      tick();
      await new Promise((r) => setImmediate(r));
      return ps;
    };
    await expect(sut.run(side, { mode: 'audit' })).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/lost its lock/) });
  });
});

describe(sortByKey.name, () => {
  it('sorts by code point with or without surrogates', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme' })), (xs) => {
        expect(sortByKey([...xs], (x) => x)).toEqual([...xs].sort(compareCodePoints));
      }),
    );
  });
});

describe(fromBlobScan.name, () => {
  it("feeds a BlobStore scan to the engine: keys relative to the partition's prefix, unreadable entries protect their rows", async () => {
    const { sut } = setup();
    const blob = async function* () {
      yield [
        { kind: 'folder' as const, key: 'site-1/a', size: 0 as const, mtimeMs: LONG_AGO },
        { kind: 'file' as const, key: 'site-1/a/new.html', size: 3, mtimeMs: LONG_AGO },
        { kind: 'skipped' as const, key: 'site-1/a/pipe', reason: 'special' as const, detail: 'fifo' },
      ];
      yield [
        { kind: 'skipped' as const, key: 'site-1/link', reason: 'symlink' as const, detail: 'symbolic link: never followed' },
        { kind: 'unreadable' as const, key: 'site-1/locked', code: 'EACCES', detail: 'permission denied' },
      ];
    };
    const store = new FakeStore('site-1');
    store.row('a', { kind: 'dir' }).row('locked/x.html').row('gone.html');
    const side = sideOver(store);
    const plan = side.plan;
    side.plan = async (ctx) => (await plan(ctx)).map((p) => ({ ...p, storage: () => fromBlobScan(blob(), 'site-1') }));
    const stats = await sut.run(side, { mode: 'audit' });
    expect(stats).toMatchObject({ files_on_disk: 1, dirs_on_disk: 1, missing_in_db: 1, orphaned_in_db: 1 });
    expect(stats.errors.map((e) => [e.path, e.code])).toEqual([
      ['site-1/link', 'symlink'],
      ['site-1/locked', 'EACCES'],
    ]);
  });
});
