import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drainPipeline, orgWithUsers } from '../backups/helpers.ts';
import { runCliCaptured, cliEnvOf } from '../helpers/cli.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { gitAvailable } from '../storage/git-helpers.ts';
import { startFakeDevice, type FakeDevice } from './fake-device.ts';
import { FIXTURES } from './transcripts.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHIPPED = ['arista-eos', 'cisco-ios', 'cisco-nxos', 'fortios', 'generic-exec', 'juniper-junos', 'mikrotik-routeros'];

describe.runIf(gitAvailable())('backups collect CLI', () => {
  let t: TestApp;
  let env: Record<string, string>;
  const devices: FakeDevice[] = [];
  beforeEach(async () => {
    t = await createTestApp({ env: { STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS: '400', STORMVAULT_COLLECT_ATTEMPTS: '1' } });
    env = cliEnvOf(t, { STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS: '400', STORMVAULT_COLLECT_ATTEMPTS: '1' });
  });
  afterEach(async () => {
    await Promise.all(devices.splice(0).map((d) => d.close()));
    await t.cleanup();
  });
  const cli = (args: string[]) => runCliCaptured(args, env);

  it('collects one device with --wait and prints the outcome as JSON; a failing device exits 1 with its stage', async () => {
    const u = await orgWithUsers(t.app);
    const loc = (await u.asOwner('POST', '/api/v1/backup-locations', { name: 'main', type: 'git', config: { folder: 'repo' } })).json();
    const cred = (await u.asOwner('POST', '/api/v1/credentials', { name: 'ops', username: 'backup', password: 'pw' })).json();
    const good = await startFakeDevice({ transcript: FIXTURES['cisco-nxos']!.transcript });
    const hung = await startFakeDevice({ transcript: FIXTURES['cisco-nxos']!.transcript, behaviour: 'hang' });
    devices.push(good, hung);
    for (const [name, d] of [['n1', good], ['n2', hung]] as const) {
      const res = await u.asOwner('POST', '/api/v1/network-devices', { name, address: '127.0.0.1', port: d.port, model: 'cisco-nxos', credential_id: cred.id, backup_location_id: loc.id });
      expect(res.statusCode, res.body).toBe(201);
    }

    const ok = await cli(['backups', 'collect', '--device', 'n1', '--wait']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ network_device: 'n1', status: 'SUCCESSFUL', outcome: { ok: true, host_key: good.fingerprint } });
    await drainPipeline(t.app);
    const n1 = (await u.asOwner('GET', '/api/v1/network-devices')).json().network_devices.find((d: any) => d.name === 'n1');
    expect((await u.asOwner('GET', `/api/v1/network-devices/${n1.id}/backups`)).json().stored_backups).toHaveLength(1);

    const bad = await cli(['backups', 'collect', '--device', 'n2', '--wait']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ network_device: 'n2', outcome: { ok: false, stage: 'timeout', code: 'timeout' } });
    expect(bad.stderr).toMatch(/collection failed at timeout: no prompt after `show running-config`/);

    const missing = await cli(['backups', 'collect', '--device', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no network device named "nope"/);
  }, 120_000);
});

// The shipped models are bundled into dist/ (esbuild): listed from the built JavaScript, not the sources.
describe('shipped models in the dist/ bundle', () => {
  it('backups models from dist/main.mjs lists every shipped model', async () => {
    await run(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root });
    const dir = mkdtempSync(path.join(tmpdir(), 'sv-dist-models-'));
    try {
      const { stdout } = await run(process.execPath, [path.join(root, 'dist/main.mjs'), 'backups', 'models'], {
        cwd: dir,
        env: { ...process.env, STORMVAULT_DATA_DIR: path.join(dir, 'data'), STORMVAULT_DATABASE_URL: '', STORMVAULT_LOG_LEVEL: 'silent', STORMVAULT_MIN_FREE_BYTES: '0' },
      });
      const models = JSON.parse(stdout) as { name: string; source: string }[];
      expect(models.map((m) => m.name)).toEqual(SHIPPED);
      expect(new Set(models.map((m) => m.source))).toEqual(new Set(['shipped']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
