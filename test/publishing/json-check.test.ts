import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonSyntaxCheck } from '../../src/lib/json-check.ts';

function check(text: string, chunkSizes: number[] = []): boolean {
  const bytes = Buffer.from(text, 'utf8');
  const sut = new JsonSyntaxCheck();
  let at = 0;
  for (const size of chunkSizes) {
    if (at >= bytes.length) break;
    if (!sut.push(bytes.subarray(at, at + size))) return false;
    at += size;
  }
  if (at < bytes.length && !sut.push(bytes.subarray(at))) return false;
  return sut.end();
}

const parses = (text: string) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe(JsonSyntaxCheck.name, () => {
  it('agrees with JSON.parse on examples', () => {
    const cases = ['{}', '[]', '0', '-0.5e+3', '"a\\u00e9\\n"', ' {"a":[1,2,{"b":null}],"c":true} ', '01', '1.', '-', '{"a":1,}', '[1,]', '{"a" 1}', 'tru', 'nul', '"\u0001"', '"\\x"', '', '  ', '{}{}', '[1 2]', '{"a":1}x', '1e', '1e+', '[[[]]]', '"unterminated', '{"k":"v"', 'null', 'falsey'];
    for (const c of cases) expect(check(c), c).toBe(parses(c));
  });

  it('agrees with JSON.parse on generated JSON and on mutations of it, whatever the chunking', () => {
    const chunks = fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 30 });
    fc.assert(
      fc.property(fc.json(), chunks, (text, sizes) => check(text, sizes) === true),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.json(), fc.nat(), fc.constantFrom('', '{', '}', '[', ']', ',', ':', '"', '1', '-', '.', 'e', ' ', 'x', '\\'), chunks, (text, at, insert, sizes) => {
        const i = at % (text.length + 1);
        const mutated = text.slice(0, i) + insert + text.slice(i + (insert === '' ? 1 : 0));
        return check(mutated, sizes) === parses(mutated);
      }),
      { numRuns: 1000 },
    );
  });

  it('says where and why the text stops being JSON', () => {
    const sut = new JsonSyntaxCheck();
    expect(sut.push(Buffer.from('{"a": 1,,}'))).toBe(false);
    expect(sut.problem()).toMatch(/byte 8/);
  });
});
