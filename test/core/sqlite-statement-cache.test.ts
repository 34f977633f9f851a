import SqliteDatabase from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cachingPrepare } from '../../src/db/database.ts';

/** src/db/database.ts: Kysely's SQLite driver prepares every query; the wrapper it is given reuses statements. */
describe('SQLite prepared-statement cache', () => {
  it('reuses a statement per SQL text, never shares one that is busy, and keeps at most `max`', () => {
    const sqlite = new SqliteDatabase(':memory:');
    sqlite.exec('create table t (v integer); insert into t values (1), (2), (3)');
    const db = cachingPrepare(sqlite, 2);
    const a = db.prepare('select v from t order by v');
    expect(db.prepare('select v from t order by v')).toBe(a);
    expect(a.all()).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }]);

    // An open iterator makes the statement busy: the next prepare of that SQL gets a statement of its own.
    const it = a.iterate();
    it.next();
    expect(a.busy).toBe(true);
    const b = db.prepare('select v from t order by v');
    expect(b).not.toBe(a);
    it.return?.();
    expect(db.prepare('select v from t order by v')).toBe(b);

    // Least recently used out: with max 2, a third SQL text evicts the oldest.
    const c = db.prepare('select count(*) as n from t');
    db.prepare('select v from t order by v');
    db.prepare('select max(v) as m from t');
    expect(db.prepare('select v from t order by v')).toBe(b);
    expect(db.prepare('select count(*) as n from t')).not.toBe(c);
    db.close();
    expect(sqlite.open).toBe(false);
  });
});
