import { signal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { api, apiJson, ApiError, jsonBody, me } from './session.ts';
import { createSseParser } from './sse.ts';

/**
 * Live updates (issue 14): the sync events stream (`GET /api/v1/sync/events`, Server-Sent Events) says
 * "something changed in your organization" with a `poke`; views that show synced records (the task board,
 * conflicts) reload when it comes.
 *
 * `EventSource` cannot send an Authorization header, and the API takes the access token nowhere else (not
 * in the URL, where proxies and access logs would keep it), so the stream is read with fetch() and a body
 * reader. One stream per tab, shared by every subscriber, opened on the first subscription and closed after
 * the last. It reconnects with exponential backoff (1 s doubling to 30 s, with jitter), and a reconnect goes
 * through `api()`, which refreshes an expired access token first; the stream itself was authorised when it
 * opened. A stream silent for longer than three heartbeats is taken as dead and reopened.
 *
 * The endpoint wants one of the caller's sync devices (it leaves out pokes for that device's own pushes).
 * The UI pushes nothing, so one device named {@link DEVICE_NAME} per user serves every tab and browser: it
 * is looked up, and registered the first time.
 */
export const DEVICE_NAME = 'Stormvault web UI';
const HEARTBEAT_TIMEOUT_MS = 80_000;
const MIN_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * `poke`: something changed. `ready`: a stream (re)opened; `resumed` is true when it is not the first one
 * of this subscription period, so changes may have been missed meanwhile.
 */
export type ChangeListener = (event: { type: 'ready' | 'poke'; cursor: string | null; resumed: boolean }) => void;

interface DeviceJson {
  id: string;
  name: string;
  retired_at: string | null;
}

const listeners = new Set<ChangeListener>();
let abort: AbortController | null = null;
/** The device of the signed-in user (another login in the same tab is another user). */
let device: { user: string; id: Promise<string> } | null = null;
/** Whether a stream is open right now (views show it: "Live" or "Reconnecting…"). */
export const live = signal(false);

async function ourDevice(): Promise<string> {
  const { devices } = await apiJson<{ devices: DeviceJson[] }>('/api/v1/devices');
  const found = devices.find((d) => d.name === DEVICE_NAME && !d.retired_at);
  if (found) return found.id;
  return (await apiJson<DeviceJson>('/api/v1/devices', jsonBody('POST', { name: DEVICE_NAME }))).id;
}

let opened = 0;

function emit(type: 'ready' | 'poke', data: string): void {
  let cursor: string | null = null;
  try {
    cursor = (JSON.parse(data) as { cursor?: string }).cursor ?? null;
  } catch {
    /* a hint only: the cursor is not needed to reload */
  }
  const resumed = type === 'ready' && ++opened > 1;
  for (const l of [...listeners]) l({ type, cursor, resumed });
}

/** Reads one response body as Server-Sent Events until it ends, fails or is aborted. */
async function readStream(body: ReadableStream<Uint8Array>, stop: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const feed = createSseParser((type, data) => {
    if (type === 'ready' || type === 'poke') emit(type, data);
  });
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const cancel = () => void reader.cancel().catch(() => {});
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(cancel, HEARTBEAT_TIMEOUT_MS);
  };
  stop.addEventListener('abort', cancel, { once: true });
  arm();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      arm();
      feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    clearTimeout(watchdog);
    stop.removeEventListener('abort', cancel);
  }
}

async function run(controller: AbortController): Promise<void> {
  const stop = controller.signal;
  let backoff = MIN_BACKOFF_MS;
  opened = 0;
  while (!stop.aborted) {
    try {
      const user = me.value?.id ?? '';
      if (device?.user !== user) device = { user, id: ourDevice() };
      const id = await device.id;
      const res = await api(`/api/v1/sync/events?device_id=${encodeURIComponent(id)}`, { signal: stop, headers: { accept: 'text/event-stream' } });
      if (!res.body) throw new Error('no event stream');
      live.value = true;
      backoff = MIN_BACKOFF_MS;
      await readStream(res.body, stop);
    } catch (err) {
      if (stop.aborted) break;
      // The session ended: api() already sent the user to the login form; nothing to reconnect to.
      if (err instanceof ApiError && err.status === 401) break;
      // Our device was retired (or the look-up failed): find or register it again on the next try.
      if (!live.value) device = null;
    } finally {
      live.value = false;
    }
    if (stop.aborted) break;
    const wait = backoff * (0.75 + Math.random() * 0.5);
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    await new Promise<void>((resolve) => {
      const wake = () => (clearTimeout(timer), stop.removeEventListener('abort', wake), resolve());
      const timer = setTimeout(wake, wait);
      stop.addEventListener('abort', wake, { once: true });
    });
  }
  // Ended by the session, not by the last unsubscribe: the next subscriber starts a new stream.
  if (abort === controller) abort = null;
}

/**
 * Calls `listener` on every change notice of the caller's organization (and once on every (re)connect,
 * `ready`, since changes may have been missed while disconnected). Returns the unsubscribe function.
 */
export function subscribeChanges(listener: ChangeListener): () => void {
  listeners.add(listener);
  if (!abort) {
    abort = new AbortController();
    void run(abort);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && abort) {
      abort.abort();
      abort = null;
    }
  };
}

/** Calls `reload` (the latest one passed) when something changed, coalescing bursts into one call. */
export function useLiveReload(reload: () => void, delayMs = 150): void {
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = subscribeChanges((e) => {
      if (e.type === 'ready' && !e.resumed) return;
      clearTimeout(timer);
      timer = setTimeout(() => latest.current(), delayMs);
    });
    return () => (clearTimeout(timer), off());
  }, []);
}
