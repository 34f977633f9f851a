import { describe, expect, it } from 'vitest';
import { contentTypeFor } from '../../src/modules/files/content-type.ts';

describe(contentTypeFor.name, () => {
  it.each([
    ['photo.JPG', 'image/jpeg'],
    ['a/b/report.pdf', 'application/pdf'],
    ['notes.txt', 'text/plain; charset=utf-8'],
    ['data.json', 'application/json'],
    ['archive.tar.gz', 'application/gzip'],
    ['movie.mp4', 'video/mp4'],
    ['.bashrc', 'application/octet-stream'],
    ['Makefile', 'application/octet-stream'],
    ['weird.', 'application/octet-stream'],
    ['file.unknownext', 'application/octet-stream'],
    ['dir.png/inner', 'application/octet-stream'],
    // From mime-types now (issue 12): beyond the ~100 extensions the hand-written table knew.
    ['drawing.dwg', 'image/vnd.dwg'],
    ['slides.KEY', 'application/vnd.apple.keynote'],
    ['page.HTML', 'text/html; charset=utf-8'],
    ['main.ts', 'text/plain; charset=utf-8'],
    // A name without a dot is no extension, even when the whole name is one.
    ['png', 'application/octet-stream'],
  ])('%s → %s', (name, type) => {
    expect(contentTypeFor(name)).toBe(type);
  });
});
