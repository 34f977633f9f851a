import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from '../../scripts/build.mjs';
import { hasDrift } from '../../src/modules/index-sync/index-diff.ts';
import { redisAvailable, TEST_REDIS_URL, testDialects } from '../helpers/env.ts';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/stormvault.js');
const LOGIN_MAX_ATTEMPTS = 4;

interface Proc {
  child: ChildProcess;
  /** http://127.0.0.1:port for serve; undefined for the worker. */
  base?: string;
  /** What carries pokes and write locks in that process, as it logged it at start. */
  coordination?: string;
}

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
        if (block.startsWith(':')) continue;
        return { event: /^event: (.*)$/m.exec(block)?.[1] ?? 'message', data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

/** Rejects with `message` unless `promise` settles within `ms` (a bound on waiting, not a timing assertion). */
function within<T>(ms: number, promise: Promise<T>, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Deployment {
  name: string;
  /** Redis carries tasks, pokes, write locks and throttles; without it PostgreSQL carries them all. */
  redis: boolean;
  runs: () => boolean;
}

const DEPLOYMENTS: Deployment[] = [
  { name: 'PostgreSQL + Redis', redis: true, runs: () => testDialects().includes('postgres') && redisAvailable() },
  // Issue 12: PG-only deployments (LISTEN/NOTIFY pokes, write leases in the locks table, database task queue).
  { name: 'PostgreSQL without Redis', redis: false, runs: () => testDialects().includes('postgres') },
];

/**
 * Issue 12, "several processes behaving as one": two `serve --no-worker` processes (A and B) and one
 * `worker`, real child processes of bin/stormvault.js on one PostgreSQL database, one storage root and
 * (in the first deployment) one Redis for tasks, pokes, write locks and throttles, driven over real HTTP.
 * The test process holds its own app on the same database and storage to set up users and to check the
 * index against the disk.
 */
describe.each(DEPLOYMENTS.filter((d) => d.runs()))('several processes on $name', (deployment) => {
  let t: TestApp;
  let alice: TestUser;
  let admin: TestUser;
  const procs: Proc[] = [];
  let A: Proc;
  let B: Proc;
  let worker: Proc;
  const redisPrefix = `svtest-mp-${randomUUID().slice(0, 8)}`;

  async function start(args: string[], readyLine: string): Promise<Proc> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STORMVAULT_DATA_DIR: t.config.dataDir,
      STORMVAULT_DATABASE_URL: t.config.database.url,
      STORMVAULT_PORT: '0',
      STORMVAULT_MIN_FREE_BYTES: '0',
      STORMVAULT_LOG_LEVEL: 'info',
      STORMVAULT_INDEX_AUDIT_ON_START: 'false',
      STORMVAULT_LOGIN_MAX_ATTEMPTS: String(LOGIN_MAX_ATTEMPTS),
    };
    if (deployment.redis) Object.assign(env, { STORMVAULT_TASKS_BACKEND: 'redis', STORMVAULT_REDIS_URL: TEST_REDIS_URL, STORMVAULT_REDIS_PREFIX: redisPrefix });
    else {
      delete env.STORMVAULT_REDIS_URL;
      env.STORMVAULT_TASKS_BACKEND = 'database';
    }
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const proc: Proc = { child };
    procs.push(proc);
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`stormvault ${args.join(' ')} exited early with ${code}`)));
      lines.on('line', (line) => {
        if (line.includes('"coordination ready"')) proc.coordination = JSON.parse(line).coordination;
        if (!line.includes(readyLine)) return;
        if (line.startsWith('{')) proc.base = JSON.parse(line).address;
        resolve();
      });
    });
    return proc;
  }

  beforeAll(async () => {
    // One build for the three processes (bin/stormvault.js would otherwise build dist/ in each of them).
    await buildDist();
    // Its tasks backend stays immediate: only the three children talk to the queues.
    t = await createTestApp({ dialect: 'postgres' });
    alice = await createUserWithKey(t.app);
    admin = await createUserWithKey(t.app, { admin: true });
    [A, B, worker] = await Promise.all([
      start(['serve', '--no-worker'], '"stormvault listening"'),
      start(['serve', '--no-worker'], '"stormvault listening"'),
      start(['worker'], '"task worker started"'),
    ]);
  }, 120_000);

  afterAll(async () => {
    for (const { child } of procs) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
    await t?.cleanup();
    if (deployment.redis && TEST_REDIS_URL) {
      const redis = new Redis(TEST_REDIS_URL);
      const keys = await redis.keys(`${redisPrefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  }, 60_000);

  it('every process coordinates through the store of its deployment', () => {
    for (const p of [A, B, worker]) expect(p.coordination).toBe(deployment.redis ? 'redis' : 'postgres');
  });

  it('a device listening on A is poked within 1 s for a push through B', async () => {
    const register = async (base: string, name: string) => {
      const res = await fetch(`${base}/api/v1/devices`, { method: 'POST', headers: { ...alice.headers, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    };
    const phone = await register(A.base!, 'phone');
    const laptop = await register(B.base!, 'laptop');
    const abort = new AbortController();
    const stream = await fetch(`${A.base}/api/v1/sync/events?device_id=${phone}`, { headers: alice.headers, signal: abort.signal });
    expect(stream.status).toBe(200);
    const next = eventReader(stream.body!);
    expect((await next()).event).toBe('ready');

    const push = await fetch(`${B.base}/api/v1/sync/push`, {
      method: 'POST',
      headers: { ...alice.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: laptop, changes: [{ mutation_id: 1, entity: 'task', op: 'upsert', id: randomUUID(), vector_clock: { [laptop]: 1 }, data: { title: 'through B' } }] }),
    });
    expect(push.status).toBe(200);
    const { cursor } = (await push.json()) as { cursor: string };
    // The database backstop polls every 5 s: a poke inside 1 s came from B over Redis pub/sub or PostgreSQL NOTIFY.
    const poke = await within(1000, next(), 'no poke on A within 1 s of the push through B');
    expect(poke).toEqual({ event: 'poke', data: { cursor } });
    abort.abort();
  });

  it('20 concurrent uploads to one path over A and B end with one whole file and an index that matches the disk', async () => {
    // Different sizes, so a row from one upload beside the bytes of another shows as stale.
    const bodies = Array.from({ length: 20 }, (_, i) => new Uint8Array(64 * 1024 + i * 1000).fill(i + 1));
    const statuses = await Promise.all(
      bodies.map(async (body, i) => {
        const res = await fetch(`${(i % 2 ? A : B).base}/api/v1/files/shared/report.bin`, { method: 'PUT', headers: alice.headers, body });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses.every((s) => s === 200 || s === 201)).toBe(true);

    // Before anything reads the file through the API (a read would correct a stale row), compare the index with the disk.
    const audit = await t.app.indexSync.run({ mode: 'audit', userId: alice.user.id });
    expect(audit).toMatchObject({ missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0 });
    expect(hasDrift(audit)).toBe(false);

    const got = new Uint8Array(await (await fetch(`${A.base}/api/v1/files/shared/report.bin`, { headers: alice.headers })).arrayBuffer());
    const winner = bodies.find((b) => b.length === got.length && b[0] === got[0]);
    expect(winner).toBeDefined();
    expect(sha256(got)).toBe(sha256(winner!));
    const rows = await t.app.db.selectFrom('stored_files').select(['size', 'sha256']).where('owner_id', '=', alice.user.id).where('path', '=', 'shared/report.bin').execute();
    expect(rows).toEqual([{ size: got.length, sha256: sha256(got) }]);
  });

  it("the per-user write lock holds across A and B: concurrent uploads to different paths cannot both pass the quota check", async () => {
    // On PostgreSQL, row locks already serialise writes to one path; the quota check of two different
    // paths is what only the per-user lock makes one step with the commit. Each upload fits the quota
    // alone and no two fit together: exactly one may succeed, whichever process it went through.
    const quota = 100 * 1024;
    // Several rounds, each with a fresh user: a round without the lock lets one upload per process through
    // only when their checks overlap, so one round alone might miss it.
    for (let round = 0; round < 5; round++) {
      const carol = await createUserWithKey(t.app, { quotaBytes: quota });
      const statuses = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const res = await fetch(`${(i % 2 ? A : B).base}/api/v1/files/part-${i}.bin`, { method: 'PUT', headers: carol.headers, body: new Uint8Array(60 * 1024).fill(i) });
          await res.arrayBuffer();
          return res.status;
        }),
      );
      expect(statuses.filter((s) => s === 201), `round ${round}`).toHaveLength(1);
      expect(statuses.filter((s) => s !== 201).every((s) => s === 413)).toBe(true);
      const audit = await t.app.indexSync.run({ mode: 'audit', userId: carol.user.id });
      expect(audit).toMatchObject({ files_on_disk: 1, files_in_db: 1, missing_in_db: 0, orphaned_in_db: 0, stale_in_db: 0 });
    }
  });

  it('a task enqueued on A runs on the worker', async () => {
    const res = await fetch(`${A.base}/api/v1/index/rebuild/`, {
      method: 'POST',
      headers: { ...admin.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'audit', user_id: alice.user.id }),
    });
    expect([200, 202]).toContain(res.status);
    const { task_id } = (await res.json()) as { task_id: string };
    let task: { status: string; worker_id: string | null };
    for (;;) {
      const poll = await fetch(`${B.base}/api/v1/admin/tasks/${task_id}`, { headers: admin.headers });
      expect(poll.status).toBe(200);
      task = (await poll.json()) as typeof task;
      if (task.status === 'SUCCESSFUL' || task.status === 'FAILED') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(task.status).toBe('SUCCESSFUL');
    // Worker ids are host:pid:…; neither serve process runs tasks (--no-worker).
    expect(task.worker_id).toContain(`:${worker.child.pid}:`);
  });

  // Depends on the `secauth` helper's shared throttle store (issue 12: rate-limiter-flexible on Redis or
  // the database; src/throttle/). With per-process counters this fails: A alone has seen two failed
  // logins, not four. Kept in its own describe so the dependency is visible; it is never skipped.
  describe('login throttling (needs the shared throttle store)', () => {
    it('counts failed logins made through A and B together', async () => {
      const password = 'a-long-correct-password';
      const bob = await createUserWithKey(t.app, { password });
      const login = (base: string, pw: string) =>
        fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: bob.user.username, password: pw }) });
      for (let i = 0; i < LOGIN_MAX_ATTEMPTS; i++) expect((await login(i % 2 ? A.base! : B.base!, `wrong-${i}`)).status).toBe(401);
      // Over the limit on the deployment as a whole, so even the right password is refused, on either process.
      expect((await login(A.base!, password)).status).toBe(429);
      expect((await login(B.base!, password)).status).toBe(429);
    });
  });
});

