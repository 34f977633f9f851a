import { RE2JS } from 're2js';

/**
 * Line patterns of network devices (issue 9): `strip_patterns` remove matching lines before a
 * configuration is stored; `ignore_patterns` keep them but leave them out when deciding "changed".
 * Patterns run on RE2 (re2js: linear-time, no backtracking, so `(a+)+$` cannot hang a worker), each line
 * capped at MAX_LINE_CHARS for matching, and the whole pass under a time budget. Pure: no I/O.
 */
export const MAX_PATTERNS = 50;
export const MAX_PATTERN_LENGTH = 500;
/** Longer lines are matched on their first MAX_LINE_CHARS characters (config lines are short). */
export const MAX_LINE_CHARS = 4096;
/** Default time budget of one pass over a configuration. */
export const DEFAULT_BUDGET_MS = 2000;

export class PatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatternError';
  }
}

/** Why a list of patterns is unusable, or null when every pattern compiles. */
export function patternsProblem(patterns: unknown, field: string): string | null {
  if (!Array.isArray(patterns)) return `${field} must be an array of regular expressions`;
  if (patterns.length > MAX_PATTERNS) return `${field}: at most ${MAX_PATTERNS} patterns`;
  for (const [i, p] of patterns.entries()) {
    if (typeof p !== 'string' || p.length === 0) return `${field}[${i}] must be a non-empty string`;
    if (p.length > MAX_PATTERN_LENGTH) return `${field}[${i}] is longer than ${MAX_PATTERN_LENGTH} characters`;
    try {
      RE2JS.compile(p);
    } catch (err) {
      return `${field}[${i}] is not a valid regular expression (RE2 syntax): ${(err as Error).message}`;
    }
  }
  return null;
}

export interface LineFilter {
  /** The text without the lines any pattern matches. @throws PatternError past the time budget. */
  apply(text: string): string;
}

export function lineFilter(patterns: readonly string[], budgetMs = DEFAULT_BUDGET_MS): LineFilter {
  const compiled = patterns.map((p) => RE2JS.compile(p));
  return {
    apply(text: string): string {
      if (compiled.length === 0) return text;
      const deadline = performance.now() + budgetMs;
      const lines = text.split('\n');
      const kept: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        const probe = line.length > MAX_LINE_CHARS ? line.slice(0, MAX_LINE_CHARS) : line;
        if (!compiled.some((re) => re.matcher(probe).find())) kept.push(line);
        if ((i & 255) === 255 && performance.now() > deadline) {
          throw new PatternError(`patterns took longer than ${budgetMs} ms on this configuration (at line ${i + 1})`);
        }
      }
      return kept.join('\n');
    },
  };
}
