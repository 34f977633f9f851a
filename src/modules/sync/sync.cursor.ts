import { AppError } from '../../errors.ts';

// Cursors are opaque to clients: base64url of "<organization id>:<sequence number>". The organization
// is inside so a cursor from one organization cannot be replayed against another.
export function encodeCursor(organizationId: string, seq: number): string {
  return Buffer.from(`${organizationId}:${seq}`, 'utf8').toString('base64url');
}

export function decodeCursor(organizationId: string, cursor: string): number {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^(.+):(\d{1,15})$/.exec(text);
  if (!match || match[1] !== organizationId) throw new AppError('invalid_request', 'since is not a cursor of this organization');
  return Number(match[2]);
}
