import { signal } from '@preact/signals';

/**
 * The session (issue 14). The access token lives in this module's memory only; the refresh token is an
 * HttpOnly cookie the page cannot read (set by login with `session: "cookie"`, sent by the browser to
 * /api/v1/auth/* only). Nothing is written to localStorage or sessionStorage: a reload gets a new access
 * token from the cookie (`restore`), a refresh runs silently before the token expires, and logout revokes
 * the login on the server.
 */
export interface Me {
  id: string;
  username: string;
  is_admin: boolean;
  quota_bytes: number | null;
  organizations?: Array<{ id: string; name: string; role: string }>;
}

/** An error answer of the API, carrying its code and message (shown to the user as is). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const me = signal<Me | null>(null);
/** True once the first restore attempt has finished (the shell shows nothing but "Loading" before). */
export const sessionChecked = signal(false);
/** Set when a session ended on its own (expired, revoked elsewhere): the login form says so. */
export const sessionNotice = signal<string | null>(null);

let accessToken: string | null = null;
/** Bumped by every login: a request that started under an older session must not end the new one. */
let generation = 0;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | null = null;

const SESSION_HEADER = { 'content-type': 'application/json', 'x-stormvault-session': '1' };

export async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = await res.json();
    if (body?.error?.message) return new ApiError(res.status, body.error.code ?? 'error', body.error.message);
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, 'http_error', `${res.status} ${res.statusText || 'error'}`);
}

function accept(body: { access_token: string; expires_in: number }): void {
  accessToken = body.access_token;
  clearTimeout(refreshTimer);
  // Refresh at 80% of the lifetime, so a slow network still beats the expiry.
  const ms = Math.max(5, body.expires_in * 0.8) * 1000;
  refreshTimer = setTimeout(() => void refresh(), ms);
}

function dropSession(notice: string | null): void {
  accessToken = null;
  clearTimeout(refreshTimer);
  me.value = null;
  sessionNotice.value = notice;
}

/**
 * One refresh at a time in this tab, and across tabs where the browser has Web Locks: two tabs
 * presenting the same cookie at once would look like token reuse and revoke the login.
 */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const run = async () => {
      const res = await fetch('/api/v1/auth/refresh', { method: 'POST', headers: SESSION_HEADER, body: '{}', credentials: 'same-origin' });
      if (!res.ok) return false;
      accept(await res.json());
      return true;
    };
    try {
      const locks = (navigator as Navigator & { locks?: LockManager }).locks;
      return locks ? await locks.request('stormvault-refresh', run) : await run();
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function loadMe(): Promise<void> {
  me.value = (await (await api('/api/v1/users/me')).json()) as Me;
}

/** On start: a refresh cookie from an earlier visit (or reload) gives a session without a login. */
export async function restore(): Promise<void> {
  try {
    if (await refresh()) await loadMe();
  } catch {
    dropSession(null);
  } finally {
    sessionChecked.value = true;
  }
}

export async function login(username: string, password: string): Promise<void> {
  const res = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, session: 'cookie' }),
    credentials: 'same-origin',
  });
  if (!res.ok) throw await errorOf(res);
  generation++;
  accept(await res.json());
  sessionNotice.value = null;
  await loadMe();
}

export async function logout(): Promise<void> {
  try {
    await fetch('/api/v1/auth/logout', { method: 'POST', headers: SESSION_HEADER, body: '{}', credentials: 'same-origin' });
  } finally {
    dropSession(null);
  }
}

/** The current access token, for requests that cannot go through fetch (XHR uploads with progress). */
export async function currentToken(): Promise<string> {
  const startedIn = generation;
  if (!accessToken && !(await refresh())) {
    if (startedIn === generation) dropSession('Your session has ended. Sign in again.');
    throw new ApiError(401, 'unauthorized', 'Your session has ended. Sign in again.');
  }
  return accessToken!;
}

/**
 * fetch() with the access token. A 401 gets one silent refresh and a retry; when that fails too the
 * session is over and the login form shows (the URL is kept, so signing in returns to the same page).
 * Error answers throw ApiError with the API's own message.
 */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const send = (token: string | null) => {
    const headers = new Headers(init.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    return fetch(path, { ...init, headers, credentials: 'same-origin' });
  };
  const startedIn = generation;
  let res = await send(accessToken);
  if (res.status === 401) {
    if (await refresh()) res = await send(accessToken);
    if (res.status === 401) {
      const err = await errorOf(res);
      if (startedIn === generation) dropSession('Your session has ended. Sign in again.');
      throw err;
    }
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await api(path, init);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** JSON body helper: `apiJson(url, jsonBody('POST', {...}))`. */
export function jsonBody(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}
