import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isoMs,
  MtimeFormatter,
  compareCodePoints,
  StaleCheck,
  staleFields,
  staleFieldsOf,
  type DiskItem,
  type IndexRow,
} from '../../src/modules/index-sync/index-diff.ts';

const T0 = Date.UTC(2025, 5, 1);

const file = (name: string, size = 1, mtimeMs = T0): DiskItem => ({ name, kind: 'file', size, mtimeMs });
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

// Which entries are indexable (links, names, NFD, depth) is the files BlobStore's scan with the files
// side's options since issue 8: those cases live in test/storage/fs-blob-store.test.ts (scan options).

describe(staleFields.name, () => {
  it('compares size, content type and mtime of files; only the kind of folders', () => {
    expect(staleFields(row('a.txt', { contentType: 'text/plain; charset=utf-8' }), file('a.txt'))).toEqual([]);
    expect(staleFields(row('a.txt'), file('a.txt', 2, T0 + 1))).toEqual(['size', 'content_type', 'mtime']);
    const dir: DiskItem = { name: 'd', kind: 'dir', size: 0, mtimeMs: T0 + 99_999 };
    expect(staleFields(row('d', { isDirectory: true, contentType: 'inode/directory', size: 4096 }), dir)).toEqual([]);
    expect(staleFields(row('d'), dir)).toEqual(['is_directory']);
  });
});

describe(StaleCheck.name, () => {
  it('answers as staleFieldsOf does, however rows spell their mtime and whatever the extensions', () => {
    const sut = new StaleCheck();
    const names = fc.constantFrom('a.txt', 'b.TXT', 'dir/c.jpg', '.bashrc', 'noext', 'x.', 'd.tar.gz', 'e.ts', 'f.PDF', 'dir.v2/noext', 'g.unknownext');
    const types = fc.constantFrom('text/plain; charset=utf-8', 'image/jpeg', 'application/octet-stream', 'application/pdf', 'inode/directory');
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), names, types, fc.integer({ min: 0, max: 2_000_000_000_000 }), fc.integer({ min: 0, max: 3 }), fc.boolean(),
        (rowIsDir, isDir, rowSize, size, name, rowType, ms, drift, offsetSpelling) => {
          const rowMs = ms + drift;
          // The same instant, spelled as toISOString does or with a +00:00 offset.
          const rowModifiedAt = offsetSpelling ? new Date(rowMs).toISOString().replace('Z', '+00:00') : new Date(rowMs).toISOString();
          const kind = isDir ? 'dir' : 'file';
          expect(sut.fields(rowIsDir, rowSize, rowType, rowModifiedAt, kind, size, ms + 0.5, name)).toEqual(staleFieldsOf(rowIsDir, rowSize, rowType, rowModifiedAt, kind, size, ms + 0.5, name));
        },
      ),
    );
  });
});

describe(isoMs.name, () => {
  it('reads toISOString spellings as Date.parse does, and leaves every other spelling to it', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_000_000_000_000, max: 250_000_000_000_000 }), (ms) => {
        const iso = new Date(ms).toISOString();
        expect(isoMs(iso)).toBe(Date.parse(iso));
      }),
    );
    for (const s of ['2025-02-30T00:00:00.000Z', '2025-13-01T00:00:00.000Z', '2025-06-01T24:00:00.000Z', '2025-06-01T12:00:00.000+00:00', '2025-06-01T12:00:00Z', 'x025-06-01T12:00:00.000Z', '']) {
      expect(isoMs(s)).toEqual(Date.parse(s));
    }
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
