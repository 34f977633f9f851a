import {
  budgetChecker,
  compileSafePattern,
  DEFAULT_MAX_LINE_LENGTH,
  lineMatches,
  lineReplace,
  type PatternBudget,
} from '../../lib/safe-pattern.ts';
import type { DeviceModel, ModelCommand } from './collect-model.schema.ts';

/**
 * Pure output cleaning (issue 10): what a device printed for one command becomes lines of configuration.
 * Every regex runs one line at a time through lib/safe-pattern, under an optional time budget, so a
 * 10 MB configuration costs linear time. No I/O here; the SSH session only gathers raw text.
 */

// CSI (ESC [ … final), OSC (ESC ] … BEL|ST) and two-byte escapes; each alternative is linear.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

export function stripAnsi(text: string): string {
  // Most device output has no escape at all: one indexOf instead of a regex pass and a copy.
  return text.indexOf('\x1b') === -1 ? text : text.replace(ANSI, '');
}

const CR = 13;
const SPACE = 32;
const TAB = 9;

/**
 * One terminal line as it looks on screen: a carriage return restarts it, a backspace erases a character.
 * Runs on every line of every collection (and on each partial line the shell reader looks at), so the
 * common cases — a trailing CR of CRLF, trailing blanks, neither — are character tests, not regexes.
 */
export function renderLine(line: string): string {
  let end = line.length;
  while (end > 0 && line.charCodeAt(end - 1) === CR) end--;
  if (end < line.length) line = line.slice(0, end);
  if (line.indexOf('\r') !== -1) {
    // "--More--\r        \r" and similar: later text overwrites earlier text from column 0.
    let screen = '';
    for (const part of line.split('\r')) screen = part + screen.slice(part.length);
    line = screen;
  }
  if (line.indexOf('\b') !== -1) {
    const out: string[] = [];
    for (const ch of line) {
      if (ch === '\b') out.pop();
      else out.push(ch);
    }
    line = out.join('');
  }
  end = line.length;
  while (end > 0) {
    const c = line.charCodeAt(end - 1);
    if (c !== SPACE && c !== TAB) break;
    end--;
  }
  return end === line.length ? line : line.slice(0, end);
}

/** Raw device text → rendered lines (ANSI stripped, CR/backspace applied, trailing blanks dropped). */
export function toLines(raw: string): string[] {
  const lines = stripAnsi(raw).split('\n');
  for (let i = 0; i < lines.length; i++) lines[i] = renderLine(lines[i]!);
  let n = lines.length;
  while (n > 0 && lines[n - 1] === '') n--;
  lines.length = n;
  return lines;
}

/** The patterns of a model, compiled once per model (not per line). */
export interface CompiledModel {
  readonly model: DeviceModel;
  readonly prompt: RegExp | null;
  readonly pager: RegExp | null;
  readonly commands: readonly CompiledCommand[];
  readonly secrets: readonly { re: RegExp; with: string }[];
  readonly ignore: readonly RegExp[];
}

export interface CompiledCommand {
  readonly command: ModelCommand;
  readonly reject: readonly RegExp[];
  readonly keep: readonly RegExp[];
  readonly replace: readonly { re: RegExp; with: string }[];
}

export function compileModel(model: DeviceModel): CompiledModel {
  return {
    model,
    prompt: model.prompt ? compileSafePattern(model.prompt) : null,
    pager: model.pager ? compileSafePattern(model.pager.pattern) : null,
    commands: model.commands.map(compileCommand),
    secrets: model.secrets.map((s) => ({ re: compileSafePattern(s.pattern, { global: true }), with: s.with })),
    ignore: model.ignore_patterns.map((p) => compileSafePattern(p)),
  };
}

export function compileCommand(command: ModelCommand): CompiledCommand {
  return {
    command,
    reject: command.reject_lines.map((p) => compileSafePattern(p)),
    keep: command.keep_lines.map((p) => compileSafePattern(p)),
    replace: command.replace.map((r) => ({ re: compileSafePattern(r.pattern, { global: true }), with: r.with })),
  };
}

/**
 * Cuts what the shell added around a command's output: the echoed command (the first line, when it ends
 * with the command) and the prompt (the last line, when it matches the prompt).
 */
export function cutEchoAndPrompt(lines: readonly string[], cmd: string, prompt: RegExp | null): string[] {
  let start = 0;
  let end = lines.length;
  if (end > 0 && lines[0]!.trimEnd().endsWith(cmd.trim())) start = 1;
  if (end > start && prompt && lineMatches(prompt, lines[end - 1]!)) end -= 1;
  return lines.slice(start, end);
}

/** cut_head / cut_tail, reject_lines, keep_lines, replace — in that order — for one command's lines. */
export function filterCommandLines(lines: readonly string[], c: CompiledCommand, budget?: PatternBudget): string[] {
  const check = budgetChecker(budget);
  const max = budget?.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const { cut_head, cut_tail } = c.command;
  const cut = lines.slice(cut_head, Math.max(cut_head, lines.length - cut_tail));
  // Most commands filter nothing: no pattern, so nothing to time either.
  if (c.reject.length === 0 && c.keep.length === 0 && c.replace.length === 0) return cut;
  const out: string[] = [];
  for (let i = 0; i < cut.length; i++) {
    check(i);
    let line = cut[i]!;
    if (c.reject.some((re) => lineMatches(re, line, max))) continue;
    if (c.keep.length > 0 && !c.keep.some((re) => lineMatches(re, line, max))) continue;
    for (const r of c.replace) line = replaceIfMatches(r.re, line, r.with, max);
    out.push(line);
  }
  return out;
}

/**
 * lineReplace, after a test of the same pattern: most lines match no replacement, and a global replace
 * costs several times a test even when nothing matches (V8's replace path). The same windows either way,
 * so the result is lineReplace's: a line where no window matches comes back unchanged.
 */
function replaceIfMatches(re: RegExp, line: string, replacement: string, max: number): string {
  return lineMatches(re, line, max) ? lineReplace(re, line, replacement, max) : line;
}

/** Secrets scrubbing: each substitution on each line (issue 10: applied when the device's scrub_secrets is on). */
export function scrubSecrets(lines: readonly string[], secrets: CompiledModel['secrets'], budget?: PatternBudget): string[] {
  if (secrets.length === 0) return [...lines];
  const check = budgetChecker(budget);
  const max = budget?.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const out = new Array<string>(lines.length);
  for (let i = 0; i < lines.length; i++) {
    check(i);
    let line = lines[i]!;
    for (const s of secrets) line = replaceIfMatches(s.re, line, s.with, max);
    out[i] = line;
  }
  return out;
}

export function asComment(lines: readonly string[], prefix: string): string[] {
  const bare = prefix.trimEnd();
  return lines.map((l) => (l === '' ? bare : prefix + l));
}

/** One command's raw shell output → its cleaned lines (echo and prompt cut, filters, comment prefix). */
export function cleanCommandOutput(raw: string, compiled: CompiledModel, c: CompiledCommand, budget?: PatternBudget): string[] {
  const lines = cutEchoAndPrompt(toLines(raw), c.command.cmd, compiled.prompt);
  const filtered = filterCommandLines(lines, c, budget);
  return c.command.as === 'comment' ? asComment(filtered, compiled.model.comment) : filtered;
}

/**
 * The stored configuration: every command's cleaned lines in model order, secrets scrubbed when asked,
 * ending in one newline.
 */
export function assembleConfiguration(
  outputs: readonly { raw: string; command: CompiledCommand }[],
  compiled: CompiledModel,
  opts: { scrubSecrets: boolean; budget?: PatternBudget },
): string {
  let lines: string[] = [];
  for (const o of outputs) lines = lines.concat(cleanCommandOutput(o.raw, compiled, o.command, opts.budget));
  if (opts.scrubSecrets) lines = scrubSecrets(lines, compiled.secrets, opts.budget);
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

function* significantLines(text: string, ignore: readonly RegExp[], budget?: PatternBudget): Generator<string> {
  const check = budgetChecker(budget);
  const max = budget?.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  let start = 0;
  for (let i = 0; start <= text.length; i++) {
    check(i);
    let nl = text.indexOf('\n', start);
    if (nl === -1) nl = text.length;
    const line = text.slice(start, nl);
    start = nl + 1;
    if (start > text.length && line === '') break;
    if (!ignore.some((re) => lineMatches(re, line, max))) yield line;
  }
}

/**
 * "Changed" ignoring volatile lines (issue 9/10's ignore_patterns: stored, but not a reason for a new
 * version). Walks both texts line by line without building arrays.
 */
export function contentChanged(previous: string, next: string, ignore: readonly RegExp[], budget?: PatternBudget): boolean {
  const a = significantLines(previous, ignore, budget);
  const b = significantLines(next, ignore, budget);
  for (;;) {
    const x = a.next();
    const y = b.next();
    if (x.done || y.done) return !(x.done && y.done);
    if (x.value !== y.value) return true;
  }
}
