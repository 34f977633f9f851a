import ret, { types, type Token } from 'ret';

/**
 * User- and model-supplied regular expressions run against whole device configurations (up to 16 MiB), so a
 * careless pattern must not hang a worker (issue 9/10: "patterns run with a time budget (no catastrophic
 * backtracking on a 10 MB config)"). Three limits together bound the cost without a native regex engine:
 * 1. compile time: the source is at most MAX_PATTERN_LENGTH chars and has star height ≤ 1: no unbounded
 *    quantifier inside another (`(a+)+`, `(\s*x)*`: the exponential class). Unlike safe-regex2 we do not
 *    count `?` or small bounded repeats, which device patterns need (`(?: privilege \d+)?`). Parsed with
 *    `ret` (the parser safe-regex2 itself uses). Overlapping alternatives under one star (`(a|a)*`) are not
 *    caught: limits 2 and 3 bound those;
 * 2. per line: patterns only ever see one line, and a line longer than `maxLineLength` is matched in
 *    windows of that size, so a polynomial pattern costs at most O(window²) per window;
 * 3. a time budget: the caller's deadline is checked every few hundred lines and a run past it throws
 *    PatternBudgetExceeded instead of going on.
 */
export const MAX_PATTERN_LENGTH = 1000;
export const DEFAULT_MAX_LINE_LENGTH = 8192;

export class PatternBudgetExceeded extends Error {
  constructor(readonly elapsedMs: number) {
    super(`pattern matching exceeded its time budget (${elapsedMs} ms)`);
    this.name = 'PatternBudgetExceeded';
  }
}

/** Why `source` cannot be used as a safe pattern, or null when it can. */
export function patternProblem(source: string): string | null {
  if (source.length === 0) return 'empty pattern';
  if (source.length > MAX_PATTERN_LENGTH) return `pattern longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(source);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  if (starHeight(ret(source)) > 1) return 'pattern may backtrack catastrophically (nested quantifiers); simplify it';
  return null;
}

/** Compiles a checked pattern; throws with patternProblem's reason otherwise. `global` for replacements. */
export function compileSafePattern(source: string, opts: { global?: boolean } = {}): RegExp {
  const problem = patternProblem(source);
  if (problem) throw new Error(`${problem}: /${source}/`);
  return new RegExp(source, opts.global ? 'g' : '');
}

/** A deadline for one cleaning run; `now` is injected so no test depends on wall time. */
export interface PatternBudget {
  readonly now: () => number;
  readonly deadline: number;
  readonly maxLineLength?: number;
}

/** Checks the budget every CHECK_EVERY lines (a clock read per line would dominate on small lines). */
const CHECK_EVERY = 256;

export function budgetChecker(budget: PatternBudget | undefined): (lineIndex: number) => void {
  if (!budget) return () => {};
  const start = budget.now();
  return (i) => {
    if (i % CHECK_EVERY === 0) {
      const t = budget.now();
      if (t > budget.deadline) throw new PatternBudgetExceeded(t - start);
    }
  };
}

/** Tests `re` against one line, window by window for a line longer than the limit. */
export function lineMatches(re: RegExp, line: string, maxLineLength = DEFAULT_MAX_LINE_LENGTH): boolean {
  if (line.length <= maxLineLength) {
    re.lastIndex = 0;
    return re.test(line);
  }
  for (let i = 0; i < line.length; i += maxLineLength) {
    re.lastIndex = 0;
    if (re.test(line.slice(i, i + maxLineLength))) return true;
  }
  return false;
}

/** Replaces in one line, window by window for a line longer than the limit. `re` must be global. */
export function lineReplace(re: RegExp, line: string, replacement: string, maxLineLength = DEFAULT_MAX_LINE_LENGTH): string {
  if (line.length <= maxLineLength) return line.replace(re, replacement);
  let out = '';
  for (let i = 0; i < line.length; i += maxLineLength) out += line.slice(i, i + maxLineLength).replace(re, replacement);
  return out;
}

/** A repeat that can run long enough to matter when nested: unbounded or more than 64 times. */
const HEAVY_REPEAT = 64;

function starHeight(t: Token | ReturnType<typeof ret>): number {
  switch (t.type) {
    case types.ROOT:
    case types.GROUP: {
      const seqs = t.options ?? (t.stack ? [t.stack] : []);
      let h = 0;
      for (const seq of seqs) for (const x of seq) h = Math.max(h, starHeight(x));
      return h;
    }
    case types.REPETITION: {
      const inner = starHeight(t.value);
      const heavy = t.max === Infinity || t.max === null || t.max > HEAVY_REPEAT;
      return inner + (heavy ? 1 : 0);
    }
    default:
      return 0;
  }
}
