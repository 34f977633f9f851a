import { createRequire } from 'node:module';
import type { CronExpressionParser as Parser } from 'cron-parser';

/**
 * Pure cron arithmetic for periodic schedules (no I/O, no clock: "now" is passed in). Lives in lib/ so
 * config can check a cron setting without importing the tasks framework (issue 8).
 * Ticks are computed in the schedule's IANA time zone, so "0 3 * * *" in Europe/Berlin fires at 03:00
 * Berlin time across DST changes.
 */

/**
 * cron-parser (and luxon, which it loads), on first use: loading them costs every command that reads its
 * config ~15 ms, and most never compute a tick (issue 12, CLI start-up). Required from node_modules, so
 * not part of dist/'s bundle (scripts/build.mjs).
 */
let parser: typeof Parser | undefined;
const cronParser = () => (parser ??= (createRequire(import.meta.url)('cron-parser') as { CronExpressionParser: typeof Parser }).CronExpressionParser);

/** Why `cron` + `timezone` cannot be used, or null when they can. */
export function scheduleProblem(cron: string, timezone: string): string | null {
  if (!isTimeZone(timezone)) return `unknown time zone "${timezone}" (use an IANA name such as "Europe/Berlin" or "UTC")`;
  try {
    cronParser().parse(cron, { tz: timezone, currentDate: new Date(0), strict: false }).next();
    return null;
  } catch (err) {
    return `invalid cron expression "${cron}": ${(err as Error).message}`;
  }
}

/** The first tick strictly after `after`. */
export function nextTick(cron: string, timezone: string, after: Date): Date {
  return cronParser().parse(cron, { tz: timezone, currentDate: after }).next().toDate();
}

/** The last tick at or before `at` (a tick exactly at `at` counts). */
export function previousTick(cron: string, timezone: string, at: Date): Date {
  return cronParser().parse(cron, { tz: timezone, currentDate: new Date(at.getTime() + 1) }).prev().toDate();
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
