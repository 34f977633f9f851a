import { api, apiJson, jsonBody } from '../lib/session.ts';
import { encodePath } from '../lib/format.ts';

export interface Entry {
  path: string;
  name: string;
  size: number;
  content_type: string;
  is_directory: boolean;
  modified_at: string;
  created_at: string;
}

export interface Usage {
  used_bytes: number;
  quota_bytes: number | null;
  available_bytes: number | null;
}

export interface Share {
  id: string;
  path: string;
  is_directory: boolean;
  has_password: boolean;
  expires_at: string | null;
  max_downloads: number | null;
  download_count: number;
  created_at: string;
  status: 'active' | 'expired' | 'exhausted' | 'revoked';
  url?: string;
  token?: string;
}

const PAGE = 1000;

/** Every entry of a folder, page by page (the API pages by name, at most 1,000 per page). */
export async function listFolder(path: string, signal: AbortSignal, onPage?: (entries: Entry[]) => void): Promise<Entry[]> {
  const all: Entry[] = [];
  let cursor: string | null = null;
  const base = path ? `/api/v1/dirs/${encodePath(path)}` : '/api/v1/dirs';
  do {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) q.set('cursor', cursor);
    const page: { entries: Entry[]; next_cursor: string | null } = await apiJson(`${base}?${q}`, { signal });
    all.push(...page.entries);
    cursor = page.next_cursor;
    if (cursor) onPage?.(all);
  } while (cursor);
  return all;
}

export const usage = () => apiJson<Usage>('/api/v1/usage');
export const mkdir = (path: string) => apiJson(`/api/v1/dirs/${encodePath(path)}`, { method: 'POST' });
export const move = (from: string, to: string) => apiJson('/api/v1/move', jsonBody('POST', { from, to }));
export const copy = (from: string, to: string) => apiJson('/api/v1/copy', jsonBody('POST', { from, to }));
export const remove = (path: string, recursive: boolean) => apiJson(`/api/v1/files/${encodePath(path)}${recursive ? '?recursive=true' : ''}`, { method: 'DELETE' });
export const fetchFile = (path: string, init: RequestInit = {}) => api(`/api/v1/files/${encodePath(path)}`, init);

export const listShares = async () => (await apiJson<{ shares: Share[] }>('/api/v1/shares')).shares;
export const createShare = (body: { path: string; expires_at?: string | null; password?: string | null; max_downloads?: number | null }) =>
  apiJson<Share & { url: string; token: string }>('/api/v1/shares', jsonBody('POST', body));
export const revokeShare = (id: string) => apiJson(`/api/v1/shares/${encodeURIComponent(id)}`, { method: 'DELETE' });

/** Saves a file through a blob URL (the download needs the Authorization header, so no plain link). */
export async function download(path: string, name: string): Promise<void> {
  const blob = await (await fetchFile(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
