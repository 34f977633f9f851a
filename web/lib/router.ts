import { signal } from '@preact/signals';

/**
 * Routes live in the URL hash (`#/files/docs/2026`), so a reload, the back button and a bookmark land on
 * the same view, and the server needs no fallback route: it serves index.html at `/` only.
 */
export interface Route {
  /** First segment: files, shares, tasks, conflicts, backups, publishing, admin. */
  view: string;
  /** The rest, decoded (for files: the folder path). */
  rest: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [pathPart = '', queryPart = ''] = raw.split('?', 2);
  const segments = pathPart.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return { view: segments[0] ?? 'files', rest: segments.slice(1), query: new URLSearchParams(queryPart) };
}

export const route = signal<Route>(parseHash(location.hash));

export function startRouter(): void {
  addEventListener('hashchange', () => {
    route.value = parseHash(location.hash);
  });
}

/** `#/view/a/b?q` with every segment encoded. */
export function href(view: string, rest: readonly string[] = [], query?: Record<string, string>): string {
  const path = [view, ...rest].map(encodeURIComponent).join('/');
  const q = query ? new URLSearchParams(query).toString() : '';
  return `#/${path}${q ? `?${q}` : ''}`;
}

export function navigate(to: string): void {
  if (location.hash !== to) location.hash = to;
}
