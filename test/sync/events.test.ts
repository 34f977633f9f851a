import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import { newId, SyncClient } from './sync-helpers.ts';

/** Reads Server-Sent Events from a fetch body, one parsed event per next() call. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return async function next(): Promise<{ event: string; data: any }> {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith(':')) continue; // keep-alive comment
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        return { event, data: data ? JSON.parse(data) : null };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

describe.each(testDialects())('sync events (SSE) on %s', (dialect) => {
  let t: TestApp;
  let alice: TestUser;
  let base: string;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
    alice = await createUserWithKey(t.app);
    base = await t.app.http.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it("pokes a device with the new cursor when others change something, not for its own pushes", async () => {
    const laptop = await SyncClient.register(t.app, alice.headers, 'laptop');
    const phone = await SyncClient.register(t.app, alice.headers, 'phone');
    const abort = new AbortController();
    const res = await fetch(`${base}/api/v1/sync/events?device_id=${phone.deviceId}`, { headers: alice.headers, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const next = eventReader(res.body!);
    const ready = await next();
    expect(ready.event).toBe('ready');

    // The phone's own push is not news to the phone; the laptop's is: the first poke carries its cursor.
    await phone.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [phone.deviceId]: 1 }, data: { title: 'mine' } }]);
    const pushed = await laptop.push([{ mutation_id: 1, entity: 'task', op: 'upsert', id: newId(), vector_clock: { [laptop.deviceId]: 1 }, data: { title: 'theirs' } }]);
    const poke = await next();
    expect(poke).toEqual({ event: 'poke', data: { cursor: pushed.body.cursor } });
    const pulled = await phone.pull(ready.data.cursor);
    expect(pulled.body.changes.map((c: any) => c.data.title)).toEqual(['theirs']);
    expect(pulled.body.cursor).toBe(poke.data.cursor);

    // REST edits poke every device.
    await t.app.http.inject({ method: 'POST', url: '/api/v1/tasks', headers: alice.headers, payload: { title: 'from the web' } });
    expect((await next()).event).toBe('poke');
    abort.abort();
  });

  it('refuses a stream without a device of the caller', async () => {
    const res = await fetch(`${base}/api/v1/sync/events`, { headers: alice.headers });
    expect(res.status).toBe(400);
    const bob = await createUserWithKey(t.app);
    const bobs = await SyncClient.register(t.app, bob.headers, 'bob');
    expect((await fetch(`${base}/api/v1/sync/events?device_id=${bobs.deviceId}`, { headers: alice.headers })).status).toBe(403);
    // Left open on purpose: closing the app must end open streams instead of waiting for clients.
    const open = await fetch(`${base}/api/v1/sync/events?device_id=${bobs.deviceId}`, { headers: bob.headers });
    expect(open.status).toBe(200);
  });
});
