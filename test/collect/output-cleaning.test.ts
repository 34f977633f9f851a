import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceModelSchema } from '../../src/modules/collect/collect-model.schema.ts';
import {
  assembleConfiguration,
  compileModel,
  contentChanged,
  renderLine,
  stripAnsi,
  toLines,
} from '../../src/modules/collect/output-cleaning.ts';
import { compileSafePattern, lineMatches, lineReplace, PatternBudgetExceeded, patternProblem } from '../../src/lib/safe-pattern.ts';

/**
 * The cleaning as first written (regexes and array helpers throughout), kept as the reference the faster
 * code must agree with on any input (bench/collect: cleaning was ~0.4 ms of CPU a device).
 */
const reference = {
  renderLine(line: string): string {
    if (line.endsWith('\r')) line = line.replace(/\r+$/, '');
    if (line.includes('\r')) {
      let screen = '';
      for (const part of line.split('\r')) screen = part + screen.slice(part.length);
      line = screen;
    }
    if (line.includes('\b')) {
      const out: string[] = [];
      for (const ch of line) {
        if (ch === '\b') out.pop();
        else out.push(ch);
      }
      line = out.join('');
    }
    return line.replace(/[ \t]+$/, '');
  },
  assemble(outputs: { raw: string; command: ReturnType<typeof compileModel>['commands'][number] }[], c: ReturnType<typeof compileModel>, scrub: boolean, max = 8192): string {
    const ansi = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
    let lines: string[] = [];
    for (const o of outputs) {
      const all = o.raw.replace(ansi, '').split('\n').map(reference.renderLine);
      while (all.length > 0 && all[all.length - 1] === '') all.pop();
      let start = 0;
      let end = all.length;
      if (end > 0 && all[0]!.trimEnd().endsWith(o.command.command.cmd.trim())) start = 1;
      if (end > start && c.prompt && lineMatches(c.prompt, all[end - 1]!)) end -= 1;
      const cut0 = all.slice(start, end);
      const { cut_head, cut_tail } = o.command.command;
      const cut = cut0.slice(cut_head, Math.max(cut_head, cut0.length - cut_tail));
      const kept: string[] = [];
      for (let line of cut) {
        if (o.command.reject.some((re) => lineMatches(re, line, max))) continue;
        if (o.command.keep.length > 0 && !o.command.keep.some((re) => lineMatches(re, line, max))) continue;
        for (const r of o.command.replace) line = lineReplace(r.re, line, r.with, max);
        kept.push(line);
      }
      const bare = c.model.comment.trimEnd();
      lines = lines.concat(o.command.command.as === 'comment' ? kept.map((l) => (l === '' ? bare : c.model.comment + l)) : kept);
    }
    if (scrub) lines = lines.map((line) => c.secrets.reduce((l, s) => lineReplace(s.re, l, s.with, max), line));
    return lines.length === 0 ? '' : lines.join('\n') + '\n';
  },
};

const model = deviceModelSchema.parse({
  name: 'test',
  prompt: '^[\\w.-]+[#>] ?$',
  comment: '! ',
  commands: [
    { cmd: 'show version', as: 'comment', reject_lines: ['uptime is'] },
    { cmd: 'show running-config', cut_head: 1, replace: [{ pattern: 'hostname (\\S+)', with: 'hostname <$1>' }] },
  ],
  secrets: [{ pattern: '^(enable secret \\d) \\S+', with: '$1 <secret hidden>' }],
  ignore_patterns: ['^! Last configuration change'],
});
const compiled = compileModel(model);

describe('output cleaning', () => {
  it('cuts the echoed command and the prompt, strips ANSI, applies filters, comments and secrets', () => {
    const out = assembleConfiguration(
      [
        { command: compiled.commands[0]!, raw: 'show version\r\nIOS 15.2\r\nr1 uptime is 3 weeks\r\n\x1b[1mModel\x1b[0m C2960\r\nr1#' },
        { command: compiled.commands[1]!, raw: 'show running-config\r\nBuilding configuration...\r\nhostname r1\r\nenable secret 5 $1$abc\r\nend\r\nr1#' },
      ],
      compiled,
      { scrubSecrets: true },
    );
    expect(out).toBe('! IOS 15.2\n! Model C2960\nhostname <r1>\nenable secret 5 <secret hidden>\nend\n');
  });

  it('keeps secrets when scrubbing is off', () => {
    const out = assembleConfiguration([{ command: compiled.commands[1]!, raw: 'x\nenable secret 5 S3CRET\nr1#' }], compiled, { scrubSecrets: false });
    expect(out).toContain('S3CRET');
  });

  it('renders carriage-return overwrites and backspaces as the screen shows them', () => {
    expect(renderLine('--More--\r        \rinterface Gi0/1')).toBe('interface Gi0/1');
    expect(renderLine(' --More-- \b\b\b\b\b\b\b\b\b\b          \b\b\b\b\b\b\b\b\b\b description x')).toBe(' description x');
    expect(stripAnsi('\x1b[2K\x1b]0;title\x07ok\x1b[?25h')).toBe('ok');
    expect(toLines('a\r\nb\r\n\r\n')).toEqual(['a', 'b']);
  });

  it('agrees with the reference cleaning on any mix of CR, backspace, ANSI, blanks, prompts and secrets', () => {
    const m = compileModel(
      deviceModelSchema.parse({
        name: 'p',
        prompt: '^[\\w.-]+[#>] ?$',
        comment: '! ',
        commands: [
          { cmd: 'show a', as: 'comment', reject_lines: ['^drop'], cut_tail: 1 },
          { cmd: 'show b', cut_head: 1, keep_lines: ['e'], replace: [{ pattern: 'host(\\S*)', with: 'h<$1>' }] },
          { cmd: 'show c' },
        ],
        secrets: [{ pattern: '^(secret) \\S+', with: '$1 <hidden>' }, { pattern: 'key \\S+', with: 'key <k>' }],
      }),
    );
    const piece = fc.constantFrom('\r', '\r\n', '\n', '\b', ' ', '\t', '\x1b[1m', '\x1b]0;t\x07', '\x1b', 'secret x', 'key y', 'hostname r1', 'drop', 'e', 'show a', 'show b', 'r1#', 'r1> ', 'abc', '\u00e9\u{1F600}');
    const raw = fc.array(piece, { maxLength: 40 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(fc.tuple(raw, raw, raw), fc.boolean(), fc.integer({ min: 4, max: 12 }), ([a, b, c], scrub, max) => {
        const outputs = [a, b, c].map((r, i) => ({ raw: r, command: m.commands[i]! }));
        expect(assembleConfiguration(outputs, m, { scrubSecrets: scrub, budget: { now: () => 0, deadline: 1, maxLineLength: max } })).toBe(
          reference.assemble(outputs, m, scrub, max),
        );
        for (const r of [a, b, c]) for (const line of r.split('\n')) expect(renderLine(line)).toBe(reference.renderLine(line));
      }),
      { numRuns: 2000 },
    );
  });

  it('keep_lines keeps only matching lines', () => {
    const m = compileModel(deviceModelSchema.parse({ name: 'k', mode: 'exec', commands: [{ cmd: 'c', keep_lines: ['^set '] }] }));
    expect(assembleConfiguration([{ command: m.commands[0]!, raw: 'set a\nnoise\nset b\n' }], m, { scrubSecrets: true })).toBe('set a\nset b\n');
  });

  it('compares without volatile lines', () => {
    const a = '! Last configuration change at 10:00\nhostname r1\n';
    const b = '! Last configuration change at 11:00\nhostname r1\n';
    expect(contentChanged(a, b, compiled.ignore)).toBe(false);
    expect(contentChanged(a, b + 'ntp server x\n', compiled.ignore)).toBe(true);
    expect(contentChanged(a, b, [])).toBe(true);
  });

  it('contentChanged agrees with comparing the filtered line lists', () => {
    const line = fc.constantFrom('a', 'b', '! Last configuration change x', '');
    fc.assert(
      fc.property(fc.array(line), fc.array(line), (xs, ys) => {
        const keep = (l: string[]) => l.filter((s) => !s.startsWith('! Last configuration change'));
        const expected = keep(xs).join('\n') !== keep(ys).join('\n') || keep(xs).length !== keep(ys).length;
        expect(contentChanged(xs.map((s) => s + '\n').join(''), ys.map((s) => s + '\n').join(''), compiled.ignore)).toBe(expected);
      }),
    );
  });

  it('refuses patterns with nested unbounded quantifiers but allows optional groups', () => {
    expect(patternProblem('(a+)+$')).toMatch(/backtrack/);
    expect(patternProblem('(\\s*x)*')).toMatch(/backtrack/);
    expect(patternProblem('^(username \\S+(?: privilege \\d+)?) \\S+')).toBeNull();
    expect(patternProblem('(')).toMatch(/invalid regular expression/);
    expect(() => compileSafePattern('(a*)*')).toThrow(/backtrack/);
  });

  it('stops with PatternBudgetExceeded once the deadline passes (clock injected, not timed)', () => {
    let t = 0;
    const budget = { now: () => (t += 1000), deadline: 1500 };
    const raw = 'x\n' + 'line\n'.repeat(5000) + 'r1#';
    expect(() => assembleConfiguration([{ command: compiled.commands[1]!, raw }], compiled, { scrubSecrets: true, budget })).toThrow(
      PatternBudgetExceeded,
    );
  });

  it('cleans a 10 MB configuration with long lines and adversarial text', () => {
    const body = ('interface Gi0/' + 'a'.repeat(200) + '\n').repeat(40_000) + 'b'.repeat(1_000_000) + '\n';
    const out = assembleConfiguration([{ command: compiled.commands[1]!, raw: 'show running-config\nBuilding\n' + body + 'r1#' }], compiled, {
      scrubSecrets: true,
    });
    expect(out.length).toBe(body.length);
  });
});
