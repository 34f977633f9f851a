// Business hours of a site's health checks (issue 11 "Health and alerts": hourly, only inside the site's
// business hours). Pure: "now" is handed in (the app's Clock), the zone is an IANA name.

const RANGE_RE = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/;

/** Minutes since midnight of both ends, or a reason the text is not "HH:MM-HH:MM". */
export function parseBusinessHours(text: string): { start: number; end: number } | string {
  const m = RANGE_RE.exec(text);
  if (!m) return 'must be "HH:MM-HH:MM" (24-hour clock), e.g. "08:00-18:00"';
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (end > 24 * 60) return 'the end must be at most 24:00';
  if (start === end) return 'start and end must differ (use "00:00-24:00" for always)';
  return { start, end };
}

/** True when `zone` is an IANA time zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Minutes since local midnight of `now` in `zone`. */
export function localMinutes(now: Date, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  const hour = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return hour * 60 + minute;
}

/**
 * Whether `now` lies inside the range in `zone`. The start is inclusive and the end exclusive; a range
 * whose end is before its start runs over midnight ("22:00-06:00").
 */
export function withinBusinessHours(now: Date, hours: string, zone: string): boolean {
  const range = parseBusinessHours(hours);
  if (typeof range === 'string') return false;
  const t = localMinutes(now, zone);
  return range.start < range.end ? t >= range.start && t < range.end : t >= range.start || t < range.end;
}
