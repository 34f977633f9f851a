import { AppError } from '../../errors.ts';

/**
 * Cursors are opaque to clients: base64url of "<organization id>:<sequence number>", plus ":full" on the
 * pages of a full pull (one started without `since`). The organization is inside so a cursor from one
 * organization cannot be replayed against another; the flag carries "include this device's own versions"
 * from the first page of a full pull to the next (issue 12: the documented 410 recovery lost a device's
 * own records because only the first page knew it was a full pull).
 */
export interface CursorParts {
  seq: number;
  /** A page of a full pull: the device's own versions are returned too. */
  full: boolean;
}

export function encodeCursor(organizationId: string, seq: number, options: { full?: boolean } = {}): string {
  return Buffer.from(`${organizationId}:${seq}${options.full ? ':full' : ''}`, 'utf8').toString('base64url');
}

export function decodeCursorParts(organizationId: string, cursor: string): CursorParts {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^([^:]+):(\d{1,15})(:full)?$/.exec(text);
  if (!match || match[1] !== organizationId) throw new AppError('invalid_request', 'since is not a cursor of this organization');
  return { seq: Number(match[2]), full: match[3] !== undefined };
}

export function decodeCursor(organizationId: string, cursor: string): number {
  return decodeCursorParts(organizationId, cursor).seq;
}
