import * as z from '../../lib/zod.ts';
import { patternProblem } from '../../lib/safe-pattern.ts';

/**
 * A device model as data (issue 10, after Oxidized's lib/oxidized/model/, but JSON instead of Ruby): how
 * to reach the prompt, which commands to run, and how to clean their output. docs/collection.md documents
 * every field. Regexes are JavaScript syntax and are checked by lib/safe-pattern (no nested quantifiers).
 */
const pattern = z.string().check(
  z.superRefine((s, ctx) => {
    const problem = patternProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: /${s}/` });
  }),
);

const substitution = z.strictObject({ pattern, with: z.string() });
const line = () => z.string().check(z.minLength(1), z.maxLength(1000));
const lineCount = () => z._default(z.number().check(z.int(), z.gte(0), z.lte(10_000)), 0);

const command = z.strictObject({
  cmd: line(),
  /** config: part of the configuration; comment: kept as comment lines (prefixed with `comment`). */
  as: z._default(z.enum(['config', 'comment']), 'config'),
  /** Lines dropped from the start / end of this command's output (after the echo and prompt are cut). */
  cut_head: lineCount(),
  cut_tail: lineCount(),
  /** Lines matching any of these are dropped. */
  reject_lines: z._default(z.array(pattern), []),
  /** When non-empty, only lines matching one of these are kept. */
  keep_lines: z._default(z.array(pattern), []),
  replace: z._default(z.array(substitution), []),
});

export const deviceModelSchema = z
  .strictObject({
    name: z.string().check(z.regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, ".", "_" or "-", at most 64')),
    description: z._default(z.string().check(z.maxLength(500)), ''),
    /** shell: one interactive session with prompt detection; exec: one SSH exec channel per command. */
    mode: z._default(z.enum(['shell', 'exec']), 'shell'),
    /** Matches the device's prompt line (tested against the last, incomplete line of output). */
    prompt: z.optional(pattern),
    /** Prefix of comment lines in the stored configuration. */
    comment: z._default(z.string().check(z.maxLength(16)), '# '),
    /** Prompts some devices show inside the shell even after SSH authentication. */
    login: z.optional(z.strictObject({ username_prompt: z.optional(pattern), password_prompt: z.optional(pattern) })),
    /** Privileged mode: sent when the credential has an enable password. */
    enable: z.optional(z.strictObject({ command: z._default(z.string().check(z.minLength(1)), 'enable'), password_prompt: pattern })),
    pager: z.optional(z.strictObject({ pattern, send: z.string().check(z.maxLength(16)) })),
    post_login: z._default(z.array(line()), []),
    pre_logout: z._default(z.array(line()), []),
    commands: z.array(command).check(z.minLength(1)),
    /** Applied to the whole result when the device's scrub_secrets is on (the default). */
    secrets: z._default(z.array(substitution), []),
    /** Volatile lines: stored, but ignored when deciding whether the configuration changed. */
    ignore_patterns: z._default(z.array(pattern), []),
  })
  .check(
    z.superRefine((m, ctx) => {
      if (m.mode === 'shell' && !m.prompt) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'a shell model needs a prompt' });
    }),
  );

export type DeviceModel = z.output<typeof deviceModelSchema>;
export type ModelCommand = DeviceModel['commands'][number];
