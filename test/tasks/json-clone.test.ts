import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cloneJson, jsonProblem, NOT_JSON } from '../../src/tasks/json.ts';

/** cloneJson replaces jsonProblem + JSON.parse(JSON.stringify(…)) on the enqueue/execute hot paths. */
describe('cloneJson', () => {
  it('gives exactly what a JSON round trip gives, as a fresh copy (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const copy = cloneJson(value);
        expect(copy).toStrictEqual(JSON.parse(JSON.stringify(value)));
        if (value !== null && typeof value === 'object') expect(copy).not.toBe(value);
      }),
    );
  });

  it('refuses what jsonProblem refuses, and nothing else (property)', () => {
    fc.assert(
      fc.property(fc.anything({ withDate: true, withMap: true, withSet: true, withBigInt: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true }), (value) => {
        expect(cloneJson(value) === NOT_JSON).toBe(jsonProblem(value) !== null);
      }),
    );
  });

  it('keeps the round trip quirks: -0 becomes 0, "__proto__" stays an own key, shared objects are copied apart', () => {
    expect(Object.is(cloneJson(-0), 0)).toBe(true);
    const tricky = JSON.parse('{"__proto__":{"x":1},"a":[1,2]}') as Record<string, unknown>;
    const copy = cloneJson(tricky) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(copy)).toBe('{"__proto__":{"x":1},"a":[1,2]}');
    const shared = { n: 1 };
    const both = cloneJson({ a: shared, b: shared }) as { a: object; b: object };
    expect(both.a).not.toBe(both.b);
    expect(cloneJson(Object.create(null))).toStrictEqual({});
  });

  it('refuses dates, holes, undefined, non-finite numbers and cycles', () => {
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    // eslint-disable-next-line no-sparse-arrays
    for (const bad of [new Date(0), [1, , 3], { u: undefined }, Number.NaN, [Number.POSITIVE_INFINITY], loop, () => 1, 1n]) {
      expect(cloneJson(bad)).toBe(NOT_JSON);
    }
  });
});
