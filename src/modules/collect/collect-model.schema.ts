import * as z from 'zod';
import { patternProblem } from '../../lib/safe-pattern.ts';

/**
 * A device model as data (issue 10, after Oxidized's lib/oxidized/model/, but JSON instead of Ruby): how
 * to reach the prompt, which commands to run, and how to clean their output. docs/collection.md documents
 * every field. Regexes are JavaScript syntax and are checked by lib/safe-pattern (no nested quantifiers).
 */
const pattern = z.string().superRefine((s, ctx) => {
  const problem = patternProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: /${s}/` });
});

const substitution = z.object({ pattern, with: z.string() }).strict();

const command = z
  .object({
    cmd: z.string().min(1).max(1000),
    /** config: part of the configuration; comment: kept as comment lines (prefixed with `comment`). */
    as: z.enum(['config', 'comment']).default('config'),
    /** Lines dropped from the start / end of this command's output (after the echo and prompt are cut). */
    cut_head: z.number().int().min(0).max(10_000).default(0),
    cut_tail: z.number().int().min(0).max(10_000).default(0),
    /** Lines matching any of these are dropped. */
    reject_lines: z.array(pattern).default([]),
    /** When non-empty, only lines matching one of these are kept. */
    keep_lines: z.array(pattern).default([]),
    replace: z.array(substitution).default([]),
  })
  .strict();

export const deviceModelSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, ".", "_" or "-", at most 64'),
    description: z.string().max(500).default(''),
    /** shell: one interactive session with prompt detection; exec: one SSH exec channel per command. */
    mode: z.enum(['shell', 'exec']).default('shell'),
    /** Matches the device's prompt line (tested against the last, incomplete line of output). */
    prompt: pattern.optional(),
    /** Prefix of comment lines in the stored configuration. */
    comment: z.string().max(16).default('# '),
    /** Prompts some devices show inside the shell even after SSH authentication. */
    login: z.object({ username_prompt: pattern.optional(), password_prompt: pattern.optional() }).strict().optional(),
    /** Privileged mode: sent when the credential has an enable password. */
    enable: z
      .object({ command: z.string().min(1).default('enable'), password_prompt: pattern })
      .strict()
      .optional(),
    pager: z.object({ pattern, send: z.string().max(16) }).strict().optional(),
    post_login: z.array(z.string().min(1).max(1000)).default([]),
    pre_logout: z.array(z.string().min(1).max(1000)).default([]),
    commands: z.array(command).min(1),
    /** Applied to the whole result when the device's scrub_secrets is on (the default). */
    secrets: z.array(substitution).default([]),
    /** Volatile lines: stored, but ignored when deciding whether the configuration changed. */
    ignore_patterns: z.array(pattern).default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.mode === 'shell' && !m.prompt) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'a shell model needs a prompt' });
  });

export type DeviceModel = z.output<typeof deviceModelSchema>;
export type ModelCommand = DeviceModel['commands'][number];
