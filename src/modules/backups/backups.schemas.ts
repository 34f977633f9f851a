import { AppError } from '../../errors.ts';
import { scheduleProblem } from '../../lib/cron.ts';
import { patternsProblem } from '../../lib/line-patterns.ts';
import { BACKUP_SEGMENT_RE } from '../../storage/backup-repository.port.ts';
import { normalizeLocationFolder } from '../../storage/backup-plugins/backup-folder.ts';
import type { FsLocationConfig, GitLocationConfig, LocationConfig, LocationType } from './backups.types.ts';

/** Validation of backup locations and network devices (issue 9). Every problem is a 400 with the field named. */

const bad = (message: string) => new AppError('invalid_request', message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkKnownKeys(body: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length) throw bad(`${what}: unknown field(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`);
}

export function requireObject(body: unknown, what: string): Record<string, unknown> {
  if (!isObject(body)) throw bad(`${what} must be a JSON object`);
  return body;
}

export function validName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !BACKUP_SEGMENT_RE.test(value)) {
    throw bad(`${field} must be 1-128 characters of A-Z a-z 0-9 . _ - and not "." or ".."`);
  }
  return value;
}

export function validText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max || CONTROL.test(value)) {
    throw bad(`${field} must be a non-empty string of at most ${max} characters without control characters`);
  }
  return value;
}

export function validPatterns(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  const problem = patternsProblem(value, field);
  if (problem) throw bad(problem);
  return value as string[];
}

export function validType(value: unknown): LocationType {
  if (value !== 'git' && value !== 'fs') throw bad('type must be "git" or "fs"');
  return value;
}

const BRANCH_RE = /^(?!.*\.\.)(?!.*\/\/)(?![/.])(?!.*[/.]$)(?!.*\.lock$)[A-Za-z0-9._/-]{1,100}$/;
const EMAIL_RE = /^[^\s<>@]{1,200}@[^\s<>@]{1,200}$/;

function optionalCount(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 1_000_000) throw bad(`${field} must be a whole number from 1 to 1000000, or null`);
  return value;
}

/** The location's config with defaults filled in; the folder confined to the org's backup folder (pure half). */
export function validLocationConfig(type: LocationType, value: unknown): LocationConfig {
  const c = requireObject(value, 'config');
  const folder = normalizeLocationFolder(c.folder);
  if (type === 'git') {
    checkKnownKeys(c, ['folder', 'branch', 'author_name', 'author_email'], 'config (git)');
    const branch = c.branch === undefined ? 'main' : c.branch;
    if (typeof branch !== 'string' || !BRANCH_RE.test(branch)) throw bad('config.branch must be a valid git branch name');
    const authorName = c.author_name === undefined ? 'Stormvault' : validText(c.author_name, 'config.author_name', 200);
    const authorEmail = c.author_email === undefined ? 'stormvault@localhost' : c.author_email;
    if (typeof authorEmail !== 'string' || !EMAIL_RE.test(authorEmail)) throw bad('config.author_email must be an e-mail address');
    return { folder, branch, author_name: authorName, author_email: authorEmail } satisfies GitLocationConfig;
  }
  checkKnownKeys(c, ['folder', 'keep_versions', 'keep_days'], 'config (fs)');
  return { folder, keep_versions: optionalCount(c.keep_versions, 'config.keep_versions'), keep_days: optionalCount(c.keep_days, 'config.keep_days') } satisfies FsLocationConfig;
}

/** A device's collection fields (issue 10); whether the model and the credential exist is checked by the collect module. */
export function validOptionalName(value: unknown, field: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(value)) throw bad(`${field} must be a name of 1-128 characters of A-Z a-z 0-9 . _ -, or null`);
  return value;
}

export function validPort(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 65535) throw bad('port must be a whole number from 1 to 65535');
  return value;
}

export function validBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw bad(`${field} must be true or false`);
  return value;
}

/** A 5-field cron (or null) read in `timezone` (null = UTC). */
export function validSchedule(schedule: unknown, timezone: unknown): { schedule: string | null; timezone: string | null } {
  if (timezone !== null && (typeof timezone !== 'string' || timezone.length > 64)) throw bad('timezone must be an IANA time zone name such as "Europe/Berlin", or null');
  if (schedule === null) {
    if (timezone !== null && scheduleProblem('0 * * * *', timezone)) throw bad(scheduleProblem('0 * * * *', timezone)!);
    return { schedule: null, timezone };
  }
  if (typeof schedule !== 'string' || schedule.length > 100 || schedule.trim().split(/\s+/).length !== 5) throw bad('schedule must be a 5-field cron expression (minute hour day month weekday), or null');
  const problem = scheduleProblem(schedule, timezone ?? 'UTC');
  if (problem) throw bad(`schedule: ${problem}`);
  return { schedule: schedule.trim(), timezone };
}

export function validCommands(value: unknown): string[] | null {
  if (value === null) return null;
  if (!Array.isArray(value) || value.length === 0 || value.length > 50 || value.some((c) => typeof c !== 'string' || c.trim() === '' || c.length > 1000 || CONTROL.test(c))) {
    throw bad('commands must be a list of 1-50 commands (each 1-1000 characters, no control characters), or null');
  }
  return value as string[];
}

/** Page size of list endpoints. */
export function validLimit(value: unknown, dflt = 50, max = 500): number {
  if (value === undefined) return dflt;
  const n = typeof value === 'string' && /^\d{1,6}$/.test(value) ? Number(value) : typeof value === 'number' ? value : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw bad(`limit must be a whole number from 1 to ${max}`);
  return n;
}

export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
