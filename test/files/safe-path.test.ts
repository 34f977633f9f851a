import fc from 'fast-check';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEMP_PREFIX } from '../../src/storage/atomic.ts';
import { isSameOrBelow, joinUserRoot, nameOf, normalizeUserPath, parentOf } from '../../src/storage/safe-path.ts';

const ROOT = '/srv/storage';
const USER = '6f1c1d2e-8a1b-4c5d-9e0f-1a2b3c4d5e6f';

describe(normalizeUserPath.name, () => {
  it('returns canonical relative paths', () => {
    expect(normalizeUserPath('a/b/c.txt')).toBe('a/b/c.txt');
    expect(normalizeUserPath('/a/b/')).toBe('a/b');
    expect(normalizeUserPath('...')).toBe('...');
    expect(normalizeUserPath('.hidden/x')).toBe('.hidden/x');
    expect(normalizeUserPath('with space/ü.txt')).toBe('with space/ü.txt');
  });

  it('normalises to NFC so composed and decomposed names address one file', () => {
    const decomposed = 'cafe\u0301.txt';
    expect(normalizeUserPath(decomposed)).toBe('caf\u00e9.txt');
    expect(normalizeUserPath(decomposed)).toBe(normalizeUserPath('caf\u00e9.txt'));
  });

  it('accepts the root only when allowed', () => {
    expect(normalizeUserPath('', { allowRoot: true })).toBe('');
    expect(normalizeUserPath('/', { allowRoot: true })).toBe('');
    expect(() => normalizeUserPath('')).toThrow(expect.objectContaining({ code: 'invalid_path' }));
    expect(() => normalizeUserPath('/')).toThrow(expect.objectContaining({ code: 'invalid_path' }));
  });

  it.each([
    ['..', 'dot-dot'],
    ['../etc/passwd', 'leading dot-dot'],
    ['a/../../b', 'inner dot-dot'],
    ['a/..', 'trailing dot-dot'],
    ['.', 'dot'],
    ['a/./b', 'inner dot'],
    ['a//b', 'empty segment'],
    ['//a', 'double leading slash'],
    ['a//', 'double trailing slash'],
    ['a\u0000b', 'NUL'],
    ['a\nb', 'newline'],
    ['a\u007fb', 'DEL'],
    ['a\u0085b', 'C1 control'],
    ['a\\b', 'backslash'],
    ['..\\..\\x', 'windows traversal'],
    [`${'x'.repeat(256)}`, 'segment over 255 bytes'],
    [`${'é'.repeat(128)}`, 'segment over 255 bytes in UTF-8 (256 bytes, 128 chars)'],
    [Array.from({ length: 20 }, () => 'y'.repeat(200)).join('/'), 'overlong path'],
    [Array.from({ length: 65 }, () => 'd').join('/'), 'too deep'],
    [`${TEMP_PREFIX}abc`, 'temp prefix'],
    [`a/${TEMP_PREFIX}x/b`, 'temp prefix inside'],
    ['a\ud800b', 'lone surrogate'],
  ])('refuses %j (%s)', (input) => {
    expect(() => normalizeUserPath(input, { allowRoot: true })).toThrow(expect.objectContaining({ code: 'invalid_path' }));
  });

  it('accepts a 255-byte segment', () => {
    expect(normalizeUserPath('x'.repeat(255))).toHaveLength(255);
    expect(normalizeUserPath('é'.repeat(127) + 'x')).toHaveLength(128);
  });

  it('is idempotent and never yields a path that escapes, for any input (property)', () => {
    const segment = fc.oneof(
      fc.constantFrom('..', '.', '', 'a', '\\', '\u0000', TEMP_PREFIX, 'e\u0301', '%2e%2e', '~'),
      fc.string({ unit: 'binary', maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const input = segments.join('/');
        let out: string;
        try {
          out = normalizeUserPath(input, { allowRoot: true });
        } catch (err) {
          expect((err as { code?: string }).code).toBe('invalid_path');
          return;
        }
        expect(normalizeUserPath(out, { allowRoot: true })).toBe(out);
        expect(out.normalize('NFC')).toBe(out);
        const abs = joinUserRoot(ROOT, USER, out);
        expect(abs === path.join(ROOT, USER) || abs.startsWith(path.join(ROOT, USER) + '/')).toBe(true);
        expect(path.relative(path.join(ROOT, USER), abs).split(path.sep)).not.toContain('..');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('path helpers', () => {
  it('parentOf / nameOf', () => {
    expect(parentOf('a/b/c')).toBe('a/b');
    expect(parentOf('a')).toBe('');
    expect(parentOf('')).toBe('');
    expect(nameOf('a/b/c.txt')).toBe('c.txt');
    expect(nameOf('a')).toBe('a');
    expect(nameOf('')).toBe('');
  });

  it('isSameOrBelow', () => {
    expect(isSameOrBelow('a/b', 'a')).toBe(true);
    expect(isSameOrBelow('a', 'a')).toBe(true);
    expect(isSameOrBelow('ab', 'a')).toBe(false);
    expect(isSameOrBelow('x', '')).toBe(true);
  });

  it('joinUserRoot stays inside <root>/<user>', () => {
    expect(joinUserRoot(ROOT, USER, 'a/b.txt')).toBe(`${ROOT}/${USER}/a/b.txt`);
    expect(joinUserRoot(ROOT, USER, '')).toBe(`${ROOT}/${USER}`);
    expect(() => joinUserRoot(ROOT, USER, '../other/x')).toThrow(expect.objectContaining({ code: 'invalid_path' }));
    expect(() => joinUserRoot(ROOT, '../x', 'a')).toThrow();
    expect(() => joinUserRoot(ROOT, '', 'a')).toThrow();
  });
});
