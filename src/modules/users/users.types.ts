export interface User {
  id: string;
  username: string;
  isAdmin: boolean;
  /** Bytes this user may store; null = unlimited. */
  quotaBytes: number | null;
  createdAt: string;
  updatedAt: string;
}

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const USERNAME_RULE = '1-64 characters: letters, digits, "_", "." or "-", starting with a letter or digit';
