import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clockLessOrEqual,
  clockProblem,
  compareClocks,
  incrementClock,
  mergeClocks,
  normalizeClock,
  type VectorClock,
} from '../../src/modules/records/vector-clock.ts';

// Few keys so that generated clocks often share entries and every order (incl. equal) shows up.
const clockArb: fc.Arbitrary<VectorClock> = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.nat({ max: 4 }), { maxKeys: 4 });
const eq = (x: VectorClock, y: VectorClock) => compareClocks(x, y) === 'equal';

describe('vector clocks', () => {
  it('compares examples, missing entries counting as 0', () => {
    expect(compareClocks({ a: 2 }, { a: 1 })).toBe('after');
    expect(compareClocks({ a: 1 }, { a: 1, b: 1 })).toBe('before');
    expect(compareClocks({ a: 1, b: 0 }, { a: 1 })).toBe('equal');
    expect(compareClocks({}, {})).toBe('equal');
    expect(compareClocks({ a: 2 }, { b: 1 })).toBe('concurrent');
    expect(compareClocks({ a: 2, b: 1 }, { a: 1, b: 2 })).toBe('concurrent');
    expect(mergeClocks({ a: 2, b: 1 }, { a: 1, c: 3 })).toEqual({ a: 2, b: 1, c: 3 });
    expect(incrementClock({ b: 1 }, 'a')).toEqual({ a: 1, b: 1 });
    expect(normalizeClock({ z: 0, b: 2, a: 1 })).toEqual({ a: 1, b: 2 });
    expect(Object.keys(normalizeClock({ z: 1, b: 2, a: 1 }))).toEqual(['a', 'b', 'z']);
  });

  it('validates untrusted clocks: device-id or server keys, whole counters', () => {
    const dev = 'dev_0123456789abcdef';
    expect(clockProblem({ [dev]: 1, server: 2 })).toBeNull();
    expect(clockProblem([])).toMatch(/object/);
    expect(clockProblem({ [dev]: -1 })).toMatch(/whole number/);
    expect(clockProblem({ [dev]: 1.5 })).toMatch(/whole number/);
    expect(clockProblem({ [dev]: '1' })).toMatch(/whole number/);
    // Only device ids and `server` (issue 12): no prototype names, no free-form keys.
    for (const key of ['', 'a', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'dev_0123', 'DEV_0123456789ABCDEF', 'Server']) {
      expect(clockProblem(JSON.parse(`{${JSON.stringify(key)}: 1}`)), key).toMatch(/keys must be device ids/);
    }
  });

  it('never reads an inherited property as a counter', () => {
    expect(compareClocks({ dev_a: 5 }, { constructor: 5, dev_a: 4 })).toBe('concurrent');
    expect(compareClocks({ constructor: 5, dev_a: 4 }, { dev_a: 5 })).toBe('concurrent');
    expect(compareClocks({ toString: 1 }, {})).toBe('after');
    const viaJson = JSON.parse('{"__proto__": 3, "dev_a": 1}') as VectorClock;
    expect(compareClocks(viaJson, { dev_a: 1 })).toBe('after');
    const merged = mergeClocks(viaJson, { constructor: 2 });
    expect(Object.getPrototypeOf(merged)).toBeNull();
    expect(Object.entries(merged)).toEqual([['__proto__', 3], ['constructor', 2], ['dev_a', 1]]);
    expect(Object.getPrototypeOf(incrementClock({}, 'valueOf'))).toBeNull();
    expect(incrementClock({}, 'valueOf').valueOf).toBe(1);
  });

  it('agrees with a Map-based reference for keys that name Object.prototype members (property)', () => {
    const keys = ['dev_a', 'constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty', 'isPrototypeOf'];
    // Built through JSON.parse, as clocks arrive from clients and from the database.
    const arb = fc.dictionary(fc.constantFrom(...keys), fc.nat({ max: 3 }), { maxKeys: keys.length }).map((d) => JSON.parse(JSON.stringify(d)) as VectorClock);
    const asMap = (c: VectorClock) => new Map(Object.keys(c).map((k) => [k, Object.getOwnPropertyDescriptor(c, k)!.value as number]));
    const reference = (a: VectorClock, b: VectorClock) => {
      const x = asMap(a);
      const y = asMap(b);
      let aBig = false;
      let bBig = false;
      for (const k of new Set([...x.keys(), ...y.keys()])) {
        if ((x.get(k) ?? 0) > (y.get(k) ?? 0)) aBig = true;
        if ((y.get(k) ?? 0) > (x.get(k) ?? 0)) bBig = true;
      }
      return aBig && bBig ? 'concurrent' : aBig ? 'after' : bBig ? 'before' : 'equal';
    };
    fc.assert(
      fc.property(arb, arb, (a, b) => {
        expect(compareClocks(a, b)).toBe(reference(a, b));
        const m = asMap(mergeClocks(a, b));
        for (const k of keys) expect(m.get(k) ?? 0).toBe(Math.max(asMap(a).get(k) ?? 0, asMap(b).get(k) ?? 0));
      }),
      { numRuns: 2000 },
    );
  });

  it('compare is a partial order: reflexive, antisymmetric, transitive', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        expect(clockLessOrEqual(a, a)).toBe(true);
        if (clockLessOrEqual(a, b) && clockLessOrEqual(b, a)) expect(eq(a, b)).toBe(true);
        if (clockLessOrEqual(a, b) && clockLessOrEqual(b, c)) expect(clockLessOrEqual(a, c)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('compare is antisymmetric in its answer (after ⇔ reversed before, concurrent both ways)', () => {
    const flip = { after: 'before', before: 'after', equal: 'equal', concurrent: 'concurrent' } as const;
    fc.assert(fc.property(clockArb, clockArb, (a, b) => {
      expect(compareClocks(b, a)).toBe(flip[compareClocks(a, b)]);
    }), { numRuns: 1000 });
  });

  it('merge is commutative, associative and idempotent, and is the least upper bound', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        expect(mergeClocks(a, b)).toEqual(mergeClocks(b, a));
        expect(mergeClocks(mergeClocks(a, b), c)).toEqual(mergeClocks(a, mergeClocks(b, c)));
        expect(mergeClocks(a, a)).toEqual(normalizeClock(a));
        const m = mergeClocks(a, b);
        expect(clockLessOrEqual(a, m) && clockLessOrEqual(b, m)).toBe(true);
        // Least: any upper bound of a and b is also above the merge.
        if (clockLessOrEqual(a, c) && clockLessOrEqual(b, c)) expect(clockLessOrEqual(m, c)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('increment makes a clock strictly after the original and after nothing concurrent with it', () => {
    fc.assert(
      fc.property(clockArb, clockArb, fc.constantFrom('a', 'b', 'e'), (a, b, key) => {
        const next = incrementClock(a, key);
        expect(compareClocks(next, a)).toBe('after');
        // Resolution rule: increment(merge(a, b)) dominates both sides.
        const resolved = incrementClock(mergeClocks(a, b), key);
        expect(compareClocks(resolved, a)).toBe('after');
        expect(compareClocks(resolved, b)).toBe('after');
      }),
      { numRuns: 1000 },
    );
  });
});
