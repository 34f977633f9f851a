import { AppError } from '../../errors.ts';

// Where the files capability keeps a user's files in its BlobStore: key `<user_id>/<path>`, so on the fs
// adapter rooted at the storage root the on-disk layout stays `{storage_root}/{user_id}/{path}` (DESIGN.md),
// and existing data dirs work as they are. Defined here only; nothing else builds these keys.

// User ids are UUIDs today; accept any id that is a single safe key segment so the rule is about safety.
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** The store key of a user's root folder. */
export function userRootKey(userId: string): string {
  if (!USER_ID.test(userId)) throw new AppError('internal', 'user id is not a safe key segment');
  return userId;
}

/** The store key of `rel` (a canonical path from normalizeUserPath; '' is the user's root). */
export function userFileKey(userId: string, rel: string): string {
  const root = userRootKey(userId);
  return rel === '' ? root : `${root}/${rel}`;
}

/** The user path of a key below the user's root ('' for the root itself). */
export function userPathOf(userId: string, key: string): string {
  return key === userId ? '' : key.startsWith(`${userId}/`) ? key.slice(userId.length + 1) : key;
}
