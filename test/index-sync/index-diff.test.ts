import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyListing,
  MtimeFormatter,
  compareCodePoints,
  nameProblem,
  staleFields,
  type DiskItem,
  type IndexRow,
} from '../../src/modules/index-sync/index-diff.ts';
import type { DiskEntry } from '../../src/storage/tree-walker.ts';

const T0 = Date.UTC(2025, 5, 1);

const file = (name: string, size = 1, mtimeMs = T0): DiskItem => ({ name, diskName: name, kind: 'file', size, mtimeMs });
const row = (name: string, over: Partial<IndexRow> = {}): IndexRow => ({
  id: Math.floor(Math.random() * 1e9),
  path: name,
  name,
  size: 1,
  contentType: 'application/octet-stream',
  isDirectory: false,
  modifiedAt: new Date(T0).toISOString(),
  updatedAt: new Date(T0).toISOString(),
  ...over,
});

describe(compareCodePoints.name, () => {
  it('orders like UTF-8 bytes (SQLite BINARY, PostgreSQL "C"), unlike JavaScript < on surrogates', () => {
    expect(compareCodePoints('\uffff', '\u{10000}')).toBeLessThan(0);
    expect('\uffff' < '\u{10000}').toBe(false);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
  });
});

describe(classifyListing.name, () => {
  const entry = (name: string, over: Partial<DiskEntry> = {}): DiskEntry => ({ name, kind: 'file', size: 1, mtimeMs: T0, ...over });

  it('keeps files and folders, reports symlinks, invalid names and errors, skips special files', () => {
    const { items, problems } = classifyListing(
      [
        entry('a.txt'),
        entry('dir', { kind: 'dir' }),
        entry('link', { kind: 'symlink' }),
        entry('fifo', { kind: 'special' }),
        entry('bad\uFFFD', { kind: 'special', invalidUtf8Hex: '626164ff' }),
        entry('back\\slash'),
        entry('ctl\u0001'),
        entry('x'.repeat(256)),
        entry('denied', { error: { code: 'EACCES', message: 'permission denied' } }),
      ],
      0,
      0,
    );
    expect(items.map((i) => i.name)).toEqual(['a.txt', 'dir']);
    expect(problems.map((p) => [p.name.slice(0, 10), p.code, p.unreadable])).toEqual([
      ['link', 'symlink', false],
      ['bad\uFFFD', 'invalid_utf8', false],
      ['back\\slash', 'invalid_name', false],
      ['ctl\u0001', 'invalid_name', false],
      ['xxxxxxxxxx', 'invalid_name', false],
      ['denied', 'EACCES', true],
    ]);
  });

  it('indexes NFD names as NFC and reports a second name that collides after normalisation', () => {
    const { items, problems } = classifyListing([entry('e\u0301'), entry('\u00e9')], 0, 0);
    expect(items).toEqual([expect.objectContaining({ name: '\u00e9', diskName: '\u00e9' })]);
    expect(problems).toEqual([expect.objectContaining({ name: 'e\u0301', code: 'name_collision' })]);
    expect(classifyListing([entry('Mu\u0308nchen')], 0, 0).items[0]).toMatchObject({ name: 'M\u00fcnchen', diskName: 'Mu\u0308nchen' });
  });

  it('refuses entries deeper than the files API can address', () => {
    expect(classifyListing([entry('leaf')], 63, 100).items).toHaveLength(1);
    expect(classifyListing([entry('leaf')], 64, 100).problems[0]!.code).toBe('too_deep');
  });

  it('agrees with the files API on names', () => {
    expect(nameProblem('.hidden')).toBeNull();
    expect(nameProblem('..')).not.toBeNull();
    expect(nameProblem('\u00e9'.repeat(127))).toBeNull();
    expect(nameProblem('\u00e9'.repeat(128))).not.toBeNull();
  });
});

describe(staleFields.name, () => {
  it('compares size, content type and mtime of files; only the kind of folders', () => {
    expect(staleFields(row('a.txt', { contentType: 'text/plain; charset=utf-8' }), file('a.txt'))).toEqual([]);
    expect(staleFields(row('a.txt'), file('a.txt', 2, T0 + 1))).toEqual(['size', 'content_type', 'mtime']);
    const dir: DiskItem = { name: 'd', diskName: 'd', kind: 'dir', size: 0, mtimeMs: T0 + 99_999 };
    expect(staleFields(row('d', { isDirectory: true, contentType: 'inode/directory', size: 4096 }), dir)).toEqual([]);
    expect(staleFields(row('d'), dir)).toEqual(['is_directory']);
  });
});

describe(MtimeFormatter.name, () => {
  it('formats like Date#toISOString, whatever the order of the times', () => {
    const sut = new MtimeFormatter();
    fc.assert(
      fc.property(fc.double({ min: -62_000_000_000_000, max: 250_000_000_000_000, noNaN: true }), fc.integer({ min: 0, max: 2500 }), (ms, step) => {
        expect(sut.format(ms)).toBe(new Date(Math.trunc(ms)).toISOString());
        expect(sut.format(ms + step)).toBe(new Date(Math.trunc(ms + step)).toISOString());
      }),
    );
  });
});
