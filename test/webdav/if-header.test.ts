import { describe, expect, it } from 'vitest';
import { parseIfHeader, submittedTokens } from '../../src/modules/webdav/if-header.ts';

describe('parseIfHeader', () => {
  it('parses no-tag lists with tokens, Not and entity tags', () => {
    const lists = parseIfHeader('(<urn:uuid:a> ["etag-1"]) (Not <DAV:no-lock>)');
    expect(lists).toEqual([
      { resource: null, conditions: [{ not: false, token: 'urn:uuid:a', etag: null }, { not: false, token: null, etag: '"etag-1"' }] },
      { resource: null, conditions: [{ not: true, token: 'DAV:no-lock', etag: null }] },
    ]);
    expect([...submittedTokens(lists!)]).toEqual(['urn:uuid:a']);
  });

  it('parses tagged lists, each applying to its resource', () => {
    const lists = parseIfHeader('<http://h/dav/a> (<urn:uuid:x>) <http://h/dav/b> (Not ["e"]) (<urn:uuid:y>)');
    expect(lists?.map((l) => [l.resource, l.conditions.length])).toEqual([
      ['http://h/dav/a', 1],
      ['http://h/dav/b', 1],
      ['http://h/dav/b', 1],
    ]);
  });

  it('refuses malformed headers (the route answers 400)', () => {
    for (const bad of ['', '()', '(<urn:uuid:a>', 'urn:uuid:a', '(Not)', '<http://h/a>', '(<a>) <http://h/b> (<c>)', '([etag)']) {
      expect(parseIfHeader(bad), bad).toBeNull();
    }
  });
});
