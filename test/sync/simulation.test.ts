import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clockLessOrEqual, mergeClocks, type VectorClock } from '../../src/modules/records/vector-clock.ts';
import { STATUS_TRANSITIONS, type TaskStatus } from '../../src/modules/records/records.entities.ts';
import type { App } from '../../src/app.ts';
import { testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp } from '../helpers/test-app.ts';

/**
 * Five devices with random offline periods make random creates, edits, deletes and comments, pushing and
 * pulling in random order through the HTTP API: the first seed over a real socket (fetch), the others
 * through Fastify's inject (same routing, validation and serialisation, no socket; SIM_SOCKET=1 puts
 * every seed on the socket), while a web user edits tasks over REST. Afterwards:
 * - no change was silently dropped: every push outcome is applied, merged, conflict (with a conflict
 *   record holding the device's data) or rejected with a reason — never "stale";
 * - whenever the server replaced a field's value, the new write had seen the old one (its clock
 *   dominates), so concurrent edits of one field never overwrite each other;
 * - once conflicts are resolved and everyone synced, every device holds exactly the server's data.
 * SIM_SEEDS (default 20 on SQLite, 6 on PostgreSQL) and SIM_OPS (default 40) scale it up.
 */
// PostgreSQL runs fewer seeds by default: the protocol logic is the same, and its round trips cost more.
const seedsFor = (dialect: string) => Number(process.env.SIM_SEEDS ?? (dialect === 'postgres' ? 6 : 20));
const OPS = Number(process.env.SIM_OPS ?? 40);

function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)]!, chance: (p: number) => next() < p };
}

type Entity = 'task' | 'comment';
interface Rec {
  entity: Entity;
  id: string;
  data: Record<string, unknown>;
  clock: VectorClock;
  deleted: boolean;
}
interface Mutation {
  mutation_id: number;
  entity: Entity;
  op: 'upsert' | 'delete';
  id: string;
  vector_clock: VectorClock;
  data?: Record<string, unknown>;
}
// A client creates records with every field set, so its copy matches the server's from the start.
const TASK_DEFAULTS = { description: '', status: 'todo', priority: 'medium', due_date: null, assignee_id: null, project_id: null, tags: [], custom_fields: {} };
const k = (entity: string, id: string) => `${entity}:${id}`;
const SYNCED: Record<Entity, string[]> = {
  task: ['title', 'description', 'status', 'priority', 'due_date', 'assignee_id', 'project_id', 'tags', 'custom_fields'],
  comment: ['task_id', 'parent_id', 'body'],
};

function fromChange(c: any): Rec {
  const data: Record<string, unknown> = {};
  if (c.data) for (const f of SYNCED[c.entity as Entity]) data[f] = c.data[f];
  return { entity: c.entity, id: c.id, data, clock: c.vector_clock, deleted: c.op === 'delete' };
}

class Http {
  constructor(
    /** A listening server's base URL (requests go over a socket), or the app to inject into. */
    private readonly target: string | App,
    private readonly headers: Record<string, string>,
  ) {}
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    if (typeof this.target !== 'string') {
      const res = await this.target.http.inject({ method: method as 'GET', url: path, headers: this.headers, payload: body as object });
      return { status: res.statusCode, json: res.body ? res.json() : null };
    }
    const res = await fetch(`${this.target}${path}`, {
      method,
      headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  }
}

class Device {
  counter = 0;
  nextMutation = 1;
  online = true;
  cursor: string | undefined;
  readonly confirmed = new Map<string, Rec>();
  pending: Mutation[] = [];
  constructor(
    readonly id: string,
    readonly http: Http,
  ) {}

  view(): Map<string, Rec> {
    const v = new Map([...this.confirmed].map(([key, r]) => [key, { ...r, data: { ...r.data } }]));
    for (const m of this.pending) apply(v, m);
    return v;
  }

  /** A local change: clock = what this device has seen of the record, plus a fresh own counter. */
  change(entity: Entity, op: 'upsert' | 'delete', id: string, data?: Record<string, unknown>): Mutation {
    const base = this.view().get(k(entity, id))?.clock ?? {};
    const m: Mutation = { mutation_id: this.nextMutation++, entity, op, id, vector_clock: { ...base, [this.id]: ++this.counter }, data };
    this.pending.push(m);
    return m;
  }
}

function apply(state: Map<string, Rec>, m: Mutation): void {
  const cur = state.get(k(m.entity, m.id));
  const data = { ...(cur?.data ?? {}), ...(m.data ?? {}) };
  state.set(k(m.entity, m.id), { entity: m.entity, id: m.id, data, clock: mergeClocks(cur?.clock ?? {}, m.vector_clock), deleted: m.op === 'delete' });
}

describe.each(testDialects())('5-device sync simulation on %s', (dialect) => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await createTestApp({ dialect });
    base = await t.app.http.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it(`converges without silent loss for ${seedsFor(dialect)} seeds × ${OPS} operations`, { timeout: 600_000 }, async () => {
    for (let seed = 1; seed <= seedsFor(dialect); seed++) await simulate(seed);
  });

  async function simulate(seed: number): Promise<void> {
    const r = rng(seed * 7919);
    const user = await createUserWithKey(t.app);
    const http = new Http(seed === 1 || process.env.SIM_SOCKET === '1' ? base : t.app, user.headers);
    const devices: Device[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await http.call('POST', '/api/v1/devices', { name: `sim-${seed}-${i}` });
      devices.push(new Device(res.json.id, http));
    }
    const auditor = (await http.call('POST', '/api/v1/devices', { name: `auditor-${seed}` })).json.id as string;
    const ctx = `seed ${seed}`;

    // The server's value of every field, from the outcomes it reported, and the clock that wrote it.
    const lastWrite = new Map<string, { value: unknown; clock: VectorClock }>();
    const conflicts: Array<{ id: string; mutation: Mutation }> = [];
    const outcomes: Record<string, number> = {};
    let token = 0;
    const fresh = (what: string) => `${what}-${seed}-${++token}`;

    const recordWrites = (m: Mutation, before: Rec | undefined) => {
      if (m.op !== 'upsert' || !m.data) return;
      for (const [field, value] of Object.entries(m.data)) {
        const key = `${m.entity}:${m.id}:${field}`;
        const prev = lastWrite.get(key);
        if (prev && JSON.stringify(prev.value) === JSON.stringify(value)) continue;
        if (prev) {
          // The value changed: the writer must have seen the write it replaces.
          expect(clockLessOrEqual(prev.clock, m.vector_clock), `${ctx}: ${key} overwritten concurrently`).toBe(true);
        } else if (before) {
          expect.fail(`${ctx}: ${key} written without a known previous write`);
        }
        lastWrite.set(key, { value, clock: m.vector_clock });
      }
    };

    const push = async (d: Device, loseAnswer: boolean) => {
      const batch = d.pending.slice(0, 25);
      if (batch.length === 0) return;
      const before = new Map(batch.map((m) => [m.mutation_id, undefined as Rec | undefined]));
      const res = await d.http.call('POST', '/api/v1/sync/push', { device_id: d.id, changes: batch, ...(d.cursor ? { cursor: d.cursor } : {}) });
      expect(res.status, `${ctx}: push ${JSON.stringify(res.json)}`).toBe(200);
      // The harness books what the server did even when the answer is "lost" on its way to the device.
      for (const [i, result] of res.json.results.entries()) {
        const m = batch[i]!;
        expect(result.mutation_id).toBe(m.mutation_id);
        if (result.replayed) continue;
        outcomes[result.status] = (outcomes[result.status] ?? 0) + 1;
        expect(result.status, `${ctx}: ${JSON.stringify(result)}`).not.toBe('stale');
        if (result.status === 'applied' || result.status === 'merged') recordWrites(m, before.get(m.mutation_id));
        if (result.status === 'conflict') conflicts.push({ id: result.conflict_id, mutation: m });
      }
      if (loseAnswer) return; // the device never heard back: it will retry the same mutation ids
      for (const [i, result] of res.json.results.entries()) {
        const m = batch[i]!;
        if (result.status === 'applied' && !result.replayed) {
          const state = d.confirmed;
          apply(state, m);
        } else if (result.current) {
          d.confirmed.set(k(m.entity, m.id), fromChange(result.current));
        }
      }
      d.pending = d.pending.slice(batch.length);
    };

    const pull = async (d: Device) => {
      for (;;) {
        const q = new URLSearchParams({ device_id: d.id, limit: '40' });
        if (d.cursor) q.set('since', d.cursor);
        const res = await d.http.call('GET', `/api/v1/sync/pull?${q}`);
        expect(res.status, `${ctx}: pull ${JSON.stringify(res.json)}`).toBe(200);
        for (const c of res.json.changes) d.confirmed.set(k(c.entity, c.id), fromChange(c));
        d.cursor = res.json.cursor;
        if (!res.json.has_more) return;
      }
    };

    const localChange = (d: Device) => {
      const view = d.view();
      const live = (e: Entity) => [...view.values()].filter((x) => x.entity === e && !x.deleted);
      const tasks = live('task');
      const roll = r.int(100);
      if (roll < 25 || tasks.length === 0) {
        d.change('task', 'upsert', randomUUID(), { ...TASK_DEFAULTS, title: fresh('title'), priority: r.pick(['low', 'medium', 'high', 'urgent']), tags: r.chance(0.5) ? [fresh('tag')] : [] });
      } else if (roll < 65) {
        const task = r.pick(tasks);
        const patch: Record<string, unknown> = {};
        const fields = r.pick([['title'], ['description'], ['priority'], ['status'], ['title', 'status'], ['tags'], ['description', 'priority']]);
        for (const f of fields) {
          if (f === 'title' || f === 'description') patch[f] = fresh(f);
          if (f === 'priority') patch[f] = r.pick(['low', 'medium', 'high', 'urgent']);
          if (f === 'tags') patch[f] = [fresh('tag')];
          if (f === 'status') patch[f] = r.pick([...STATUS_TRANSITIONS[task.data.status as TaskStatus]]);
        }
        d.change('task', 'upsert', task.id, patch);
      } else if (roll < 75) {
        d.change('task', 'delete', r.pick(tasks).id);
      } else if (roll < 90) {
        const task = r.pick(tasks);
        const thread = live('comment').filter((c) => c.data.task_id === task.id);
        d.change('comment', 'upsert', randomUUID(), { task_id: task.id, parent_id: thread.length > 0 && r.chance(0.5) ? r.pick(thread).id : null, body: fresh('body') });
      } else {
        const comments = live('comment');
        if (comments.length > 0) d.change('comment', 'upsert', r.pick(comments).id, { body: fresh('body') });
      }
    };

    // Someone in the web UI edits a task over REST (a server-made change every device must pull).
    const webEdit = async (d: Device) => {
      const tasks = [...d.confirmed.values()].filter((x) => x.entity === 'task' && !x.deleted);
      if (tasks.length === 0) return;
      const task = r.pick(tasks);
      const patch = r.chance(0.5) ? { title: fresh('web-title') } : { priority: r.pick(['low', 'medium', 'high', 'urgent']) };
      const res = await http.call('PATCH', `/api/v1/tasks/${task.id}`, patch);
      if (res.status === 404) return; // deleted meanwhile
      expect(res.status, `${ctx}: web edit ${JSON.stringify(res.json)}`).toBe(200);
      recordWrites({ mutation_id: 0, entity: 'task', op: 'upsert', id: task.id, vector_clock: res.json.vector_clock, data: patch }, task);
    };

    for (let op = 0; op < OPS; op++) {
      const d = r.pick(devices);
      const roll = r.int(100);
      if (roll < 47) localChange(d);
      else if (roll < 50) await webEdit(d);
      else if (roll < 60) d.online = !d.online;
      else if (!d.online) localChange(d);
      else if (roll < 80) await push(d, r.chance(0.1));
      else await pull(d);
    }

    // Everyone comes online and syncs until nothing is pending.
    for (const d of devices) d.online = true;
    for (let round = 0; devices.some((d) => d.pending.length > 0) || round < 2; round++) {
      for (const d of devices) {
        while (d.pending.length > 0) await push(d, false);
        await pull(d);
      }
      expect(round, `${ctx}: sync does not settle`).toBeLessThan(20);
    }

    // The server holds exactly the last write the protocol reported for every field.
    const server = new Map<string, Rec>();
    const fullPull = async () => {
      server.clear();
      let cursor: string | undefined;
      for (;;) {
        const q = new URLSearchParams({ device_id: auditor, limit: '500' });
        if (cursor) q.set('since', cursor);
        const res = await http.call('GET', `/api/v1/sync/pull?${q}`);
        for (const c of res.json.changes) server.set(k(c.entity, c.id), fromChange(c));
        cursor = res.json.cursor;
        if (!res.json.has_more) return;
      }
    };
    await fullPull();
    for (const [key, w] of lastWrite) {
      const [entity, id, field] = key.split(':') as [string, string, string];
      const rec = server.get(k(entity, id))!;
      expect(rec, `${ctx}: ${key}`).toBeDefined();
      expect(rec.data[field] === undefined && rec.deleted ? w.value : rec.data[field], `${ctx}: ${key}`).toEqual(w.value);
    }

    // Every conflict outcome sits in a conflict record with the device's version; resolve them all.
    const open = (await http.call('GET', '/api/v1/sync/conflicts?status=open&limit=200')).json.items as any[];
    expect(open.map((c) => c.id).sort(), ctx).toEqual(conflicts.map((c) => c.id).sort());
    for (const { id, mutation } of conflicts) {
      const c = open.find((x) => x.id === id)!;
      expect(c.local.vector_clock, ctx).toEqual(mutation.vector_clock);
      expect(c.local.data ?? undefined, ctx).toEqual(mutation.op === 'delete' ? undefined : mutation.data);
      const strategy = r.pick(['local', 'remote', 'custom'] as const);
      const data = strategy === 'custom' ? (c.entity === 'task' ? { title: fresh('resolved') } : { body: fresh('resolved') }) : undefined;
      const res = await http.call('POST', `/api/v1/sync/conflicts/${id}/resolve`, { strategy, data });
      expect(res.status, `${ctx}: resolve ${JSON.stringify(res.json)}`).toBe(200);
    }

    for (const d of devices) await pull(d);
    await fullPull();
    for (const d of devices) {
      expect(d.pending, ctx).toEqual([]);
      const mine = Object.fromEntries([...d.confirmed].sort(([a], [b]) => a.localeCompare(b)));
      const theirs = Object.fromEntries([...server].sort(([a], [b]) => a.localeCompare(b)));
      for (const rec of [...Object.values(mine), ...Object.values(theirs)]) if (rec.deleted) rec.data = {};
      expect(mine, `${ctx}: device ${d.id} diverged`).toEqual(theirs);
    }
    expect(outcomes.applied ?? 0, ctx).toBeGreaterThan(0);
    if (process.env.SIM_VERBOSE) console.log(ctx, JSON.stringify(outcomes), `${conflicts.length} conflicts`);
  }
});
