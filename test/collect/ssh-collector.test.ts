import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import type { DeviceModel } from '../../src/modules/collect/collect-model.schema.ts';
import type { CollectResult, CollectTimeouts } from '../../src/modules/collect/collector.port.ts';
import { loadModelRegistry } from '../../src/modules/collect/model-loader.ts';
import type { ModelRegistry } from '../../src/modules/collect/model-registry.ts';
import { SshCollector } from '../../src/modules/collect/ssh-collector.ts';
import { newHostKey, startFakeDevice, type Behaviour, type FakeDevice } from './fake-device.ts';
import { FIXTURES } from './transcripts.ts';

// Short configured timeouts drive the failure cases: no sleeps, and a hang costs a fraction of a second.
const FAST: CollectTimeouts = { connectMs: 2000, commandMs: 400, deviceMs: 5000 };

let models: ModelRegistry;
const devices: FakeDevice[] = [];

beforeAll(async () => {
  models = await loadModelRegistry('/nonexistent-data-dir');
});
afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
});

async function device(name: string, behaviour: Behaviour = 'normal', hostKey?: ReturnType<typeof newHostKey>) {
  const d = await startFakeDevice({ transcript: FIXTURES[name]!.transcript, behaviour, hostKey });
  devices.push(d);
  return d;
}

function collect(d: FakeDevice, model: DeviceModel, opts: { password?: string; knownHostKey?: string | null; timeouts?: Partial<CollectTimeouts>; enablePassword?: string } = {}): Promise<CollectResult> {
  const sut = new SshCollector({ clock: systemClock, timeouts: { ...FAST, ...opts.timeouts } });
  return sut.collect(
    { host: '127.0.0.1', port: d.port, knownHostKey: opts.knownHostKey ?? null, scrubSecrets: true },
    model,
    { username: 'backup', password: opts.password ?? 'pw', enablePassword: opts.enablePassword },
  );
}

describe(SshCollector.name, () => {
  describe.each(Object.keys(FIXTURES))('model %s against its fake device', (name) => {
    it('collects the configuration, cleaned and scrubbed', async () => {
      const fx = FIXTURES[name]!;
      const d = await device(name);
      const r = await collect(d, models.require(name), { enablePassword: fx.enablePassword });
      if (!r.ok) throw new Error(`${r.stage}/${r.code}: ${r.message}`);
      const lines = r.content.split('\n');
      for (const e of fx.expected) expect(lines).toContain(e);
      expect(r.content).not.toContain(fx.secret);
      for (const a of fx.absent) expect(r.content).not.toContain(a);
      expect(r.content).not.toMatch(/\x1b|\r|\x08/);
      expect(r.hostKey).toBe(d.fingerprint);
      for (const c of models.require(name).commands) expect(d.received).toContain(c.cmd);
    });
  });

  it('logs in again with a known host key', async () => {
    const d = await device('cisco-nxos');
    const r = await collect(d, models.require('cisco-nxos'), { knownHostKey: d.fingerprint });
    expect(r.ok).toBe(true);
  });

  it('refuses a changed host key with host_key_mismatch before logging in', async () => {
    const d = await device('cisco-ios', 'normal', newHostKey());
    const r = await collect(d, models.require('cisco-ios'), { knownHostKey: 'SHA256:previousKeyFingerprint' });
    expect(r).toMatchObject({ ok: false, stage: 'connect', code: 'host_key_mismatch', hostKey: d.fingerprint });
    expect(r.ok || r.message).toMatch(/SHA256:previousKeyFingerprint/);
    expect(d.received).toEqual([]);
  });

  it('reports a rejected password at the auth stage', async () => {
    const d = await device('cisco-ios', 'reject-password');
    const r = await collect(d, models.require('cisco-ios'));
    expect(r).toMatchObject({ ok: false, stage: 'auth', code: 'auth_failed' });
    expect(r.ok || r.message).toMatch(/authentication failed for user "backup"/);
  });

  it('reports a device that never shows a prompt at the prompt stage', async () => {
    const d = await device('cisco-ios', 'no-prompt');
    const r = await collect(d, models.require('cisco-ios'));
    expect(r).toMatchObject({ ok: false, stage: 'prompt', code: 'prompt_not_found' });
    expect(r.ok || r.message).toMatch(/no prompt after login within 400 ms/);
  });

  it('reports a device that hangs mid-output as a timeout naming the command', async () => {
    const d = await device('cisco-ios', 'hang');
    const r = await collect(d, models.require('cisco-ios'));
    expect(r).toMatchObject({ ok: false, stage: 'timeout', code: 'timeout' });
    expect(r.ok || r.message).toMatch(/no prompt after `show running-config` within 400 ms/);
  });

  it('ends a slow device at the whole-device limit even when each command is in time', async () => {
    const d = await device('cisco-ios', 'hang');
    const r = await collect(d, models.require('cisco-ios'), { timeouts: { commandMs: 60_000, deviceMs: 600 } });
    expect(r).toMatchObject({ ok: false, stage: 'timeout', code: 'timeout' });
    expect(r.ok || r.message).toMatch(/device did not finish within 600 ms \(waiting for `show running-config`\)/);
  });

  it('reports a dropped connection at the command stage', async () => {
    const d = await device('cisco-ios', 'drop');
    const r = await collect(d, models.require('cisco-ios'));
    expect(r).toMatchObject({ ok: false, stage: 'command', code: 'connection_closed' });
    expect(r.ok || r.message).toMatch(/closed the connection \(waiting for `show running-config`\)/);
  });

  it('reports a refused connection at the connect stage', async () => {
    const d = await device('cisco-ios');
    await d.close();
    devices.pop();
    const r = await collect(d, models.require('cisco-ios'));
    expect(r).toMatchObject({ ok: false, stage: 'connect', code: 'connect_failed' });
  });

  it('reports a refused enable password', async () => {
    const d = await device('cisco-ios');
    const r = await collect(d, models.require('cisco-ios'), { enablePassword: 'wrong' });
    expect(r).toMatchObject({ ok: false, stage: 'auth', code: 'enable_failed' });
  });

  it('runs the given commands with the generic exec model and reports a failing one', async () => {
    const d = await device('generic-exec');
    const sut = new SshCollector({ clock: systemClock, timeouts: FAST });
    const r = await sut.collect(
      { host: '127.0.0.1', port: d.port, knownHostKey: null, scrubSecrets: true, commands: ['cat /etc/config/*', 'uci show'] },
      models.require('generic-exec'),
      { username: 'backup', password: 'pw' },
    );
    expect(r).toMatchObject({ ok: false, stage: 'command', code: 'command_failed' });
    expect(r.ok || r.message).toMatch(/`uci show` exited with status 127: sh: uci show: not found/);
  });
});
