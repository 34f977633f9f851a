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
import { compileSafePattern, PatternBudgetExceeded, patternProblem } from '../../src/lib/safe-pattern.ts';

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
