import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonSyntaxCheck, MAX_JSON_DEPTH } from '../../src/lib/json-check.ts';
import { ReferenceJsonSyntaxCheck } from './fixtures/json-check-reference.ts';

type Checker = { push(chunk: Uint8Array): boolean; end(): boolean; problem(): string | null };

/** Feeds `bytes` in chunks of the given sizes (the rest in one), each a view at `offset` into a larger buffer. */
function run(sut: Checker, bytes: Uint8Array, chunkSizes: number[] = [], offset = 0): boolean {
  let at = 0;
  const feed = (piece: Uint8Array) => {
    // An unaligned view into a bigger buffer, as Node's pooled and sliced Buffers are.
    const host = Buffer.alloc(piece.length + offset + 5, 0x22);
    piece.forEach((b, k) => (host[offset + k] = b));
    return sut.push(host.subarray(offset, offset + piece.length));
  };
  for (const size of chunkSizes) {
    if (at >= bytes.length) break;
    if (!feed(bytes.subarray(at, at + size))) return false;
    at += size;
  }
  if (at < bytes.length && !feed(bytes.subarray(at))) return false;
  return sut.end();
}

function check(text: string | Uint8Array, chunkSizes: number[] = [], offset = 0): boolean {
  return run(new JsonSyntaxCheck(), typeof text === 'string' ? Buffer.from(text, 'utf8') : text, chunkSizes, offset);
}

const parses = (text: string | Uint8Array) => {
  try {
    JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
    return true;
  } catch {
    return false;
  }
};

/** Verdict and reason of the new checker and of the one it replaced (switch per byte, as of 241c644). */
function both(bytes: Uint8Array, sizes: number[] = [], offset = 0) {
  const sut = new JsonSyntaxCheck();
  const ref = new ReferenceJsonSyntaxCheck();
  return { ok: run(sut, bytes, sizes, offset), problem: sut.problem(), refOk: run(ref, bytes, sizes, offset), refProblem: ref.problem() };
}

const chunks = fc.array(fc.integer({ min: 1, max: 70 }), { maxLength: 30 });
const offsets = fc.integer({ min: 0, max: 7 });
/** Bytes JSON is made of, and a few it must refuse: control bytes, a BOM, UTF-8 and invalid UTF-8. */
const jsonishByte = fc.constantFrom(...Buffer.from('{}[],:"\\ \n\t\r0123456789-+.eEtrufalsn/bu aZ'), 0x00, 0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff);

describe(JsonSyntaxCheck.name, () => {
  it('agrees with JSON.parse on examples', () => {
    const cases = ['{}', '[]', '0', '-0.5e+3', '"a\\u00e9\\n"', ' {"a":[1,2,{"b":null}],"c":true} ', '01', '1.', '-', '{"a":1,}', '[1,]', '{"a" 1}', 'tru', 'nul', '"\u0001"', '"\\x"', '', '  ', '{}{}', '[1 2]', '{"a":1}x', '1e', '1e+', '[[[]]]', '"unterminated', '{"k":"v"', 'null', 'falsey'];
    for (const c of cases) expect(check(c), c).toBe(parses(c));
    const more = ['[1}', '{"a":1]', ']', '}', ',', '[,1]', '{,}', '{"a":}', '{"a"}', '{1:2}', '"\\u12"', '"\\u12g4"', '"\\uABCD"', '-01', '-a', '1.e5', '1e5.5', '0x10', '+1', '.5', 'truee', 'nulll', '[true false]', '"\t"', '"a\nb"', '\ufeff{}', '1 ', ' 1', '[-]', '["a",]', '{"a":1 "b":2}', '[[]', '[]]', '{"a":{"b":{}}}', '"\u00e9\u4e2d\u{1f600}"', '"\\/\\b\\f\\r\\t\\"\\\\"'];
    for (const c of more) expect(check(c), c).toBe(parses(c));
  });

  it('agrees with JSON.parse on generated JSON and on mutations of it, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.json(), chunks, offsets, (text, sizes, offset) => check(text, sizes, offset) === true),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.json(), fc.nat(), fc.constantFrom('', '{', '}', '[', ']', ',', ':', '"', '1', '-', '.', 'e', ' ', 'x', '\\', '\u0001', '\n'), chunks, offsets, (text, at, insert, sizes, offset) => {
        const i = at % (text.length + 1);
        const mutated = text.slice(0, i) + insert + text.slice(i + (insert === '' ? 1 : 0));
        return check(mutated, sizes, offset) === parses(mutated);
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with JSON.parse, and with the checker it replaced (verdict and reason), on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }).chain((raw) => fc.tuple(fc.constant(raw), fc.array(jsonishByte, { maxLength: 60 }))), chunks, offsets, ([raw, jsonish], sizes, offset) => {
        for (const bytes of [raw, Uint8Array.from(jsonish)]) {
          const r = both(bytes, sizes, offset);
          expect(r.ok).toBe(parses(bytes));
          expect(r).toEqual({ ok: r.refOk, problem: r.refProblem, refOk: r.refOk, refProblem: r.refProblem });
        }
      }),
      { numRuns: 3000 },
    );
    // Mutations of real JSON, where the old and new checkers' paths differ most (strings, numbers, nesting).
    fc.assert(
      fc.property(fc.json(), fc.array(fc.tuple(fc.nat(), jsonishByte), { minLength: 1, maxLength: 3 }), chunks, offsets, (text, edits, sizes, offset) => {
        const bytes = Buffer.from(text);
        for (const [at, byte] of edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
        const r = both(bytes, sizes, offset);
        expect(r.ok).toBe(parses(bytes));
        expect(r.problem).toBe(r.refProblem);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds a quote, backslash or control byte at every position of a long string, at every alignment', () => {
    // The string scan reads 4 bytes at a time: every byte position within a word, and word boundaries at
    // chunk edges, must still be looked at.
    for (let offset = 0; offset < 4; offset++) {
      for (let len = 60; len < 72; len++) {
        for (let at = 0; at < len; at++) {
          for (const [insert, valid] of [['"', false], ['\\', false], ['\u0001', false], ['\n', false], ['\u001f', false], ['\\n', true], ['\\u00e9', true], ['\u00e9', true], ['\u007f', true]] as const) {
            const body = 'a'.repeat(at) + insert + 'q'.repeat(len - at);
            const text = `["${body}"]`;
            expect(parses(text), text).toBe(valid);
            expect(check(text, [], offset), `${JSON.stringify(text)} at offset ${offset}`).toBe(valid);
            expect(check(text, [len >> 1, 3], offset)).toBe(valid);
          }
        }
      }
    }
  });

  it(`allows ${MAX_JSON_DEPTH} levels of nesting and refuses more`, () => {
    const nested = (d: number) => '['.repeat(d) + ']'.repeat(d);
    expect(check(nested(MAX_JSON_DEPTH))).toBe(true);
    const sut = new JsonSyntaxCheck();
    expect(sut.push(Buffer.from(nested(MAX_JSON_DEPTH + 1)))).toBe(false);
    expect(sut.problem()).toMatch(new RegExp(`byte ${MAX_JSON_DEPTH}: nesting deeper than ${MAX_JSON_DEPTH}`));
    expect(check(`${'{"a":'.repeat(MAX_JSON_DEPTH)}1${'}'.repeat(MAX_JSON_DEPTH)}`)).toBe(true);
    expect(check(`${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${'}'.repeat(MAX_JSON_DEPTH + 1)}`)).toBe(false);
  });

  it('checks a large document the same in any chunking', () => {
    const doc = Buffer.from(JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `item ${i} \u00e9\\"`, tags: ['a', 'b'], ok: i % 2 === 0, x: -i * 1.5e-3, n: null })), null, 2));
    for (const size of [1, 3, 64, 1000, 65536]) expect(run(new JsonSyntaxCheck(), doc, Array(Math.ceil(doc.length / size)).fill(size))).toBe(true);
    const broken = Buffer.from(doc);
    broken[broken.length - 5] = 0x01;
    expect(check(broken)).toBe(false);
    expect(parses(broken)).toBe(false);
  });

  it('says where and why the text stops being JSON', () => {
    const sut = new JsonSyntaxCheck();
    expect(sut.push(Buffer.from('{"a": 1,,}'))).toBe(false);
    expect(sut.problem()).toMatch(/byte 8/);
    const split = new JsonSyntaxCheck();
    expect(split.push(Buffer.from('["abc'))).toBe(true);
    expect(split.push(Buffer.from('d\u0002"]'))).toBe(false);
    expect(split.problem()).toBe('not valid JSON at byte 6: a control character inside a string');
    const empty = new JsonSyntaxCheck();
    expect(empty.end()).toBe(false);
    expect(empty.problem()).toMatch(/empty/);
    const early = new JsonSyntaxCheck();
    expect(early.push(Buffer.from('{"a":[1'))).toBe(true);
    expect(early.end()).toBe(false);
    expect(early.problem()).toMatch(/ends too early/);
  });
});
