/**
 * bench:collect — collecting configurations from many network devices over SSH (issue 10).
 *
 *   npx tsx bench/collect.ts [--devices 1000] [--concurrency 50] [--commands 3] [--delay 200] [--lines 200]
 *
 * Devices: ONE ssh2 server process (bench/collect-device-server.ts) where every SSH session is a device
 * answering each command after --delay ms. Stormvault: the devices are network devices of an app on
 * SQLite with the database tasks backend; each gets a `collect.device` task (backup-now), and one worker
 * on the `collect` queue with --concurrency slots runs them: login, prompt detection, commands, output
 * cleaning, the outcome appended to device:results. Wall time is from the first enqueue to the last task
 * finished. Printed next to:
 * - the ideal `devices × commands × delay / concurrency` (target: Stormvault ≤ 1.5× the ideal), and
 * - a baseline measured in the same run against the same server: a raw ssh2 loop with the same
 *   concurrency (connect, shell, wait for the prompt, send each command, wait for the prompt; no
 *   database, no tasks, no cleaning).
 * Collector RSS (this process: the app and its worker; the device server is another process) is sampled
 * every 100 ms; target ≤ 300 MB. The collector's CPU time (user + system, this process) is printed for
 * both phases: less noisy than wall time on a shared machine.
 * The devices are enqueued as one batch (CollectService.backupNowMany, what `backups collect --all` and
 * the scheduler do), and the organization's default schedule is moved away from the current minute so
 * the scheduler does not enqueue them a second time during the run.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import ssh2 from 'ssh2';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/logger.ts';
import { parseBenchArgs } from './bench-args.ts';

const flags = parseBenchArgs(import.meta.url, {
  devices: { type: 'string', default: '1000' },
  concurrency: { type: 'string', default: '50' },
  commands: { type: 'string', default: '3' },
  delay: { type: 'string', default: '200' },
  lines: { type: 'string', default: '200' },
});
const DEVICES = Number(flags.devices);
const CONCURRENCY = Number(flags.concurrency);
const COMMANDS = Number(flags.commands);
const DELAY = Number(flags.delay);
const commands = Array.from({ length: COMMANDS }, (_, i) => `show part ${i + 1}`);

let peakRss = 0;
// memoryUsage.rss() reads the RSS only; memoryUsage() also walks the heap spaces, every 100 ms.
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));
const sampler = setInterval(sample, 100);

async function startServer(): Promise<{ port: number; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'collect-device-server.ts'), '--delay', String(DELAY), '--lines', flags.lines!], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`device server exited with ${code}`)));
  });
  return { port: (JSON.parse(first) as { port: number }).port, stop: () => child.kill('SIGTERM') };
}

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** N jobs, `concurrency` at a time. */
async function pool(n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await job(next++);
    }),
  );
}

/** The baseline: what a bare ssh2 script does per device. */
function rawCollect(port: number, user: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const prompt = `${user}#`;
    client.on('error', reject);
    client.on('ready', () => {
      client.shell({ term: 'vt100', cols: 511, rows: 24 }, (err, stream) => {
        if (err) return reject(err);
        let buffer = '';
        let bytes = 0;
        let i = -1;
        const sendNext = () => {
          i++;
          buffer = '';
          if (i < commands.length) stream.write(`${commands[i]}\n`);
          else {
            stream.end('exit\n');
            client.end();
            resolve(bytes);
          }
        };
        stream.on('data', (d: Buffer) => {
          bytes += d.length;
          buffer += d.toString('utf8');
          if (buffer.endsWith(prompt)) sendNext();
        });
      });
    });
    client.connect({ host: '127.0.0.1', port, username: user, password: 'pw', readyTimeout: 30_000 });
  });
}

async function main() {
  const server = await startServer();
  const ideal = (DEVICES * COMMANDS * DELAY) / CONCURRENCY;
  console.log(`bench:collect — ${DEVICES} devices × ${COMMANDS} commands × ${DELAY} ms, concurrency ${CONCURRENCY}`);
  console.log(`ideal: ${(ideal / 1000).toFixed(2)} s`);

  // Baseline: raw ssh2 loop.
  let t0 = performance.now();
  let cpu0 = process.cpuUsage();
  await pool(DEVICES, CONCURRENCY, async (i) => void (await rawCollect(server.port, `dev${i}`)));
  const baseline = performance.now() - t0;
  const baselineCpu = cpuSeconds(process.cpuUsage(cpu0));
  console.log(`baseline raw ssh2 loop: ${(baseline / 1000).toFixed(2)} s  (${(baseline / ideal).toFixed(2)}× ideal; collector CPU ${baselineCpu.toFixed(2)} s)`);

  // Stormvault: devices → collect tasks → worker → ssh → device:results.
  const dir = await mkdtemp(path.join(tmpdir(), 'sv-bench-collect-'));
  await mkdir(path.join(dir, 'data', 'models'), { recursive: true });
  await writeFile(
    path.join(dir, 'data', 'models', 'bench-os.json'),
    JSON.stringify({ name: 'bench-os', prompt: '^[\\w.-]+# ?$', comment: '! ', commands: commands.map((cmd) => ({ cmd })), secrets: [{ pattern: '^(secret) \\S+', with: '$1 <hidden>' }] }),
  );
  const config = loadConfig({
    STORMVAULT_DATA_DIR: path.join(dir, 'data'),
    STORMVAULT_LOG_LEVEL: 'warn',
    STORMVAULT_TASKS_BACKEND: 'database',
    STORMVAULT_TASKS_POLL_MS: '20',
    STORMVAULT_MIN_FREE_BYTES: '0',
  });
  const app = await createApp(config, { logger: createLogger(config, process.stderr), http: false });
  try {
    const user = await app.users.create({ username: 'bench', password: 'bench-password', isAdmin: true });
    const orgId = (await app.organizations.listForUser(user.id))[0]!.organization.id;
    const ctx = { organizationId: orgId, userId: user.id, role: 'admin' as const };
    const loc = await app.backups.locations.create(ctx, { name: 'git', type: 'git', config: { folder: 'repo' } });
    const cred = await app.collect.credentials.create(ctx, { name: 'bench', username: 'bench', password: 'pw' });
    // The default schedule (hourly at :00) would enqueue every device again when the run crosses the hour.
    await app.collect.collect.setOrgSettings(ctx, { default_schedule: `${(new Date().getUTCMinutes() + 30) % 60} * * * *`, timezone: 'UTC' });
    const ids: string[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const d = await app.backups.devices.create(ctx, { name: `dev${i}`, address: '127.0.0.1', port: server.port, model: 'bench-os', credential_id: cred.id, backup_location_id: loc.id });
      ids.push(d.id);
    }
    let finished = 0;
    let failed = 0;
    const done = new Promise<void>((resolve) => {
      app.tasks.on('finished', (r) => {
        if (r.taskName !== 'collect.device') return;
        if (r.status !== 'SUCCESSFUL' || !(r.returnValue as { ok: boolean }).ok) failed++;
        if (++finished === DEVICES) resolve();
      });
    });
    sample();
    const rssBefore = process.memoryUsage.rss();
    peakRss = rssBefore;
    // The worker runs while the tasks are enqueued, as with the scheduler: the clock starts at the first enqueue.
    const worker = await app.tasks.startWorker({ queues: ['collect'], concurrency: CONCURRENCY });
    t0 = performance.now();
    cpu0 = process.cpuUsage();
    await app.collect.collect.backupNowMany(ctx, ids);
    const enqueued = performance.now() - t0;
    await done;
    const wall = performance.now() - t0;
    const cpu = cpuSeconds(process.cpuUsage(cpu0));
    await worker.stop();
    console.log(
      `stormvault collect queue: ${(wall / 1000).toFixed(2)} s  (${(wall / ideal).toFixed(2)}× ideal, target ≤ 1.5×; ${(wall / baseline).toFixed(2)}× the raw ssh2 loop)` +
        `  failed ${failed}/${DEVICES}; all enqueued after ${(enqueued / 1000).toFixed(2)} s`,
    );
    console.log(`collector CPU: ${cpu.toFixed(2)} s (${((cpu * 1000) / DEVICES).toFixed(1)} ms a device; the raw loop ${((baselineCpu * 1000) / DEVICES).toFixed(1)} ms; ${(cpu / baselineCpu).toFixed(2)}×)`);
    console.log(`collector RSS: peak ${(peakRss / 2 ** 20).toFixed(0)} MB (before the run ${(rssBefore / 2 ** 20).toFixed(0)} MB; target ≤ 300 MB)`);
  } finally {
    await app.close();
    server.stop();
    clearInterval(sampler);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
