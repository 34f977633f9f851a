import { signal } from '@preact/signals';
import { currentToken, errorOf } from '../lib/session.ts';
import { encodePath } from '../lib/format.ts';

/**
 * The upload queue: XHR PUTs (fetch has no upload progress), three at a time, each with its own progress,
 * cancel and retry. A finished upload calls `onUploaded` so the folder on screen refreshes.
 */
export type UploadStatus = 'queued' | 'uploading' | 'done' | 'error' | 'cancelled';

export interface Upload {
  id: number;
  file: File;
  /** Target path in the user's files. */
  path: string;
  loaded: number;
  status: UploadStatus;
  error?: string;
  xhr?: XMLHttpRequest;
}

const CONCURRENCY = 3;
export const uploads = signal<Upload[]>([]);
let seq = 0;
let onUploaded: (path: string) => void = () => {};

export function setUploadListener(listener: (path: string) => void): void {
  onUploaded = listener;
}

function changed(): void {
  uploads.value = [...uploads.value];
}

export function enqueueUploads(items: Array<{ file: File; path: string }>): void {
  uploads.value = [...uploads.value, ...items.map((i) => ({ id: ++seq, file: i.file, path: i.path, loaded: 0, status: 'queued' as const }))];
  pump();
}

function pump(): void {
  let running = uploads.value.filter((u) => u.status === 'uploading').length;
  for (const u of uploads.value) {
    if (running >= CONCURRENCY) break;
    if (u.status !== 'queued') continue;
    running++;
    void start(u);
  }
}

async function start(u: Upload): Promise<void> {
  u.status = 'uploading';
  u.loaded = 0;
  u.error = undefined;
  changed();
  let token: string;
  try {
    token = await currentToken();
  } catch (err) {
    finish(u, 'error', (err as Error).message);
    return;
  }
  if (u.status !== 'uploading') return; // cancelled while waiting for the token
  const xhr = new XMLHttpRequest();
  u.xhr = xhr;
  xhr.open('PUT', `/api/v1/files/${encodePath(u.path)}`);
  xhr.setRequestHeader('authorization', `Bearer ${token}`);
  xhr.upload.onprogress = (e) => {
    u.loaded = e.loaded;
    changed();
  };
  xhr.onload = async () => {
    if (xhr.status >= 200 && xhr.status < 300) {
      u.loaded = u.file.size;
      finish(u, 'done');
      onUploaded(u.path);
    } else {
      const err = await errorOf(new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText }));
      finish(u, 'error', err.message);
    }
  };
  xhr.onerror = () => finish(u, 'error', 'network error: the upload did not reach the server');
  xhr.onabort = () => finish(u, 'cancelled');
  xhr.send(u.file);
}

function finish(u: Upload, status: UploadStatus, error?: string): void {
  if (u.status !== 'uploading' && u.status !== 'queued') return;
  u.status = status;
  u.error = error;
  u.xhr = undefined;
  changed();
  pump();
}

export function cancelUpload(id: number): void {
  const u = uploads.value.find((x) => x.id === id);
  if (!u) return;
  if (u.xhr) u.xhr.abort();
  else finish(u, 'cancelled');
}

export function retryUpload(id: number): void {
  const u = uploads.value.find((x) => x.id === id);
  if (!u || (u.status !== 'error' && u.status !== 'cancelled')) return;
  u.status = 'queued';
  u.loaded = 0;
  changed();
  pump();
}

export function clearFinished(): void {
  uploads.value = uploads.value.filter((u) => u.status === 'queued' || u.status === 'uploading');
}

/** Files of a drop, folders walked recursively (their relative paths kept). */
export async function filesOfDrop(data: DataTransfer): Promise<Array<{ file: File; relative: string }>> {
  const out: Array<{ file: File; relative: string }> = [];
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(data.items)) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f) loose.push(f);
    }
  }
  if (entries.length === 0 && loose.length === 0) loose.push(...Array.from(data.files));
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      out.push({ file, relative: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries answers in batches (100 in Chromium) until an empty one.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, '');
  for (const f of loose) out.push({ file: f, relative: f.name });
  return out;
}
